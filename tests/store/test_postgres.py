"""PostgreSQL as the store shared by several replicas: two `PostgresStore`s on one database
play two botkit processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from botkit.store.postgres import MIGRATIONS, PostgresStore
from botkit.testing import running_bot

from .conftest import PASSWORD
from .test_store import T1, T2, turn

Replicas = Callable[[], Awaitable[PostgresStore]]


@pytest.fixture
async def replica(pg_url: str) -> AsyncIterator[Replicas]:
    """Opens another store on the test's database."""
    opened: list[PostgresStore] = []

    async def open_() -> PostgresStore:
        store = PostgresStore(pg_url)
        opened.append(store)
        await store.open()
        return store

    yield open_
    for store in opened:
        await store.close()


async def test_an_event_claimed_by_one_replica_is_refused_by_the_other(replica):
    a, b = await replica(), await replica()
    assert await a.claim_event("E1")
    assert not await b.claim_event("E1")
    ids = [f"R{n}" for n in range(20)]
    results = await asyncio.gather(*(store.claim_event(i) for i in ids for store in (a, b)))
    assert sum(results) == len(ids)  # every id exactly once, whichever replica won it


async def test_sessions_are_read_from_the_database(replica):
    a, b = await replica(), await replica()
    record = await a.active_session(T1, "b")
    record.session_id, record.turn_count = "backend-1", 1
    await a.save_session(record)
    await a.record_turn(turn(record.id, T1, "E1", question="q1", answer="a1"))
    await a.flush()
    seen = await b.active_session(T1, "b", with_recent=3)
    assert (seen.id, seen.session_id, seen.turn_count, seen.recent) == (record.id, "backend-1", 1, [("q1", "a1")])

    assert (await b.end_session(T1)).id == record.id  # a reset on replica b ...
    after = await a.active_session(T1, "b")  # ... is seen by replica a
    assert after.id != record.id and after.session_id is None
    assert await a.end_session(T1) is not None and await b.end_session(T1) is None


async def test_active_session_is_one_session_under_concurrency(replica):
    a, b = await replica(), await replica()
    records = await asyncio.gather(*(store.active_session(T2, "b") for _ in range(10) for store in (a, b)))
    assert len({r.id for r in records}) == 1
    assert await a.count_sessions() == 1


async def _waiting(url: str, locktype: str) -> None:
    """Until a connection waits on a lock of `locktype` (the server's view: no guessing with sleeps)."""
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(5):
            while not await conn.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = $1 AND NOT granted",
                                          locktype):
                await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def test_thread_lock_excludes_across_replicas_and_hands_over_the_turns_writes(replica, pg_url):
    a, b = await replica(), await replica()
    order: list[str] = []
    a_holds, a_may_leave = asyncio.Event(), asyncio.Event()

    async def turn_on_a() -> None:
        async with a.thread_lock(T1):
            order.append("a in")
            record = await a.active_session(T1, "b")
            a_holds.set()
            await a_may_leave.wait()
            record.session_id, record.turn_count = "from-a", 1
            await a.save_session(record)  # queued for the group commit as the turn ends
            order.append("a out")

    async def turn_on_b() -> str | None:
        async with b.thread_lock(T1):
            order.append("b in")
            return (await b.active_session(T1, "b")).session_id

    first = asyncio.create_task(turn_on_a())
    await asyncio.wait_for(a_holds.wait(), 5)
    second = asyncio.create_task(turn_on_b())
    await _waiting(pg_url, "advisory")
    async with asyncio.timeout(5):
        async with b.thread_lock(T2):  # another thread is not held up
            order.append("b in T2")

    # hold a's group commit back (a row lock on the session), to see that a keeps the
    # thread until its writes are committed
    blocker = await asyncpg.connect(pg_url)
    try:
        await blocker.execute("BEGIN; SELECT 1 FROM sessions FOR UPDATE")
        a_may_leave.set()
        await _waiting(pg_url, "transactionid")  # a's writer waits for the row
        b_waits = await blocker.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        assert b_waits == 1 and "b in" not in order
    finally:
        await blocker.close()  # ends the transaction
    await asyncio.wait_for(first, 5)
    assert await asyncio.wait_for(second, 5) == "from-a"
    assert order == ["a in", "b in T2", "a out", "b in"]


async def test_thread_lock_is_released_when_the_turn_is_cancelled(replica, pg_url):
    a, b = await replica(), await replica()
    held = asyncio.Event()

    async def hold(store: PostgresStore) -> None:
        async with store.thread_lock(T1):
            held.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold(a))
    await asyncio.wait_for(held.wait(), 5)
    held.clear()
    waiter = asyncio.create_task(hold(b))  # cancelled while it waits for the lock
    await _waiting(pg_url, "advisory")
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert not held.is_set()
    async with asyncio.timeout(5):
        async with a.thread_lock(T1), b.thread_lock(T2):
            pass
        async with b.thread_lock(T1):
            pass


