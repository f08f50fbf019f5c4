"""PostgreSQL as the store shared by several replicas: two `PostgresStore`s on one database
play two botkit processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Self
from urllib.parse import urlsplit

import asyncpg
import pytest

from botkit.events import ThreadKey
from botkit.store import JournalEntry, StoreUnreachable
from botkit.store import postgres
from botkit.store.postgres import MIGRATIONS, PostgresStore
from botkit.testing import eventually, running_bot
from botkit.turn import Answer

from .conftest import PASSWORD
from .test_store import T1, T2, entry, finish_turn

Replicas = Callable[..., Awaitable[PostgresStore]]
SHORT_LEASE = 1.0  # seconds: the least the configuration allows


@pytest.fixture
async def replica(pg_url: str) -> AsyncIterator[Replicas]:
    """Opens another store on the test's database (`lease_ttl` as given)."""
    opened: list[PostgresStore] = []

    async def open_(*, lease_ttl: float = 20.0) -> PostgresStore:
        store = PostgresStore(pg_url, lease_ttl=lease_ttl)
        opened.append(store)
        await store.open()
        return store

    yield open_
    for store in opened:
        await store.close()


async def stall(store: PostgresStore) -> None:
    """The replica stops renewing its leases (a process frozen, or cut off from the database)."""
    task = store._heartbeat
    assert task is not None and not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    store._heartbeat = None


async def crash(store: PostgresStore) -> None:
    """The replica dies: no more heartbeats, and it gives up nothing (its connections go)."""
    await stall(store)
    store._owned.clear()  # a dead process releases no thread on its way out
    await store.close()


async def lease_of(url: str, thread: ThreadKey) -> tuple[str | None, float | None]:
    """(owner, lease_until) of `thread`, as the database has them."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT owner, lease_until FROM threads WHERE key = $1", thread.key)
    finally:
        await conn.close()
    return (row["owner"], row["lease_until"]) if row else (None, None)


async def lease_expired(url: str, thread: ThreadKey) -> bool:
    _, until = await lease_of(url, thread)
    return until is not None and until < time.time()


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
    await finish_turn(a, record, "E1", question="q1", answer="a1")
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


T3 = ThreadKey("test", "w1", "c3", "t3")
T4 = ThreadKey("test", "w1", "c4", "t4")
T5 = ThreadKey("test", "w1", "c5", "t5")
T6 = ThreadKey("test", "w1", "c6", "t6")


def keys(threads: list[ThreadKey]) -> list[str]:
    return sorted(map(str, threads))


def _increasing(values: list[int]) -> bool:
    return all(x < y for x, y in zip(values, values[1:]))


async def test_an_event_admitted_at_once_on_two_replicas_is_journaled_once(replica):
    a, b = await replica(), await replica()
    ids = [f"E{n}" for n in range(30)]
    won = await asyncio.gather(*(store.admit(entry(i, (T1, T2)[n % 2])) for n, i in enumerate(ids)
                                 for store in (a, b)))
    assert all(sorted(won[2 * n:2 * n + 2]) == [False, True] for n in range(len(ids))), won
    journaled = [e.event_id for thread in (T1, T2) for e in await b.pending(thread)]
    assert sorted(journaled) == sorted(ids)  # each once, whichever replica won it

    # an admission racing a delivery answered on the spot (claimed) on the other replica
    raced = await asyncio.gather(*(call for n in range(20)
                                   for call in (a.admit(entry(f"C{n}", T3)), b.claim_event(f"C{n}"))))
    assert all(sorted(raced[2 * n:2 * n + 2]) == [False, True] for n in range(20)), raced
    admitted = [f"C{n}" for n in range(20) if raced[2 * n]]
    assert [e.event_id for e in await b.pending(T3)] == admitted  # a lost claim journals nothing


async def test_a_threads_turns_are_ordered_as_committed_whichever_replica_admitted_them(replica):
    a, b, reader = await replica(), await replica(), await replica()
    first = [entry(f"S{n}", question=f"s{n}") for n in range(6)]
    for n, journaled in enumerate(first):  # one after another, alternating replicas
        assert await (a, b)[n % 2].admit(journaled)
    assert _increasing([e.seq for e in first])
    base = first[0].seq

    # at once on both replicas (each group of 5 in one batch) while a third reads: every reader
    # sees a gapless run of positions, i.e. a turn becomes visible only after every turn placed before it
    snapshots: list[list[int]] = []
    admitting = True

    async def read() -> None:
        while admitting:
            snapshots.append([e.seq for e in await reader.pending(T1)])

    async def admit_in_groups(store: PostgresStore, entries: list[JournalEntry]) -> None:
        for n in range(0, len(entries), 5):
            assert all(await asyncio.gather(*(store.admit(e) for e in entries[n:n + 5])))

    reading = asyncio.create_task(read())
    on_a, on_b = [entry(f"A{n}") for n in range(25)], [entry(f"B{n}") for n in range(25)]
    try:
        await asyncio.gather(admit_in_groups(a, on_a), admit_in_groups(b, on_b))
    finally:
        admitting = False
        await reading
    total = len(first) + len(on_a) + len(on_b)
    assert any(len(first) < len(s) < total for s in snapshots), [len(s) for s in snapshots]  # read mid-way
    for seen in snapshots:
        assert seen == list(range(base, base + len(seen)))
    assert _increasing([e.seq for e in on_a]) and _increasing([e.seq for e in on_b])  # each in call order

    in_order = sorted([*first, *on_a, *on_b], key=lambda e: e.seq)
    assert [e.seq for e in in_order] == list(range(base, base + total))
    for store in (a, b, reader):
        assert [e.event_id for e in await store.pending(T1)] == [e.event_id for e in in_order]
    from_b = (await a.pending(T1))[1]  # journaled by b, read back on a
    assert (from_b.event_id, from_b.inbound.user, from_b.inbound.text, from_b.inbound.adapter, from_b.query,
            from_b.backend, from_b.owner) == ("S1", "u1", "s1", "rec", "s1", "b", b.owner)


async def waiting_on(url: str, locktype: str, count: int = 1) -> Callable[[], Awaitable[bool]]:
    """A check: at least `count` connections wait on a lock of `locktype` (the server's view)."""

    async def check() -> bool:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = $1 AND NOT granted",
                                       locktype) >= count
        finally:
            await conn.close()

    return check


