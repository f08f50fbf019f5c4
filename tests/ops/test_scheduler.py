"""Scheduled questions and housekeeping jobs, driven by a frozen clock (no sleeps)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

from botkit.config import RootConfig
from botkit.cron import cron_trigger
from botkit.testing import running_bot
from botkit_plugins.feedback.votes import Votes

from .conftest import with_

UTC = timezone.utc
DIGEST = {"name": "weekly-digest", "cron": "0 9 * * 1", "timezone": "Europe/Berlin",
          "post": {"adapter": "rec", "channel": "C0123"},
          "ask": {"backend": "kb", "question": "Summarise what changed in the docs this week"}}


def record_sends(adapter) -> list:
    """Wrap the recording adapter's send to see `reply_to` and the thread of each post."""
    seen = []
    original = adapter.send

    async def send(thread, message, reply_to=None):
        seen.append((thread, reply_to))
        return await original(thread, message, reply_to)

    adapter.send = send
    return seen


def job_events(bot, mask: int) -> asyncio.Queue:
    events: asyncio.Queue = asyncio.Queue()
    bot.scheduler.aps.add_listener(events.put_nowait, mask)
    return events


async def test_a_cron_job_posts_a_cited_answer_as_a_new_thread(clock, tmp_path):
    async with running_bot(with_(schedule=[DIGEST]), tmp_path) as bot:
        rec = bot.adapters["rec"]
        sends = record_sends(rec)
        job = bot.scheduler.get_job("ask:weekly-digest")
        assert job.next_run_time == datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 Berlin, Monday

        bot.scheduler.aps.wakeup()  # 08:59: not due
        executed = job_events(bot, EVENT_JOB_EXECUTED)
        clock.set(datetime(2025, 3, 3, 8, 0, 2, tzinfo=UTC))
        bot.scheduler.aps.wakeup()
        event = await asyncio.wait_for(executed.get(), 5)
        answer = event.retval
        assert answer.status == "complete"

        thread = sends[0][0]
        assert (thread.platform, thread.workspace, thread.channel) == ("slack", "T1", "C0123")
        assert thread.thread == "botkit-weekly-digest-20250303T080000Z"
        assert all(reply_to is None and t == thread for t, reply_to in sends)
        final = rec.texts()[-1]
        assert "This week" in final and "Changelog" in final and "https://docs/changes" in final
        assert "may not be supported" in final  # the FCS warning of a low score
        assert bot.backends["kb"].calls == [(None, "Summarise what changed in the docs this week")]
        turns = await bot.store.list_sessions()
        assert turns[0]["thread"] == str(thread)

        # the same scheduled run delivered again (a retry, a second replica) is not answered twice
        assert await bot.scheduler.ask(bot.config.root.schedule[0], due=datetime(2025, 3, 3, 8, 0, tzinfo=UTC)) is None
        assert len(bot.backends["kb"].calls) == 1
        assert job.next_run_time == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


async def test_a_run_missed_beyond_the_grace_time_is_skipped_within_it_runs_once(clock, tmp_path):
    jobs = [{**DIGEST, "misfire_grace": "1h"}, {**DIGEST, "name": "strict", "misfire_grace": "10m"}]
    async with running_bot(with_(schedule=jobs), tmp_path) as bot:
        missed = job_events(bot, EVENT_JOB_MISSED)
        executed = job_events(bot, EVENT_JOB_EXECUTED)
        clock.set(datetime(2025, 3, 3, 8, 30, tzinfo=UTC))  # the bot was down from 08:59 to 09:30
        bot.scheduler.aps.wakeup()
        assert (await asyncio.wait_for(missed.get(), 5)).job_id == "ask:strict"
        assert (await asyncio.wait_for(executed.get(), 5)).job_id == "ask:weekly-digest"
        await bot.idle(5)
        assert len(bot.backends["kb"].calls) == 1
        bot.scheduler.aps.wakeup()  # nothing else is due until next week
        assert bot.scheduler.get_job("ask:strict").next_run_time == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


async def test_runs_of_one_job_never_overlap(clock, tmp_path):
    job = {**DIGEST, "cron": None, "every": "1m"}
    async with running_bot(with_(schedule=[job]), tmp_path) as bot:
        backend = bot.backends["kb"]
        backend.gate = asyncio.Event()
        skipped = job_events(bot, EVENT_JOB_MAX_INSTANCES)
        executed = job_events(bot, EVENT_JOB_EXECUTED)
        start = clock.now
        clock.set(start + timedelta(minutes=1, seconds=1))
        bot.scheduler.aps.wakeup()
        rec = bot.adapters["rec"]
        await rec.wait_for(lambda: bool(rec.order))  # the first run's placeholder is up
        # every answer is shown to the scheduler only while one of its questions waits
        assert bot.plugins.get("core:scheduler-answers") is not None
        clock.set(start + timedelta(minutes=2, seconds=1))
        bot.scheduler.aps.wakeup()
        await asyncio.wait_for(skipped.get(), 5)
        backend.gate.set()
        await asyncio.wait_for(executed.get(), 5)
        assert len(backend.calls) == 1
        assert bot.plugins.get("core:scheduler-answers") is None


