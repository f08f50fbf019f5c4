"""The turn journal through the real dispatcher and SQLite store: order, durability, recovery.

A crash is simulated the way the disk and the platform would leave it: the store's files
are copied at the chosen moment (after a flush: what was committed), and so are the
messages the recording "platform" holds (`world`); a new bot is then started on the copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from botkit import hookimpl
from botkit.bot import Bot
from botkit.pipeline.dispatcher import FINAL_EDIT_MARGIN
from botkit.testing import copy_world, running_bot
from botkit.turn import Turn


def config(world: str, progress_delay: float = 0.5, **backend: Any) -> dict[str, Any]:
    return {
        "adapters": {"rec": {"type": "recording", "world": world}},
        "backends": {"b": {"type": "fake", "answer": "Answer to {question}.", **backend}},
        "dispatch": {"progress_delay": progress_delay},
    }


async def crash(bot: Bot, tmp_path: Path, world: str) -> tuple[Path, str]:
    """What a crash right now leaves: the committed store files and the platform's messages."""
    await bot.store.flush()
    after = tmp_path / "after-crash"
    after.mkdir()
    for suffix in ("", "-wal", "-shm"):
        src = tmp_path / f"botkit-test.db{suffix}"
        if src.exists():
            shutil.copy(src, after / src.name)
    return after, copy_world(world)


def turns_in_db(directory: Path) -> list[tuple[str, str, str]]:
    with contextlib.closing(sqlite3.connect(directory / "botkit-test.db")) as db:
        return db.execute("SELECT event_id, status, answer FROM turns ORDER BY id").fetchall()


def journal_in_db(directory: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(directory / "botkit-test.db")) as db:
        return db.execute("SELECT event_id, state FROM journal").fetchall()


async def restart_finds_the_answer_on_screen(world: str, after: Path, text: str) -> None:
    """A restart on what a crash left, with the whole answer `text` already on screen: it is
    delivered again (one edit), the backend is not asked again, and turn E1 is recorded complete."""
    async with running_bot(config(world), after) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: len(rec.calls) == 1)
        await bot.idle(5)
        (message,) = rec.messages.values()
        assert message.plain() == text and message.final
        assert [kind for kind, _, _ in rec.calls] == ["edit"]
        assert bot.backends["b"].calls == []
    assert turns_in_db(after) == [("E1", "complete", text)]


async def test_submit_returns_once_the_turn_is_journaled_on_disk(tmp_path):
    shared = {**config("durable"), "store": {"url": "sqlite:///botkit-test.db", "exclusive": False}}  # readable meanwhile
    async with running_bot(shared, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        assert await rec.inject("are you there?", event_id="E1")
        # no flush: what another connection sees the moment submit returned (the adapter acks now)
        assert [e for e, _ in journal_in_db(tmp_path)] == ["E1"]
        backend.gate.set()
        await bot.idle(5)
    assert journal_in_db(tmp_path) == []
    assert [(e, s) for e, s, _ in turns_in_db(tmp_path)] == [("E1", "complete")]


async def test_a_restart_keeps_the_visible_text_and_appends_the_notice(tmp_path):
    async with running_bot(config("visible", chunks=3), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.midway = asyncio.Event()
        await rec.inject("what is shown")
        await rec.wait_for(lambda: any(m.text for m in rec.messages.values()))
        shown = next(m.text for m in rec.messages.values() if m.text)
        after, world = await crash(bot, tmp_path, "visible")
        backend.midway.set()
    async with running_bot(config(world), after) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: any("interrupted" in m.plain() for m in rec.messages.values()))
        await bot.idle(5)
        (message,) = rec.messages.values()  # the same message, edited: nothing posted anew
        assert message.text == shown and message.final
        assert "interrupted" in message.plain()
        assert [kind for kind, _, _ in rec.calls] == ["edit"]
        assert bot.backends["b"].calls == []  # the backend is not asked twice for one turn
    assert journal_in_db(after) == []
    assert [(s, a) for _, s, a in turns_in_db(after)] == [("interrupted", shown)]


async def test_a_crash_during_recovery_is_recovered_without_a_second_notice(tmp_path):
    quiet = {**config("twice"), "adapters": {"rec": {"type": "recording", "world": "twice", "placeholder": False}}}
    async with running_bot(quiet, tmp_path) as bot:
        backend = bot.backends["b"]
        backend.gate = asyncio.Event()  # asked, nothing shown yet
        await bot.adapters["rec"].inject("cut twice")
        await bot.store.flush()
        first, world = await crash(bot, tmp_path, "twice")
        backend.gate.set()
    config_of = lambda world: {**quiet, "adapters": {"rec": {**quiet["adapters"]["rec"], "world": world}}}  # noqa: E731
    async with running_bot(config_of(world), first) as bot:
        rec = bot.adapters["rec"]
        rec.hold_send = asyncio.Event()  # the notice is posted anew; its id not yet known
        await rec.wait_for(lambda: len(rec.order) == 1)
        second, world = await crash(bot, first, world)
        rec.hold_send.set()
    async with running_bot(config_of(world), second) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: len(rec.calls) == 1)
        await bot.idle(5)
        (message,) = rec.messages.values()  # found again and edited, not posted a second time
        assert "interrupted" in message.plain()
        assert [kind for kind, _, _ in rec.calls] == ["edit"]
    assert [s for _, s, _ in turns_in_db(second)] == ["interrupted"]