async def test_a_turn_admitted_while_another_commits_is_placed_after_it(replica, pg_url):
    a, b, reader = await replica(), await replica(), await replica()
    assert await a.admit(entry("E0"))
    control = await asyncpg.connect(pg_url)
    try:
        # the journal write of "SLOW" waits, inside its transaction, until the test lets it go
        await control.execute("""
            CREATE FUNCTION hold_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                IF NEW.event_id = 'SLOW' THEN PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242);
                END IF; RETURN NEW; END $$;
            CREATE TRIGGER hold_slow BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION hold_slow();""")
        await control.execute("SELECT pg_advisory_lock(4242)")
        slow, fast = entry("SLOW"), entry("FAST")
        slow_task = asyncio.create_task(a.admit(slow))
        await eventually(await waiting_on(pg_url, "advisory"), timeout=10)
        fast_task = asyncio.create_task(b.admit(fast))  # the thread's next turn, on the other replica
        waits = await waiting_on(pg_url, "transactionid")

        async def fast_waits_or_is_done() -> bool:
            return fast_task.done() or await waits()

        await eventually(fast_waits_or_is_done, timeout=10)
        assert not fast_task.done()  # it waits for the turn placed before it to commit ...
        assert [e.event_id for e in await reader.pending(T1)] == ["E0"]  # ... and nothing shows before it does
        await control.execute("SELECT pg_advisory_unlock(4242)")
        assert await asyncio.wait_for(slow_task, 10) and await asyncio.wait_for(fast_task, 10)
    finally:
        await control.close()
    assert slow.seq < fast.seq
    for store in (a, b, reader):
        assert [e.event_id for e in await store.pending(T1)] == ["E0", "SLOW", "FAST"]


