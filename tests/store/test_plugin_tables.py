"""Plugins' own tables in the store (issue 15): declared through `botkit_register_tables`,
migrated once per namespace on SQLite and PostgreSQL, their turn rows deleted with the
turn, read by the history views through `botkit_turn_annotations`/`botkit_turn_tallies`.
The feedback plugin is the built-in user; the third-party plugin here is a second one.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
from botkit_plugins.feedback.votes import TABLES as FEEDBACK_TABLES
from botkit_plugins.feedback.votes import Votes

from botkit import hookimpl
from botkit.plugins import PluginError, Plugins
from botkit.store import PluginTables, Store, StoreUnusable
from botkit.testing import running_bot

from .conftest import StoreFactory
from .test_store import T1, finish_turn

NOTES_V1 = PluginTables("notes", ['CREATE TABLE notes (event_id TEXT NOT NULL, "text" TEXT NOT NULL)'],
                        turn_rows={"notes": "event_id"})
NOTES_V2 = PluginTables("notes", [*NOTES_V1.migrations, "CREATE INDEX notes_event ON notes (event_id)",
                                  {"sqlite": "ALTER TABLE notes ADD COLUMN kept INTEGER NOT NULL DEFAULT 1",
                                   "postgresql": "ALTER TABLE notes ADD COLUMN kept BOOLEAN NOT NULL DEFAULT true"}],
                        turn_rows={"notes": "event_id"})


async def test_a_plugins_tables_are_created_migrated_once_and_kept_across_versions(open_test_store: StoreFactory):
    store = await open_test_store(tables=[NOTES_V1])
    notes = store.tables("notes")
    assert await notes.execute('INSERT INTO notes (event_id, "text") VALUES (?, ?)', "E1", "first") == 1
    await store.close()

    upgraded = await open_test_store(tables=[NOTES_V2])  # the plugin's next release: two migrations more
    rows = await upgraded.tables("notes").fetch('SELECT event_id, "text", kept FROM notes')
    assert [(r["event_id"], r["text"], bool(r["kept"])) for r in rows] == [("E1", "first", True)]
    await upgraded.close()
    again = await open_test_store(tables=[NOTES_V2])  # nothing left to migrate: no error, rows as they were
    assert len(await again.tables("notes").fetch("SELECT * FROM notes")) == 1
    await again.close()

    with pytest.raises(StoreUnusable, match="'notes' are at version 3, newer than the installed plugin knows"):
        await open_test_store(tables=[NOTES_V1])  # downgraded plugin


async def test_a_plugins_turn_rows_go_with_their_turn(open_test_store: StoreFactory):
    store = await open_test_store(tables=[NOTES_V1, FEEDBACK_TABLES])
    notes = store.tables("notes")
    old = await store.active_session(T1, "b")
    old.last_active = 1000.0
    await store.save_session(old)
    await finish_turn(store, old, "E1", at=1000.0)
    await store.end_session(T1)
    new = await store.active_session(T1, "b")
    await finish_turn(store, new, "E2", at=5000.0)
    for event_id in ("E1", "E2"):
        await notes.execute('INSERT INTO notes (event_id, "text") VALUES (?, ?)', event_id, "note")
        await Votes(store).record(event_id, "u1", "up", None, 1000.0)

    # E1's turn, its note, its vote and its ended session
    assert await store.prune(turns_before=2000.0) == 4
    assert [r["event_id"] for r in await notes.fetch("SELECT event_id FROM notes")] == ["E2"]
    await store.delete_session(new.id)
    assert await notes.fetch("SELECT event_id FROM notes") == [] and await Votes(store).list() == []


async def test_a_store_from_before_plugin_tables_keeps_its_feedback(open_test_store: StoreFactory, store_url: str,
                                                                    tmp_path: Path):
    """The feedback table was the core's until schema 4 (SQLite) / 2 (PostgreSQL): upgraded
    stores hand it to the plugin with every vote in it."""
    store = await open_test_store()
    session = await store.active_session(T1, "b")
    await finish_turn(store, session, "E1", at=1000.0)
    await Votes(store).record("E1", "u1", "down", "old", 1000.0)
    await store.close()
    if store_url.startswith("sqlite"):  # back to the schema before this change
        db = sqlite3.connect(tmp_path / "store.db")
        db.executescript("DROP TABLE plugin_schema; PRAGMA user_version = 4;")
        db.close()
    else:
        async with (await open_test_store(tables=[]))._pool.acquire() as conn:  # type: ignore[attr-defined]
            await conn.execute("DROP TABLE plugin_schema; DELETE FROM botkit_schema WHERE version = 3")
    upgraded = await open_test_store()
    assert [(v["event_id"], v["value"], v["comment"]) for v in await Votes(upgraded).list()] == [("E1", "down", "old")]


def test_tables_outside_the_namespace_and_namespaces_registered_twice_are_refused():
    with pytest.raises(ValueError, match="table 'feedback' is outside the namespace 'notes'"):
        PluginTables("notes", ["CREATE TABLE IF NOT EXISTS feedback (x TEXT)"])
    with pytest.raises(ValueError, match="outside the namespace"):
        PluginTables("notes", ["CREATE INDEX turns_by_note ON notes (x)"])
    with pytest.raises(ValueError, match="lower-case"):
        PluginTables("Notes; DROP", [])

    class Again:
        @hookimpl
        def botkit_register_tables(self, register):
            register(PluginTables("feedback", []))

    plugins = Plugins()
    plugins.load_entry_points()
    plugins.add(Again(), "third-party", "test")
    with pytest.raises(PluginError) as refused:
        plugins.collect()
    assert {refused.value.plugin, str(refused.value).rsplit(" ", 1)[-1]} == {"third-party", "feedback"}  # both named


async def test_a_namespace_nobody_registered_is_a_lookup_error(store: Store):
    with pytest.raises(LookupError, match="no plugin registered tables named 'notes'.*registered: feedback"):
        store.tables("notes")


GUIDE = Path(__file__).parents[2] / "docs" / "plugins.md"
#: the guide's example of a plugin with a table, run as it is written there
PLUGIN = re.search(r"^```python\n# notes_plugin.py\n(.*?)^```$", GUIDE.read_text(encoding="utf-8"), re.M | re.S)[1]
BROKEN = '''
class Broken:
    @hookimpl
    def botkit_turn_annotations(self, store, event_ids):
        raise RuntimeError("broken on purpose")

    @hookimpl
    def botkit_turn_tallies(self, store, since, limit):
        return ["not", "a", "dict"]


@hookimpl
def botkit_startup(bot):
    bot.plugins.add(Broken(), "broken", "test")
'''


async def test_a_third_party_plugins_table_in_the_history_views_and_metrics(tmp_path: Path, caplog, capsys):
    (tmp_path / "notes_plugin.py").write_text(PLUGIN + textwrap.dedent(BROKEN))
    token = "a-dashboard-token-for-tests-42"
    config = {"plugins": ["notes_plugin.py"], "metrics": {"enabled": True}, "dashboard": {"token": token},
              "adapters": {"rec": {"type": "recording"}}, "backends": {"kb": {"type": "fake", "answer": "a"}}}
    async with running_bot(config, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("q1", event_id="E1")
        await bot.idle(5)
        await bot.store.tables("notes").execute('INSERT INTO notes (event_id, "text") VALUES (?, ?)', "E1", "seen")
        await Votes(bot.store).record("E1", "u1", "up", None, time.time())
        annotations = await bot.plugins.turn_annotations(bot.store, ["E1"])
        assert annotations["E1"]["notes"] == ["seen"]
        assert [(v["user"], v["value"]) for v in annotations["E1"]["feedback"]] == [("u1", "up")]
        tallies = await bot.plugins.turn_tallies(bot.store)
        assert (tallies["notes"], tallies["feedback"]) == ({"written": 1}, {"up": 1})
        [turn] = await bot.store.recent_turns(limit=1)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{bot.server.url}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"{bot.server.url}/dashboard") as response:
                overview = await response.text()
            async with http.get(f"{bot.server.url}/dashboard/turns/{turn['id']}") as response:
                one_turn = await response.text()
    assert 'botkit_notes{value="written"} 1.0' in metrics and 'botkit_feedback{value="up"} 1.0' in metrics
    # people see a plugin's count in the window and its field on the turn's page
    assert re.search(r'<div class="label">Notes</div><div class="value">1</div><div class="sub">1 written</div>',
                     overview), overview
    assert "<dt>notes</dt><dd>[&quot;seen&quot;]</dd>" in one_turn, one_turn
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert any("broken failed in botkit_turn_annotations" in m for m in left_out), left_out
    assert any("broken" in m and "botkit_turn_tallies returned ['not', 'a', 'dict']" in m for m in left_out), left_out

    from botkit.cli import main

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["sessions", "show", "-c", str(tmp_path / "config.yaml"), turn["thread"]]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"│ notes +│ \[\"seen\"\]", shown), shown  # a row of the plugin's own, in the text view