async def test_a_crash_between_the_placeholder_and_its_record_leaves_no_orphan(tmp_path):
    async with running_bot(config("orphan", progress_delay=0), tmp_path) as bot:
        rec = bot.adapters["rec"]
        rec.hold_send = asyncio.Event()  # the placeholder is on the platform, its id not yet known
        await rec.inject("who posted this?", event_id="E1")
        await rec.wait_for(lambda: len(rec.order) == 1)
        after, world = await crash(bot, tmp_path, "orphan")
        rec.hold_send.set()
    async with running_bot(config(world), after) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: any(m.final for m in rec.messages.values()))
        await bot.idle(5)
        (message,) = rec.messages.values()  # found through the adapter and edited, not left "thinking…"
        assert "interrupted" in message.plain() and not message.status
        assert [kind for kind, _, _ in rec.calls] == ["edit"]


async def test_a_crash_during_a_fast_answers_only_post_recovers_it_as_complete(tmp_path):
    async with running_bot(config("fast"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        rec.hold_send = asyncio.Event()  # no placeholder: the one post is the whole answer
        await rec.inject("who posted this?", event_id="E1")
        await rec.wait_for(lambda: len(rec.order) == 1)
        (message,) = rec.messages.values()
        assert message.final and not message.status
        after, world = await crash(bot, tmp_path, "fast")
        rec.hold_send.set()
    await restart_finds_the_answer_on_screen(world, after, "Answer to who posted this?.")


async def test_a_final_edit_that_landed_before_the_crash_is_not_replaced_by_a_notice(tmp_path):
    async with running_bot(config("landed", progress_delay=0), tmp_path) as bot:
        rec = bot.adapters["rec"]
        rec.hold_final = asyncio.Event()  # the final edit is on the platform; the turn is not recorded
        await rec.inject("hello", event_id="E1")
        await rec.wait_for(lambda: any(m.final for m in rec.messages.values()))
        after, world = await crash(bot, tmp_path, "landed")
        rec.hold_final.set()
    await restart_finds_the_answer_on_screen(world, after, "Answer to hello.")


async def test_questions_queued_at_a_crash_are_answered_in_order_after_it(tmp_path):
    async with running_bot(config("queued"), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        for n in range(4):
            assert await rec.inject(f"q{n}", event_id=f"E{n}")
        await rec.wait_for(lambda: len(rec.order) == 1)  # q0 started: its placeholder is up
        after, world = await crash(bot, tmp_path, "queued")
        backend.gate.set()
    async with running_bot(config(world), after) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: sum(m.final for m in rec.messages.values()) == 4)
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["q1", "q2", "q3"]  # q0 was asked already
        texts = rec.texts()
        assert "interrupted" in texts[0]
        assert texts[1:] == ["Answer to q1.", "Answer to q2.", "Answer to q3."]
    assert [e for e, _, _ in turns_in_db(after)] == ["E0", "E1", "E2", "E3"]


async def test_a_question_older_than_max_age_is_told_to_ask_again_instead(tmp_path):
    async with running_bot(config("old"), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        await rec.inject("q0")
        await rec.inject("q1")
        await rec.wait_for(lambda: len(rec.order) == 1)
        after, world = await crash(bot, tmp_path, "old")
        backend.gate.set()
    aged = {**config(world), "recovery": {"max_age": 0.001}}
    async with running_bot(aged, after) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: len(rec.order) == 2)
        await bot.idle(5)
        assert bot.backends["b"].calls == []
        assert "ask again" in rec.texts()[1]


async def test_a_graceful_stop_leaves_queued_questions_for_the_next_start(tmp_path):
    async with running_bot(config("stop"), tmp_path, grace=0.1) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        await rec.inject("running")
        await rec.inject("waiting")
        await rec.wait_for(lambda: len(rec.order) == 1)
    assert [s for _, s in journal_in_db(tmp_path)] == ["queued"]
    async with running_bot(config("stop"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: "Answer to waiting." in rec.texts())
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["waiting"]


class SlowMiddleware:
    """A middleware whose verdict takes a random while (an access check over the network)."""

    @hookimpl
    async def botkit_message_received(self, turn: Turn) -> None:
        await asyncio.sleep(random.uniform(0, 0.02))


async def test_slow_middlewares_do_not_reorder_a_thread(tmp_path):
    random.seed(7)
    async with running_bot(config("middle", jitter=0.01), tmp_path) as bot:
        bot.plugins.add(SlowMiddleware(), "slow", "test")
        rec = bot.adapters["rec"]
        # deliveries arrive back to back, each submitted before the previous one's verdict
        results = await asyncio.gather(*(rec.inject(f"t{t} q{n}", thread=f"t{t}")
                                         for n in range(5) for t in range(10)))
        assert all(results)
        await bot.idle(10)
        asked = [q for _, q in bot.backends["b"].calls]
        for t in range(10):
            assert [q for q in asked if q.startswith(f"t{t} ")] == [f"t{t} q{n}" for n in range(5)]


async def test_concurrent_threads_with_random_latencies_answer_each_question_once_in_order(tmp_path):
    random.seed(11)
    async with running_bot(config("latency", chunks=3, jitter=0.02), tmp_path) as bot:
        rec = bot.adapters["rec"]

        async def person(t: int) -> None:
            for n in range(4):  # each question sent once the previous delivery was accepted
                assert await rec.inject(f"t{t} q{n}", thread=f"t{t}", event_id=f"t{t}-{n}")
                if random.random() < 0.3:  # and now and then delivered twice (a platform retry)
                    assert not await rec.inject(f"t{t} q{n}", thread=f"t{t}", event_id=f"t{t}-{n}")

        await asyncio.gather(*(person(t) for t in range(20)))
        await bot.idle(20)
        asked = [q for _, q in bot.backends["b"].calls]
        assert len(asked) == len(set(asked)) == 80
        for t in range(20):
            assert [q for q in asked if q.startswith(f"t{t} ")] == [f"t{t} q{n}" for n in range(4)]
        finals = [m.text for m in rec.messages.values() if m.final]
        assert sorted(finals) == sorted(f"Answer to {q}." for q in asked)


async def test_a_stop_with_the_platform_unreachable_is_bounded_and_leaves_the_turn_to_recovery(tmp_path):
    """SIGTERM while the platform cannot be reached: the final edit is not retried past the
    grace time plus the margin, and the turn stays journaled; the next start marks it."""
    async with running_bot(config("unreachable", chunks=3), tmp_path, grace=0.5) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.midway = asyncio.Event()  # the answer stops after its first chunk
        await rec.inject("what is shown", event_id="E1")
        await rec.wait_for(lambda: any(m.text for m in rec.messages.values()))

        async def unreachable(*args, **kwargs):
            raise ConnectionError("the platform cannot be reached")

        rec.edit = rec.send = unreachable
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 0.5 + FINAL_EDIT_MARGIN + 2
    assert journal_in_db(tmp_path) == [("E1", "running")]  # nothing recorded as if it had been shown
    assert turns_in_db(tmp_path) == []
    async with running_bot(config("unreachable"), tmp_path) as bot:  # the platform is back
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: any(m.final for m in rec.messages.values()))
        await bot.idle(5)
        (message,) = rec.messages.values()  # the final edit the stop could not deliver, delivered now
        assert message.text == "Answer t" and "the bot was stopped while answering" in message.plain()
        assert bot.backends["b"].calls == []
    assert journal_in_db(tmp_path) == []
    assert [(s, a) for _, s, a in turns_in_db(tmp_path)] == [("interrupted", "Answer t")]