async def test_a_thread_is_taken_over_once_its_owners_lease_runs_out(replica, pg_url):
    a, b = await replica(lease_ttl=SHORT_LEASE), await replica(lease_ttl=SHORT_LEASE)
    c = await replica()
    assert await a.take_thread(T1)
    assert not await b.take_thread(T1)
    assert await b.take_thread(T2)  # other threads are not held up
    assert await a.take_thread(T1)  # its owner may take it again

    # the heartbeat keeps the lease beyond lease_ttl
    _, first_until = await lease_of(pg_url, T1)

    async def first_lease_over() -> bool:
        return time.time() > first_until + SHORT_LEASE / 4

    await eventually(first_lease_over, timeout=10)
    assert not await b.take_thread(T1) and not await c.take_thread(T1)
    owner, renewed = await lease_of(pg_url, T1)
    assert owner == a.owner and renewed > first_until

    await stall(a)  # a stops renewing: b is refused until the lease has run out, then gets it
    _, last_until = await lease_of(pg_url, T1)
    attempts: list[tuple[float, bool, float]] = []  # (asked at, taken, answered at)

    async def b_takes() -> bool:
        asked = time.time()
        taken = await b.take_thread(T1)
        attempts.append((asked, taken, time.time()))
        return taken

    await eventually(b_takes, timeout=10)
    assert not attempts[0][1]  # refused while a's lease was live ...
    assert all(asked < last_until for asked, taken, _ in attempts if not taken)
    assert attempts[-1][2] > last_until  # ... and taken only once it had run out
    assert (await lease_of(pg_url, T1))[0] == b.owner

    # a, frozen and come back, owns nothing any more: it neither gives up nor takes back b's thread
    assert not await a.release_thread(T1)
    assert not await a.take_thread(T1) and not await c.take_thread(T1)
    assert (await lease_of(pg_url, T1))[0] == b.owner


async def test_an_expired_lease_goes_to_exactly_one_of_the_racing_replicas(replica, pg_url):
    dead = await replica(lease_ttl=SHORT_LEASE)
    racers = [await replica(lease_ttl=SHORT_LEASE) for _ in range(5)]
    for racer in racers:
        await stall(racer)  # so each winner's lease runs out in turn, for the next round
    assert await dead.take_thread(T1)
    await crash(dead)
    winners = []
    for _ in range(3):
        await eventually(lambda: lease_expired(pg_url, T1), timeout=10)
        won = await asyncio.gather(*(r.take_thread(T1) for r in racers))
        assert sum(won) == 1, won
        winner = racers[won.index(True)]
        assert (await lease_of(pg_url, T1))[0] == winner.owner
        again = await asyncio.gather(*(r.take_thread(T1) for r in racers))  # a live lease: only its owner
        assert again == won
        winners.append(winner)
    assert len(winners) == 3


async def test_a_turn_is_started_by_exactly_one_of_two_racing_replicas(replica):
    a = await replica(lease_ttl=SHORT_LEASE)
    b, c = await replica(), await replica()
    journaled = [entry(f"E{n}") for n in range(6)]
    for e in journaled:
        assert await a.admit(e)
    assert await a.take_thread(T1)
    partial = [{"message_id": "m1", "data": {}, "text": "partial", "notes": [], "status": None, "final": False}]
    for e in journaled[:3]:  # running on a when it dies
        assert await a.start_turn(e)
        e.messages = partial
        await a.journal_screen(e, durable=True)
    await crash(a)

    async def taken_by_b() -> bool:
        return await b.take_thread(T1)

    await eventually(taken_by_b, timeout=10)  # once a's lease has run out
    assert not await c.take_thread(T1)  # c, late, is not the owner: it starts nothing
    on_b, on_c = await b.pending(T1), await c.pending(T1)
    assert [(e.event_id, e.state, e.owner) for e in on_b] == [
        (e.event_id, "running" if n < 3 else "queued", a.owner) for n, e in enumerate(journaled)]
    expected = []
    for x, y in zip(on_b, on_c):
        won = await asyncio.gather(b.start_turn(x), c.start_turn(y))
        assert sorted(won) == [False, True], won
        (winner, mine), (loser, theirs) = ((b, x), (c, y)) if won[0] else ((c, y), (b, x))
        assert (mine.state, mine.owner) == ("running", winner.owner)
        assert theirs.owner == a.owner  # the loser's copy still names the dead owner
        assert not await loser.start_turn(theirs)  # and trying again does not help
        expected.append((mine.event_id, "running", winner.owner, mine.messages))
        theirs.messages = [{"message_id": "m-loser", "data": {}, "text": "", "notes": [], "status": None,
                            "final": True}]
        await loser.journal_screen(theirs, durable=True)  # cannot write over the winner's screen
    assert [(e.event_id, e.state, e.owner, e.messages) for e in await b.pending(T1)] == expected
    assert [e[3] for e in expected] == [partial] * 3 + [[]] * 3