async def test_expire_idle_leaves_threads_whose_turn_runs_on_another_replica(replica):
    a, b = await replica(), await replica()
    for thread in (T1, T2):
        record = await a.active_session(thread, "b")
        record.last_active = 1000.0
        await a.save_session(record)
    await a.flush()
    async with a.thread_lock(T1):
        expired = await b.expire_idle(2000.0)
    assert [r.thread for r in expired] == [T2]
    assert [r.thread for r in await b.expire_idle(2000.0)] == [T1]


async def test_a_starting_replica_leaves_the_answers_its_peer_is_streaming(replica):
    a, b = await replica(), await replica()
    streaming = asyncio.Event()

    async def turn_on_a() -> None:
        async with a.thread_lock(T1):
            await a.answer_started("E1", T1, "rec", [{"message_id": "m1", "data": {}}])
            await a.flush()
            streaming.set()
            await asyncio.Event().wait()  # the process dies mid-answer: nothing recorded

    running = asyncio.create_task(turn_on_a())
    await asyncio.wait_for(streaming.wait(), 5)
    assert await b.interrupted_answers() == []
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert [x.event_id for x in await b.interrupted_answers()] == ["E1"]


async def test_replicas_starting_at_once_migrate_once(pg_url):
    stores = [PostgresStore(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        conn = await asyncpg.connect(pg_url)
        try:
            assert [r[0] for r in await conn.fetch("SELECT version FROM botkit_schema ORDER BY 1")] == list(
                range(1, len(MIGRATIONS) + 1))
            await conn.execute("INSERT INTO botkit_schema (version) VALUES (99)")
        finally:
            await conn.close()
    finally:
        for store in stores:
            await store.close()
    newer = PostgresStore(pg_url)
    with pytest.raises(RuntimeError, match="schema version 99 is newer") as raised:
        await newer.open()
    assert PASSWORD not in str(raised.value) and "***" in str(raised.value)
    assert not await newer.ping()


async def test_the_password_never_shows(pg_server, pg_url, caplog):
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(pg_url)
    assert PASSWORD not in repr(store) and PASSWORD not in str(store) and PASSWORD not in str(vars(store))
    await store.open()
    assert await store.ping()
    await store.close()
    wrong = PostgresStore(pg_url.replace("s3cret", "wrong"))
    with pytest.raises(asyncpg.InvalidPasswordError) as raised:
        await wrong.open()
    assert "wrong" not in str(raised.value)
    unreachable = PostgresStore(f"postgresql://botkit:{PASSWORD}@127.0.0.1:1/db")
    with pytest.raises(OSError) as refused:
        await unreachable.open()
    assert PASSWORD not in str(refused.value)
    assert caplog.records and not any(PASSWORD in r.getMessage() for r in caplog.records)


async def test_queued_writes_survive_the_server_dropping_connections(replica, pg_url):
    store = await replica()
    record = await store.active_session(T1, "b")
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    await store.record_turn(turn(record.id, T1, "E1"))
    await store.flush()
    assert [t["event_id"] for t in await store.turns_of(record.id)] == ["E1"]


async def test_two_bots_share_one_thread_through_the_store(pg_url, tmp_path):
    config = {"adapters": {"rec": {"type": "recording"}}, "backends": {"b": {"type": "fake", "answer": "A{turn}"}},
              "store": {"url": pg_url}}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with running_bot(config, tmp_path / "one") as one, running_bot(config, tmp_path / "two") as two:
        assert await one.adapters["rec"].inject("q1", event_id="E1")
        await one.idle(5)
        assert await one.adapters["rec"].inject("q2", event_id="E2")
        await one.idle(5)
        assert not await two.adapters["rec"].inject("q2", event_id="E2")  # a redelivery to the other replica
        assert await two.adapters["rec"].inject("q3", event_id="E3")  # the thread's next message, on replica two
        await two.idle(5)
        assert one.adapters["rec"].texts() == ["A1", "A2"]
        assert two.adapters["rec"].texts() == ["A3"]
        assert one.backends["b"].calls == [(None, "q1"), ("fake-session-1", "q2")]
        assert two.backends["b"].calls == [("fake-session-1", "q3")]
        sessions = await two.store.list_sessions()
        assert [(s["session_id"], s["turn_count"]) for s in sessions] == [("fake-session-1", 3)]