async def test_an_idle_session_expires_and_the_next_message_starts_a_new_one(clock, tmp_path):
    sessions = {"idle_timeout": "1h", "announce_new_session": True, "check_every": "1m"}
    async with running_bot(with_(sessions=sessions), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["kb"]
        await rec.inject("first question", thread="t1")
        await rec.inject("other thread", thread="t2")
        await bot.idle(5)
        executed = job_events(bot, EVENT_JOB_EXECUTED)

        clock.set(clock.now + timedelta(minutes=1, seconds=1))  # the check runs; nothing is idle yet
        bot.scheduler.aps.wakeup()
        assert (await asyncio.wait_for(executed.get(), 5)).retval == 0

        bot.scheduler.clock = lambda: time.time() + 2 * 3600  # two hours later
        clock.set(clock.now + timedelta(minutes=1))
        bot.scheduler.aps.wakeup()
        assert (await asyncio.wait_for(executed.get(), 5)).retval == 2
        assert sorted(backend.ended) == ["fake-session-1", "fake-session-2"]  # told, as on a reset

        await rec.inject("follow-up", thread="t1")
        await bot.idle(5)
        assert backend.calls[0][0] is None and backend.calls[2] == (None, "follow-up")  # a new backend session
        assert any("starts a new conversation" in t for t in rec.texts())
        record = await bot.store.active_session(rec.thread("t1"), "kb")
        assert record.session_id == "fake-session-3" and record.turn_count == 1


async def test_a_thread_with_a_turn_under_way_is_not_idle(clock, tmp_path):
    async with running_bot(with_(sessions={"idle_timeout": "1h"}), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["kb"]
        await rec.inject("q1")
        await bot.idle(5)
        backend.gate = asyncio.Event()
        await rec.inject("q2")
        await rec.wait_for(lambda: len(backend.calls) == 2)
        bot.scheduler.clock = lambda: time.time() + 2 * 3600
        assert await bot.scheduler.expire_idle() == 0
        backend.gate.set()
        await bot.idle(5)


async def test_retention_prunes_old_turns_feedback_sessions_and_event_ids(clock, tmp_path):
    async with running_bot(with_(retention={"turns_days": 30}), tmp_path) as bot:
        rec, store = bot.adapters["rec"], bot.store
        store.events_ttl = -1.0  # event ids already past their TTL once recorded
        for thread in ("t1", "t2"):
            await rec.inject(f"question in {thread}", thread=thread)
        await bot.idle(5)
        turn = (await store.turns_of((await store.list_sessions())[0]["id"]))[0]
        await Votes(store).record(turn["event_id"], "u2", "up", None, time.time())
        await store.end_session(rec.thread("t2"))

        assert await bot.scheduler.prune() == 2  # the two expired event ids; every turn is recent
        assert await store.count_turns() == 2

        bot.scheduler.clock = lambda: time.time() + 31 * 86400
        assert await bot.scheduler.prune() == 1 + 2 + 1  # feedback, turns, the ended session
        assert await store.count_turns() == 0 and await Votes(store).counts() == {}
        assert [s["thread"] for s in await store.list_sessions()] == [str(rec.thread("t1"))]  # still active


def test_crontab_weekdays_mean_what_cron_means():
    monday_0859 = datetime(2025, 3, 3, 8, 59, tzinfo=UTC)
    for expr, expected in (("0 9 * * 1", 3), ("0 9 * * 0", 9), ("0 9 * * 7", 9), ("0 9 * * MON", 3),
                           ("0 9 * * 2-3", 4), ("0 9 * * */3", 5)):  # */3: sun, wed, sat
        fire = cron_trigger(expr, "UTC").get_next_fire_time(None, monday_0859)
        assert fire.day == expected, expr


@pytest.mark.parametrize("job, problem", [
    ({"name": "x", "post": {"adapter": "a", "channel": "c"}, "ask": {"question": "q"}}, "exactly one of cron or every"),
    ({"name": "x", "cron": "0 9 * * 9", "post": {"adapter": "a", "channel": "c"}, "ask": {"question": "q"}}, "weekday"),
    ({"name": "x", "every": "5 parsecs", "post": {"adapter": "a", "channel": "c"}, "ask": {"question": "q"}},
     "not a duration"),
    ({"name": "x", "every": "1h", "timezone": "Mars/Olympus", "post": {"adapter": "a", "channel": "c"},
      "ask": {"question": "q"}}, "unknown timezone"),
])
def test_bad_jobs_are_config_errors(job, problem):
    with pytest.raises(ValueError, match=problem):
        RootConfig.model_validate({"schedule": [job]})