async def test_release_fails_when_a_turn_was_journaled_since_pending_looked(replica):
    a, b = await replica(), await replica()
    assert await a.take_thread(T1)
    assert await a.pending(T1) == []
    assert await a.release_thread(T1)  # nothing new: given up
    assert await b.take_thread(T1) and await b.release_thread(T1)

    assert await a.take_thread(T1)
    assert await a.pending(T1) == []
    assert await b.admit(entry("E1"))  # journaled on the other replica after a looked
    assert not await a.release_thread(T1)
    assert not await b.take_thread(T1)  # a still owns the thread, so b's worker leaves E1 to a
    [e1] = await a.pending(T1)
    assert e1.event_id == "E1"
    await a.close_turn(e1)
    assert await a.pending(T1) == []
    assert await a.release_thread(T1)
    assert await b.orphaned_threads() == []  # the close is committed before the thread is given up

    assert await a.take_thread(T1)
    assert await a.pending(T1) == []
    assert await a.admit(entry("E2"))  # this replica's own admission counts too
    assert not await a.release_thread(T1)
    assert [e.event_id for e in await a.pending(T1)] == ["E2"]

    assert await b.admit(entry("E3"))
    assert await a.release_thread(T1, force=True)  # a stop gives it up anyway ...
    assert await b.orphaned_threads() == [T1]  # ... and what is journaled goes to the next owner
    assert await b.take_thread(T1)
    assert [e.event_id for e in await b.pending(T1)] == ["E2", "E3"]


async def test_a_release_right_after_the_turns_pending_returned_refuses_while_one_came_since(replica):
    """A worker gives its thread up right after running the turns it read, without looking at
    the journal again: the release itself must see a turn journaled meanwhile by any replica."""
    a, b = await replica(), await replica()
    assert await a.admit(entry("E1"))
    assert await a.take_thread(T1)
    [e1] = await a.pending(T1)
    assert await b.admit(entry("E2"))  # journaled on the other replica while a runs E1
    await a.close_turn(e1)
    assert not await a.release_thread(T1)
    [e2] = await a.pending(T1)
    assert e2.event_id == "E2"
    await a.close_turn(e2)
    assert await a.release_thread(T1)  # nothing since that read: given up
    assert await b.orphaned_threads() == []
    assert await b.take_thread(T1) and await b.pending(T1) == []


