"""The history reads behind the web chat's reload and the dashboard, on every store (SQLite,
PostgreSQL): what they return, in which order, and that each stays within its bound."""

from __future__ import annotations

import re
import time
from unittest import mock

from botkit_plugins.feedback.votes import Votes

from botkit.events import Source, ThreadKey
from botkit.store import Store
from botkit.store.history import numbered
from botkit.turn import Answer

from .test_store import T1, T2, entry

SOURCE = Source(1, "Doc", "https://x")


async def record(store: Store, thread: ThreadKey, event_id: str, *, at: float, status: str = "complete",
                 score: float | None = 0.9, sources: bool = True, adapter: str = "rec",
                 first_text_after: float | None = 0.2, duration: float = 1.0, question: str = "q") -> None:
    session = await store.active_session(thread, "b")
    journaled = entry(event_id, thread, question)
    journaled.inbound.adapter = adapter
    assert await store.admit(journaled)
    answer = Answer(f"answer to {question}", sources=[SOURCE] if sources else [], score=score, status=status,
                    message_ids=[f"m-{event_id}"], first_text_after=first_text_after, duration=duration,
                    error=None if status == "complete" else "it broke")
    with mock.patch.object(time, "time", lambda: at):
        await store.close_turn(journaled, session, answer)


async def test_thread_turns_are_the_latest_of_that_thread_oldest_first(store: Store):
    for n in range(5):
        await record(store, T1, f"A{n}", at=1000.0 + n, question=f"q{n}")
    await record(store, T2, "B0", at=1010.0)
    turns = await store.thread_turns(T1, limit=3)
    assert [t["event_id"] for t in turns] == ["A2", "A3", "A4"]
    assert turns[-1]["question"] == "q4" and turns[-1]["message_ids"] == ["m-A4"]
    assert turns[-1]["sources"][0]["title"] == "Doc"
    assert [t["event_id"] for t in await store.thread_turns(T2, limit=10)] == ["B0"]
    assert await store.thread_turns(ThreadKey("web", "w", "c", "none"), limit=10) == []


async def test_turn_figures_are_the_latest_within_the_window_without_texts(store: Store):
    await record(store, T1, "old", at=500.0)
    await record(store, T1, "E1", at=1000.0, score=0.2, first_text_after=0.5, duration=2.0)
    await record(store, T1, "E2", at=1001.0, status="timeout", first_text_after=None, duration=120.0)
    await record(store, T2, "E3", at=1002.0, sources=False, adapter="web", score=None)
    figures = await store.turn_figures(since=900.0, limit=10)
    assert [f["event_id"] for f in figures] == ["E3", "E2", "E1"]
    assert "question" not in figures[0] and "answer" not in figures[0]
    e3, e2, e1 = figures
    assert (e3["adapter"], e3["cited"], e3["score"]) == ("web", False, None)
    assert (e2["status"], e2["first_text_after"], e2["duration"], e2["cited"]) == ("timeout", None, 120.0, True)
    assert (e1["score"], e1["first_text_after"], e1["backend"], e1["created_at"]) == (0.2, 0.5, "b", 1000.0)
    assert [f["event_id"] for f in await store.turn_figures(since=900.0, limit=2)] == ["E3", "E2"]

    await Votes(store).record("E1", "u1", "up", None, 1100.0)
    await Votes(store).record("E3", "u1", "down", None, 1100.0)
    await Votes(store).record("E3", "u2", "down", "wrong", 1100.0)
    await Votes(store).record("old", "u1", "up", None, 1100.0)  # a vote on a turn outside the window
    assert await Votes(store).counts(since=900.0, limit=10) == {"up": 1, "down": 2}
    assert await Votes(store).counts(since=900.0, limit=1) == {"down": 2}


async def test_recent_turns_page_backwards_and_by_id_and_one_turn_in_full(store: Store):
    for n in range(5):
        await record(store, T1, f"E{n}", at=1000.0 + n, question=f"question {n} " + "x" * 400)
    page = await store.recent_turns(limit=2)
    assert [t["event_id"] for t in page] == ["E4", "E3"]
    assert len(page[0]["question"]) == 300 and page[0]["thread"] == str(T1) and page[0]["status"] == "complete"
    older = await store.recent_turns(limit=10, before=page[-1]["id"])
    assert [t["event_id"] for t in older] == ["E2", "E1", "E0"]
    picked = await store.recent_turns(limit=10, ids=[page[0]["id"], older[-1]["id"], 10 ** 30])
    assert [t["event_id"] for t in picked] == ["E4", "E0"]

    await Votes(store).record("E4", "u2", "down", "not this", 2000.0)
    turn = await store.turn_by_id(page[0]["id"])
    assert turn is not None and turn["event_id"] == "E4" and turn["answer"].startswith("answer to question 4")
    assert turn["sources"][0]["url"] == "https://x" and turn["message_ids"] == ["m-E4"]
    on_turns = await Votes(store).on_turns(["E4", "E3"])  # the feedback plugin's table, beside the turn
    assert [(f["user"], f["value"], f["comment"]) for f in on_turns["E4"]] == [("u2", "down", "not this")]
    assert on_turns["E3"] == []
    assert "session_id" in turn
    assert await store.turn_by_id(10 ** 9) is None
    assert await store.turn_by_id(10 ** 30) is None


async def test_every_history_read_follows_an_index(store: Store, store_url: str):
    """The statements the history reads run, explained by the database itself: none reads a
    whole table, so a store of a million turns costs what a small one does."""
    await record(store, T1, "E1", at=time.time())
    await Votes(store).record("E1", "u1", "up", None, time.time())
    seen: list[tuple[str, tuple]] = []
    sqlite = store_url.startswith("sqlite")
    read = store._rows  # what every history read and plugin table read goes through

    async def spy(sql, params):
        seen.append((sql, tuple(params)))
        return await read(sql, params)

    store._rows = spy
    figures = await store.turn_figures(since=0.0, limit=1000)
    await Votes(store).counts(since=0.0, limit=1000)
    await Votes(store).on_turns(["E1"])
    await store.recent_turns(limit=25)
    await store.recent_turns(limit=25, before=10)
    await store.recent_turns(limit=25, ids=[figures[0]["id"]])
    await store.turn_by_id(figures[0]["id"])
    await store.thread_turns(T1, limit=50)
    assert len(seen) == 8
    for sql, params in seen:
        if sqlite:
            plan = " / ".join(row["detail"] for row in await read(f"EXPLAIN QUERY PLAN {sql}", params))
            if plan == "SCAN turns":  # the table's own b-tree: read backwards along its key, up to the LIMIT
                assert sql.endswith("FROM turns ORDER BY id DESC LIMIT ?"), sql
                continue
            assert not re.search(r"SCAN (turns|feedback|sessions)\b(?! USING)", plan), (sql, plan)
        else:
            async with store._pool.acquire() as conn:
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {numbered(sql)}", *params))
            assert "Seq Scan" not in plan, (sql, plan)
