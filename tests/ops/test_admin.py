"""`botkit sessions ...` and `botkit backend history` against a store filled by real turns."""

from __future__ import annotations

import asyncio
import json
import time

import yaml

from botkit.cli import main
from botkit.testing import running_bot, write_config
from botkit_plugins.vectara.fake import FakeVectara
from botkit_plugins.feedback.votes import Votes

API_KEY = "zqt_admin-test-key-0123456789"


def deployment(fake: FakeVectara) -> dict:
    return {"adapters": {"rec": {"type": "recording"}, "other": {"type": "recording", "channel": "c9"}},
            "backends": {"kb": {"type": "vectara", "api_key": API_KEY, "base_url": fake.url,
                                "corpora": [{"corpus_key": "robotics-papers"}]}},
            "middlewares": {"feedback": {}}}


async def fill(fake: FakeVectara, tmp_path) -> dict:
    """Two threads on `rec` (two turns in t1), one on `other`, a vote; returns the ids."""
    async with running_bot(deployment(fake), tmp_path) as bot:
        rec, other = bot.adapters["rec"], bot.adapters["other"]
        await rec.inject("What are Robot Utility Models?", thread="t1")
        await bot.idle(5)
        await rec.inject("How well do they work?", thread="t1")
        await other.inject("Where is the paper?", thread="t7", event_id="other-1")
        await bot.idle(5)
        first = await bot.store.active_session(rec.thread("t1"), "kb")
        turn = (await bot.store.turns_of(first.id))[0]
        await Votes(bot.store).record(turn["event_id"], "u2", "up", "helpful", time.time())
        return {"thread": str(rec.thread("t1")), "chat": first.session_id, "id": first.id,
                "other": str(other.thread("t7"))}


async def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `botkit ARGV` as the console script does (its own event loop, in a thread)."""
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


async def test_list_show_export_and_delete_with_the_upstream_chat(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # tables as wide as a wide terminal
    async with FakeVectara(api_key=API_KEY) as fake:
        ids = await fill(fake, tmp_path)
        config = str(write_config(deployment(fake), tmp_path))

        code, out = await cli(capsys, "sessions", "list", "-c", config, "--json")
        rows = json.loads(out)
        assert code == 0 and len(rows) == 2
        assert {r["thread"] for r in rows} == {ids["thread"], ids["other"]}
        assert {r["adapter"] for r in rows} == {"rec", "other"}

        code, out = await cli(capsys, "sessions", "list", "-c", config, "--json", "--adapter", "other")
        assert [r["thread"] for r in json.loads(out)] == [ids["other"]]
        code, out = await cli(capsys, "sessions", "list", "-c", config, "--json", "--channel", "c1", "--since", "1h")
        assert [r["thread"] for r in json.loads(out)] == [ids["thread"]]
        code, out = await cli(capsys, "sessions", "list", "-c", config, "--json", "--since", "2099-01-01")
        assert json.loads(out) == []
        code, out = await cli(capsys, "sessions", "list", "-c", config)  # the table
        assert code == 0 and ids["chat"] in out and "rec" in out

        for ref in (ids["thread"], ids["chat"], str(ids["id"])):
            code, out = await cli(capsys, "sessions", "show", ref, "-c", config, "--json")
            [session] = json.loads(out)
            assert code == 0 and session["session_id"] == ids["chat"]
        turns = session["turns"]
        assert [t["question"] for t in turns] == ["What are Robot Utility Models?", "How well do they work?"]
        assert turns[0]["answer"].startswith("Robot Utility Models are policies")
        assert [s["title"] for s in turns[0]["sources"]] == ["Robot Utility Models", "RUM results"]
        assert turns[0]["score"] == 0.82 and turns[0]["duration"] > 0 and turns[0]["first_text_after"] is not None
        assert turns[0]["feedback"] == [{"user": "u2", "value": "up", "comment": "helpful",
                                         "at": turns[0]["feedback"][0]["at"]}]
        code, out = await cli(capsys, "sessions", "show", ids["thread"], "-c", config)
        assert code == 0 and "What are Robot" in out and "0.82" in out and "up" in out

        export = tmp_path / "turns.jsonl"
        code, _ = await cli(capsys, "sessions", "export", "--format", "jsonl", "-o", str(export), "-c", config)
        lines = [json.loads(line) for line in export.read_text().splitlines()]
        assert code == 0 and len(lines) == 3
        assert {line["session_id"] for line in lines} == {ids["chat"], json.loads(
            (await cli(capsys, "sessions", "show", ids["other"], "-c", config, "--json"))[1])[0]["session_id"]}

        code, out = await cli(capsys, "backend", "history", "kb", "-c", config, "--json")
        history = json.loads(out)
        assert code == 0 and ids["chat"] in {c["id"] for c in history["upstream"]}
        assert ids["chat"] in {s["session_id"] for s in history["local"]}
        code, out = await cli(capsys, "backend", "history", "kb", ids["chat"], "-c", config)
        assert code == 0 and "How well do they work?" in out

        code, out = await cli(capsys, "sessions", "delete", ids["thread"], "-c", config, "--json")
        [result] = json.loads(out)
        assert code == 0 and result == {**result, "upstream": "deleted", "local": True}
        assert ("DELETE", f"/v2/chats/{ids['chat']}") in {(r.method, r.path) for r in fake.requests}
        assert ids["chat"] not in fake.chats
        code, out = await cli(capsys, "sessions", "list", "-c", config, "--json")
        assert [r["thread"] for r in json.loads(out)] == [ids["other"]]
        code, _ = await cli(capsys, "sessions", "show", ids["thread"], "-c", config)
        assert code == 1


async def test_an_upstream_failure_keeps_the_local_session_for_a_retry(tmp_path, capsys):
    async with FakeVectara(api_key=API_KEY) as fake:
        ids = await fill(fake, tmp_path)
        config = deployment(fake)
        config["backends"]["kb"]["api_key"] = "zqt_wrong-key-0000000000"
        config["backends"]["kb"]["retry"] = {"attempts": 1}
        path = str(write_config(config, tmp_path))
        code, out = await cli(capsys, "sessions", "delete", ids["chat"], "-c", path, "--json")
        [result] = json.loads(out)
        assert code == 1 and result["upstream"].startswith("error") and result["local"] is False
        assert ids["chat"] in fake.chats
        code, out = await cli(capsys, "sessions", "delete", ids["chat"], "-c", path, "--json", "--local-only")
        assert code == 0 and json.loads(out)[0]["local"] is True


async def test_delete_against_the_fake_backend_calls_its_delete_session(tmp_path, capsys):
    config = {"adapters": {"rec": {"type": "recording"}}, "backends": {"b": {"type": "fake"}}}
    async with running_bot(config, tmp_path) as bot:
        await bot.adapters["rec"].inject("hello")
        await bot.idle(5)
    path = tmp_path / "config.yaml"
    assert yaml.safe_load(path.read_text())["backends"]["b"]["type"] == "fake"
    code, out = await cli(capsys, "sessions", "delete", "fake-session-1", "-c", str(path))
    # a fresh FakeBackend instance in the CLI process says it deleted
    assert code == 0 and "upstream deleted" in out and "local deleted" in out