def count_session_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The active-session look-ups the replicas send to the database from now on."""
    reads: list[str] = []
    original = asyncpg.connection.Connection.fetch

    async def fetch(self, query, *args, **kwargs):
        if query.startswith("WITH asked AS"):
            reads.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", fetch)
    return reads


async def test_a_thread_s_session_is_read_once_while_this_replica_holds_the_thread(replica, monkeypatch):
    a, b = await replica(), await replica()
    reads = count_session_reads(monkeypatch)
    assert await a.take_thread(T1)
    session = await a.active_session(T1, "b", with_recent=2)
    for n in range(3):  # the runner's turns: each changes the record it was given, and closes with it
        session.session_id, session.turn_count = "backend-1", session.turn_count + 1
        await finish_turn(a, session, f"E{n}", question=f"q{n}", answer=f"a{n}")
        assert await a.active_session(T1, "b", with_recent=2) is session
    assert len(reads) == 1
    assert session.recent == [("q1", "a1"), ("q2", "a2")]  # kept as the database would answer
    assert await a.release_thread(T1)

    assert await b.take_thread(T1)  # the next holder reads what the first one left
    theirs = await b.active_session(T1, "b", with_recent=2)
    assert (theirs.id, theirs.session_id, theirs.turn_count, theirs.recent) == (
        session.id, "backend-1", 3, [("q1", "a1"), ("q2", "a2")])
    assert await b.release_thread(T1)
    assert await a.take_thread(T1)  # and a holder that took the thread again reads it again
    assert (await a.active_session(T1, "b")).id == session.id
    assert len(reads) == 3


async def test_a_held_session_gives_way_to_a_reset_a_new_backend_and_an_unheld_thread(replica, monkeypatch):
    a = await replica()
    reads = count_session_reads(monkeypatch)
    assert await a.take_thread(T1)
    first = await a.active_session(T1, "b")
    await a.end_session(T1)  # a reset
    second = await a.active_session(T1, "b")
    assert second.id != first.id
    other = await a.active_session(T1, "b2")  # the thread's route now goes to another backend
    assert other.backend == "b2" and other.id != second.id
    assert await a.active_session(T1, "b2") is other
    unheld = await a.active_session(T2, "b")  # a thread this replica does not hold is read each time
    assert await a.active_session(T2, "b") is not unheld
    assert len(reads) == 5


async def test_a_session_deleted_while_its_thread_runs_drops_only_its_own_turn_records(replica):
    """`botkit sessions delete` on a live thread: the turns recorded for the deleted session go
    with it, and the other turns of the same write, and the journal, are written as usual."""
    a, admin = await replica(), await replica()
    assert await a.take_thread(T1) and await a.take_thread(T2)
    doomed, kept = await a.active_session(T1, "b"), await a.active_session(T2, "b")
    await admin.delete_session(doomed.id)
    await finish_turn(a, doomed, "E1")
    await finish_turn(a, kept, "E2")
    await a.flush()
    assert await a.pending(T1) == [] and await a.pending(T2) == []  # both closed
    assert [t["event_id"] for t in await admin.thread_turns(T2, limit=10)] == ["E2"]
    assert await admin.thread_turns(T1, limit=10) == []
    assert await a.release_thread(T1) and await a.take_thread(T1)
    assert (await a.active_session(T1, "b")).id != doomed.id  # a new one, once the thread was let go


async def test_a_turn_record_that_is_not_json_is_dropped_alone(replica, caplog):
    """A middleware put an object of its own into `Answer.flags`: that turn's record is not kept
    (as on SQLite); the other turns written with it, and every journal entry, are."""
    store = await replica()
    session = await store.active_session(T1, "b")
    good, odd = entry("E1"), entry("E2")
    assert await store.admit(good) and await store.admit(odd)
    await store.close_turn(good, session, Answer("a"))
    await store.close_turn(odd, session, Answer("b", flags={"mine": object()}))
    await store.flush()
    assert await store.pending(T1) == []
    assert [t["event_id"] for t in await store.thread_turns(T1, limit=10)] == ["E1"]
    assert any("E2" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


class Outage:
    """A TCP proxy to the test's PostgreSQL that can be cut (every connection through it dropped,
    new ones closed at once: the database restarting, or out of reach) and mended."""

    def __init__(self, url: str) -> None:
        self.target = urlsplit(url)
        self.up = True
        self.ends: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = self.target._replace(netloc=self.target.netloc.rsplit(":", 1)[0] + f":{port}").geturl()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()

    def cut(self) -> None:
        self.up = False
        for end in list(self.ends):
            end.transport.abort()

    def mend(self) -> None:
        self.up = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        upstream_reader, upstream = await asyncio.open_connection(self.target.hostname, self.target.port)
        self.ends |= {writer, upstream}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()
            self.ends.discard(sink)

        await asyncio.gather(pump(reader, upstream), pump(upstream_reader, writer))


WRITTEN_AHEAD = [{"message_id": None, "data": {}, "text": "the answer", "notes": [], "status": None, "final": True}]


@contextlib.asynccontextmanager
async def written_ahead_in_an_outage(pg_url: str) -> AsyncIterator[tuple]:
    """A store, through a proxy, with turn E1 journaled in its session; then the database cut
    as E1's write-ahead goes out. Yields the proxy, the store, the session, E1 and the
    write-ahead's wait, once the store said it cannot reach the database."""
    async with Outage(pg_url) as outage:
        store = PostgresStore(outage.url)
        await store.open()
        try:
            session = await store.active_session(T1, "b")
            journaled = entry("E1")
            assert await store.admit(journaled)
            outage.cut()
            journaled.messages = WRITTEN_AHEAD
            ahead = asyncio.create_task(store.journal_screen(journaled, durable=True))  # a write-ahead, then a post
            await eventually(lambda: store.fault is not None)
            yield outage, store, session, journaled, ahead
        finally:
            await store.close()


