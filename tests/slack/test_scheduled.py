"""A scheduled question on Slack, through the real scheduler and dispatcher: the answer is
posted at the top of the channel, continues in the thread that message starts, is edited
by ts (also after a restart), and people's replies in that thread are answered there."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from botkit.adapters import MessageRef, Outgoing
from botkit.events import ThreadKey
from botkit.testing import eventually, running_bot
from botkit_plugins.slack.testing import FakeSlack, event_callback

from .conftest import bot_config, message, post_event

DUE = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
JOB = {"name": "digest", "every": "1h", "post": {"adapter": "slack", "channel": "C1"},
       "ask": {"backend": "b", "question": "What changed in the docs this week?"}}
LONG = " ".join(f"Point {n} of the weekly digest says what changed and why it matters." for n in range(1, 11)) + " [1]"
SOURCES = [{"title": "Changelog", "url": "https://docs.example.com/changes"}]


def shown(fake: FakeSlack) -> dict[str, list[dict[str, Any]]]:
    """ts -> the blocks each posted message reads now (its last chat.update, else its post)."""
    blocks = {r["ts"]: p["blocks"] for p, r in zip(fake.of("chat.postMessage"), fake.responses("chat.postMessage"))}
    for update in fake.of("chat.update"):
        blocks[update["ts"]] = update["blocks"]
    return blocks


def markdown(blocks: list[dict[str, Any]]) -> str:
    return "".join(b["text"] for b in blocks if b["type"] == "markdown")


async def ask(bot: Any) -> Any:
    return await bot.scheduler.ask(bot.config.root.schedule[0], due=DUE)


async def test_a_long_scheduled_answer_starts_a_thread_and_continues_in_it(fake, tmp_path):
    config = bot_config(fake, slack={"max_length": 200},
                        backend={"answer": LONG, "chunks": 4, "delay": 0.01, "sources": SOURCES},
                        middlewares={"citations": {}}, schedule=[JOB])
    async with running_bot(config, tmp_path) as bot:
        answer = await ask(bot)
        await bot.idle(5)
    assert answer.status == "complete"
    posts, sent = fake.of("chat.postMessage"), fake.responses("chat.postMessage")
    root = sent[0]["ts"]
    assert posts[0]["channel"] == "C1" and "thread_ts" not in posts[0]  # top level: Slack never saw the thread
    assert len(posts) >= 3  # the placeholder that became part one, then continuations
    assert all(p["channel"] == "C1" and p["thread_ts"] == root for p in posts[1:])

    updates = fake.of("chat.update")
    posted = [r["ts"] for r in sent]
    assert root in {u["ts"] for u in updates}  # the placeholder was edited into the answer
    assert {u["ts"] for u in updates} <= set(posted) and all(u["channel"] == "C1" for u in updates)
    final = shown(fake)
    text = " ".join(markdown(final[ts]) for ts in posted).strip()
    assert text.split() == LONG.replace("[1]", "[[1]](https://docs.example.com/changes)").split()
    notes = [e["text"] for b in final[posted[-1]] if b["type"] == "context" for e in b["elements"]]
    assert any("https://docs.example.com/changes" in n for n in notes)  # the sources note, in the thread
    assert bot.backends["b"].calls == [(None, "What changed in the docs this week?")]


async def test_native_streaming_posts_and_edits_a_scheduled_answer(fake, tmp_path):
    config = bot_config(fake, slack={"streaming": "native"}, backend={"answer": "All quiet this week.", "chunks": 2},
                        schedule=[JOB])
    async with running_bot(config, tmp_path) as bot:
        assert (await ask(bot)).status == "complete"
        await bot.idle(5)
    assert fake.of("chat.startStream") == []  # a stream needs a thread; this post starts one
    posts = fake.of("chat.postMessage")
    assert len(posts) == 1 and "thread_ts" not in posts[0]
    root = fake.responses("chat.postMessage")[0]["ts"]
    assert markdown(shown(fake)[root]) == "All quiet this week."
    assert all(u["ts"] == root for u in fake.of("chat.update"))


async def test_a_reply_in_the_started_thread_is_answered_there_without_a_mention(fake, tmp_path):
    config = bot_config(fake, backend={"answer": "Answer {turn}: {question}"}, schedule=[JOB])
    async with running_bot(config, tmp_path) as bot:
        await ask(bot)
        root = fake.responses("chat.postMessage")[0]["ts"]
        reply = message("and the API changes?", kind="message", ts="1700000001.000001", thread_ts=root,
                        channel_type="channel")
        await post_event(bot.server.url, event_callback(reply, "EvReply"))
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert fake.of("conversations.replies") == []  # known as the bot's thread, no need to read it
    assert fake.of("chat.postMessage")[1]["thread_ts"] == root
    assert bot.backends["b"].calls[1][1] == "and the API changes?"
    assert any(markdown(blocks) == "Answer 1: and the API changes?" for blocks in shown(fake).values())


async def stored_in_flight(store: Any) -> list[tuple[ThreadKey, list[dict[str, Any]]]]:
    """The answers the journal keeps as in progress with a posted message, once it has any
    (the runner records the placeholder just after Slack answered chat.postMessage), as a
    restart would read them: from the file."""
    kept: list[tuple[ThreadKey, list[dict[str, Any]]]] = []

    async def posted() -> bool:
        await store.flush()
        with contextlib.closing(sqlite3.connect(store.path)) as db:
            rows = db.execute("SELECT thread, messages FROM journal WHERE state = 'running'").fetchall()
        kept[:] = [(ThreadKey.parse(t), json.loads(m)) for t, m in rows]
        return any(m["message_id"] for _, messages in kept for m in messages)

    await eventually(posted)
    return kept


async def test_a_new_process_edits_the_top_level_post_from_what_the_store_kept(fake, tmp_path):
    config = bot_config(fake, schedule=[JOB])
    config["store"] = {"url": "sqlite:///botkit-test.db", "exclusive": False}  # the test reads it meanwhile
    async with running_bot(config, tmp_path) as bot:
        gate = bot.backends["b"].gate = asyncio.Event()
        asking = asyncio.ensure_future(ask(bot))
        await fake.wait_for("chat.postMessage")  # the placeholder, at the top of the channel
        kept = await stored_in_flight(bot.store)  # what a restart would find: the store's JSON
        gate.set()
        assert (await asyncio.wait_for(asking, 5)).status == "complete"
    placeholder = fake.responses("chat.postMessage")[0]["ts"]
    assert "thread_ts" not in fake.of("chat.postMessage")[0]

    async with running_bot(config, tmp_path) as restarted:  # a fresh adapter: nothing in memory
        thread, messages = kept[0]
        ref = MessageRef(thread, messages[-1]["message_id"], messages[-1]["data"])
        await restarted.adapters["slack"].edit(ref, Outgoing("Edited after the restart.", final=True))
    last = fake.of("chat.update")[-1]
    assert (last["channel"], last["ts"], last["text"]) == ("C1", placeholder, "Edited after the restart.")


async def test_a_send_without_reply_to_into_a_real_slack_thread_stays_in_it(fake, tmp_path):
    """Not a thread the bot starts (e.g. feedback asking for a comment under an answer)."""
    async with running_bot(bot_config(fake), tmp_path) as bot:
        adapter = bot.adapters["slack"]
        await adapter.send(ThreadKey("slack", "T111", "C1", "1690000000.000100"), Outgoing("Why?", final=True))
        await adapter.send(ThreadKey("slack", "T111", "D1", "dm"), Outgoing("In the DM.", final=True))
    assert [(p["channel"], p.get("thread_ts")) for p in fake.of("chat.postMessage")] == \
        [("C1", "1690000000.000100"), ("D1", None)]