async def test_writes_wait_out_a_database_outage_and_the_store_says_why(pg_url):
    async with written_ahead_in_an_outage(pg_url) as (outage, store, session, journaled, ahead):
        assert "the database cannot be reached" in store.fault and PASSWORD not in store.fault
        with pytest.raises(StoreUnreachable):  # (a worker leaves the thread's turns journaled for later)
            await store.pending(T2)
        with pytest.raises(TimeoutError):  # attempts go on, and it is not durable: nothing may be posted yet
            await asyncio.wait_for(asyncio.shield(ahead), 0.5)
        outage.mend()
        await asyncio.wait_for(ahead, 10)
        assert store.fault is None
        assert [e.messages for e in await store.pending(T1)] == [WRITTEN_AHEAD]
        await store.close_turn(journaled, session, Answer("a"))
        await store.flush()
        assert await store.pending(T1) == []
        assert [t["event_id"] for t in await store.turns_of(session.id)] == ["E1"]


async def test_a_wait_for_a_commit_cancelled_cancels_nobody_else_s(pg_url):
    """A turn cut off (a timeout, Ctrl-C) while its write-ahead waits for the commit."""
    async with written_ahead_in_an_outage(pg_url) as (outage, store, session, journaled, cut_off):
        waiting = asyncio.create_task(store.flush())  # another caller, waiting for the same commit
        cut_off.cancel()
        outage.mend()
        await asyncio.wait_for(waiting, 10)  # not cancelled with it
        assert cut_off.cancelled()
        await store.close_turn(journaled, session, Answer("a"))
        await asyncio.wait_for(store.flush(), 10)  # and the store goes on writing
        assert await store.pending(T1) == []


async def test_a_close_during_an_outage_gives_its_writes_up_and_says_they_were_not_made(pg_url, monkeypatch, caplog):
    monkeypatch.setattr(postgres, "_CLOSE_PATIENCE", 0.5)
    async with written_ahead_in_an_outage(pg_url) as (_, store, _, _, ahead):
        await asyncio.wait_for(store.close(), 10)
        with pytest.raises(ConnectionError):
            await ahead  # told it was not written: the renderer posts nothing on it
        assert any("given up" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    later = PostgresStore(pg_url)  # the next start
    await later.open()
    try:
        [kept] = await later.pending(T1)
        assert (kept.event_id, kept.messages) == ("E1", [])  # as it was before the outage, for recovery
    finally:
        await later.close()


async def test_orphaned_threads_have_journaled_turns_and_no_live_owner(replica):
    live, dying, peer = await replica(), await replica(lease_ttl=SHORT_LEASE), await replica()
    for n, thread in enumerate((T1, T2, T3, T4, T5)):
        assert await live.admit(entry(f"E{n}", thread))
    assert await live.take_thread(T1)  # owned by a live replica
    assert await dying.take_thread(T2)  # its owner is about to stop renewing
    assert await live.take_thread(T3) and await live.release_thread(T3, force=True)  # given up, turn journaled
    # T4: journaled, never taken
    assert await live.take_thread(T5)
    [e5] = await live.pending(T5)
    await live.close_turn(e5)  # nothing left journaled ...
    assert await live.release_thread(T5)  # ... when given up
    assert await live.take_thread(T6) and await live.release_thread(T6)  # never had a turn

    assert keys(await peer.orphaned_threads()) == keys([T3, T4])
    await stall(dying)
    found: list[ThreadKey] = []

    async def t2_orphaned() -> bool:
        found[:] = await peer.orphaned_threads()
        return T2 in found

    await eventually(t2_orphaned, timeout=10)
    assert keys(found) == keys([T2, T3, T4])
    assert await peer.take_thread(T2) and await peer.take_thread(T4)  # taken over: live owners again
    assert await live.orphaned_threads() == [T3]


async def test_expire_idle_leaves_sessions_of_threads_a_live_replica_owns(replica):
    a, b = await replica(), await replica()
    dying = await replica(lease_ttl=SHORT_LEASE)
    for thread in (T1, T2, T3):
        record = await a.active_session(thread, "b")
        record.last_active = 1000.0
        await a.save_session(record)
    await a.flush()
    assert await a.take_thread(T1)
    assert await dying.take_thread(T3)
    assert [r.thread for r in await b.expire_idle(2000.0)] == [T2]
    assert await b.expire_idle(2000.0) == []

    await stall(dying)
    expired: list[ThreadKey] = []

    async def t3_expired() -> bool:
        expired.extend(r.thread for r in await b.expire_idle(2000.0))
        return bool(expired)

    await eventually(t3_expired, timeout=10)  # once dying's lease has run out
    assert expired == [T3]
    assert await a.release_thread(T1)
    assert [r.thread for r in await b.expire_idle(2000.0)] == [T1]


async def test_a_replica_takes_over_the_answer_its_dead_peer_was_streaming(replica):
    a, b = await replica(lease_ttl=SHORT_LEASE), await replica(lease_ttl=SHORT_LEASE)
    assert await a.admit(entry("E1")) and await a.admit(entry("E2"))
    assert await a.take_thread(T1)
    streaming, _ = await a.pending(T1)
    assert await a.start_turn(streaming)
    streaming.messages = [{"message_id": "m1", "data": {"ts": "1"}, "text": "half an answer", "notes": [],
                           "status": None, "final": False}]
    await a.journal_screen(streaming, durable=True)
    assert await b.orphaned_threads() == []  # a is alive: b leaves its answer alone
    assert not await b.take_thread(T1)

    await crash(a)

    async def t1_orphaned() -> bool:
        return await b.orphaned_threads() == [T1]

    await eventually(t1_orphaned, timeout=10)
    assert await b.take_thread(T1)
    recovered, waiting = await b.pending(T1)
    assert (recovered.event_id, recovered.state, recovered.owner, recovered.messages) == (
        "E1", "running", a.owner, streaming.messages)
    assert (waiting.event_id, waiting.state) == ("E2", "queued")
    assert await b.start_turn(recovered)
    assert recovered.owner == b.owner
    session = await b.active_session(T1, "b")
    await b.close_turn(recovered, session, Answer("half an answer", status="interrupted"))
    assert [e.event_id for e in await b.pending(T1)] == ["E2"]
    assert await b.orphaned_threads() == []
    assert [(t["event_id"], t["status"]) for t in await b.turns_of(session.id)] == [("E1", "interrupted")]


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


async def test_a_burst_of_calls_goes_to_the_database_one_statement_per_kind(replica, monkeypatch):
    store = await replica()
    sent: list[str] = []
    for name in ("fetch", "execute"):
        original = getattr(asyncpg.connection.Connection, name)

        async def counted(self, query, *args, _original=original, **kwargs):
            sent.append(query)
            return await _original(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.connection.Connection, name, counted)
    threads = [T1, T2, T3, T4, T5]
    journaled = [entry(f"E{n}-{t.thread}", t) for n in range(10) for t in threads]
    assert all(await asyncio.gather(*(store.admit(e) for e in journaled)))
    assert all(await asyncio.gather(*(store.take_thread(t) for t in threads)))
    pending = await asyncio.gather(*(store.pending(t) for t in threads))
    for thread, entries in zip(threads, pending):  # each thread's in call order
        assert [e.event_id for e in entries] == [e.event_id for e in journaled if e.thread == thread]
        assert [e.seq for e in entries] == list(range(1, 11))
    firsts = [entries[0] for entries in pending]
    assert all(await asyncio.gather(*(store.start_turn(e) for e in firsts)))
    sessions = await asyncio.gather(*(store.active_session(t, "b") for t in threads))
    for first, session in zip(firsts, sessions):
        await store.close_turn(first, session, Answer("a"))
    await store.flush()
    assert all(await asyncio.gather(*(store.release_thread(t) for t in threads)))
    # admit, take, pending, start, sessions, the writes behind, release: 7 statements for 50 turns in 5 threads
    assert len(sent) == 7, sent


async def test_each_admission_of_a_batch_gets_its_own_answer(replica):
    store = await replica()
    assert await store.admit(entry("E1", T2))
    batch = [entry("E2", T2), entry("E1", T2),  # a redelivery of a turn journaled before
             entry("E3", T2), entry("E3", T2),  # the same delivery twice in the batch: the first wins
             entry("NUL", T2, question="a \x00 the database refuses"), entry("E4", T2)]
    answers = await asyncio.gather(*(store.admit(e) for e in batch), return_exceptions=True)
    assert answers[:4] == [True, False, True, False] and answers[5] is True
    assert isinstance(answers[4], asyncpg.DataError)  # the bad one fails alone
    assert [(e.event_id, e.seq) for e in await store.pending(T2)] == [("E1", 1), ("E2", 2), ("E3", 3), ("E4", 4)]


async def test_a_lease_taken_while_the_heartbeat_renews_is_not_lost(replica, pg_url, caplog):
    # a lease three times the shortest: the steps below hold T1's row for a while, and on a
    # loaded machine that while could outlast a 1 s lease (then losing it is right, not a bug)
    caplog.set_level(logging.WARNING, logger="botkit.store")
    store = await replica(lease_ttl=3 * SHORT_LEASE)
    assert await store.take_thread(T1)
    control = await asyncpg.connect(pg_url)
    try:
        async with control.transaction():  # the renewal waits for T1's row while T2 is taken
            await control.execute("SELECT 1 FROM threads WHERE key = $1 FOR UPDATE", T1.key)
            await eventually(await waiting_on(pg_url, "transactionid"), timeout=10)
            assert await store.take_thread(T2)
        _, taken_until = await lease_of(pg_url, T2)

        async def t2_renewed() -> bool:
            return (await lease_of(pg_url, T2))[1] > taken_until

        await eventually(t2_renewed, timeout=10)
        assert store._owned == {T1.key, T2.key}
        assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]

        await control.execute("UPDATE threads SET owner = 'another replica' WHERE key = $1", T1.key)

        async def t1_lost() -> bool:
            return T1.key not in store._owned

        await eventually(t1_lost, timeout=10)  # ... while one taken over is
        assert [r.getMessage() for r in caplog.records if "lost the lease" in r.getMessage()] == [
            "lost the lease of 1 threads to other replicas"]
    finally:
        await control.close()


async def test_the_heartbeat_renews_while_every_pooled_connection_is_busy(replica, pg_url):
    store = await replica(lease_ttl=SHORT_LEASE)
    assert await store.take_thread(T1)
    _, taken_until = await lease_of(pg_url, T1)
    assert store._pool is not None
    held = [await store._pool.acquire() for _ in range(store._pool.get_max_size())]
    try:
        async def renewed() -> bool:
            return (await lease_of(pg_url, T1))[1] > taken_until

        await eventually(renewed, timeout=10)
    finally:
        for conn in held:
            await store._pool.release(conn)


async def test_queued_writes_survive_the_server_dropping_connections(replica, pg_url):
    store = await replica()
    record = await store.active_session(T1, "b")
    journaled = entry("E1")
    assert await store.admit(journaled)
    conn = await asyncpg.connect(pg_url)
    try:
        terminated = await conn.fetchval("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                         " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    assert terminated >= 1
    await store.close_turn(journaled, record, Answer("a"))  # queued; its first commit meets a dead connection
    await store.flush()
    assert [t["event_id"] for t in await store.turns_of(record.id)] == ["E1"]
    assert await store.pending(T1) == []


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
