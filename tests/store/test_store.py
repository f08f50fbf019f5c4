"""What the dispatcher and the admin commands rely on, run against every store (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any
from unittest import mock

import pytest

from botkit.bot import load
from botkit.events import Inbound, Source, ThreadKey
from botkit.store import JournalEntry, SessionRecord, Store, store_for
from botkit.store.sqlite import SQLiteStore
from botkit.testing import eventually, running_bot
from botkit.turn import Answer
from botkit_plugins.feedback.votes import Votes

T1 = ThreadKey("test", "w1", "c1", "t1")
T2 = ThreadKey("test", "w1", "c2", "t2")
SOURCE = Source(1, "Doc", "https://x")


def entry(event_id: str, thread: ThreadKey = T1, question: str = "q", **inbound: object) -> JournalEntry:
    """A turn as intake journals it (adapter "rec", backend "b", asked by u1)."""
    return JournalEntry(Inbound(event_id, thread, "u1", question, "rec", **inbound), "b", question)


async def finish_turn(store: Store, session: SessionRecord, event_id: str, *, question: str = "q", answer: str = "a",
                      status: str = "complete", at: float | None = None,
                      message_ids: list[str] | None = None) -> JournalEntry:
    """Journal a turn of `session`'s thread and close it with its answer (recorded `at`, if given)."""
    journaled = entry(event_id, session.thread, question)
    assert await store.admit(journaled)
    done = Answer(answer, sources=[SOURCE], score=0.75, status=status, message_ids=message_ids or [f"m-{event_id}"],
                  first_text_after=0.1, duration=0.5, edits=2, flags={"usage": {"tokens": 3}})
    if at is None:
        await store.close_turn(journaled, session, done)
    else:  # the record takes its time from the clock as close_turn is called
        with mock.patch.object(time, "time", lambda: at):
            await store.close_turn(journaled, session, done)
    return journaled


async def test_claim_event_dedupes_within_the_ttl_and_again_after_it(open_test_store, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    store: Store = await open_test_store(events_ttl=3600)
    assert await store.claim_event("E1")
    assert not await store.claim_event("E1")
    assert await store.claim_event("E2")
    clock[0] += 1800
    assert not await store.claim_event("E1")
    assert await store.prune() == 0  # nothing expired yet
    await store.close()
    store = await open_test_store(events_ttl=3600)  # a restart keeps what was claimed
    assert not await store.claim_event("E1")
    clock[0] += 1801
    assert await store.prune() == 2
    assert await store.claim_event("E1")  # expired: a new delivery
    assert not await store.claim_event("E1")


async def test_an_expired_id_claimed_again_stays_claimed_after_a_restart(open_test_store, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    store: Store = await open_test_store(events_ttl=3600)
    assert await store.claim_event("E1") and await store.claim_event("E2")
    clock[0] += 3601
    assert await store.claim_event("E1")
    assert await store.prune() == 1  # E2 only: E1 took a new expiry
    await store.close()
    store = await open_test_store(events_ttl=3600)
    assert not await store.claim_event("E1")


async def test_active_session_is_kept_until_ended_or_the_backend_changes(store: Store):
    first = await store.active_session(T1, "b")
    assert (first.session_id, first.turn_count, first.backend, first.thread) == (None, 0, "b", T1)
    assert (await store.active_session(T1, "b")).id == first.id
    first.session_id, first.turn_count, first.last_active = "backend-1", 1, first.created_at + 5
    await store.save_session(first)
    again = await store.active_session(T1, "b")
    assert (again.id, again.session_id, again.turn_count, again.last_active) == (
        first.id, "backend-1", 1, first.created_at + 5)
    other = await store.active_session(T2, "b")
    assert other.id != first.id
    assert await store.count_sessions() == 2

    ended = await store.end_session(T1)
    assert ended is not None and (ended.id, ended.session_id) == (first.id, "backend-1")
    assert await store.end_session(T1) is None
    fresh = await store.active_session(T1, "b")
    assert fresh.id not in (first.id, other.id) and fresh.session_id is None

    switched = await store.active_session(T1, "other-backend")  # the routes changed
    assert switched.id != fresh.id and switched.backend == "other-backend"
    assert await store.count_sessions() == 2


async def test_a_session_ended_and_replaced_in_one_batch_is_written(open_test_store):
    """A reset (or a backend switch) followed at once by the next question."""
    store: Store = await open_test_store()
    old = await store.active_session(T1, "b")
    await store.save_session(old)
    await store.end_session(T1)
    new = await store.active_session(T1, "b")
    await store.save_session(new)
    await finish_turn(store, new, "E1")
    await store.close()
    store = await open_test_store()
    assert (await store.active_session(T1, "b")).id == new.id
    assert [t["event_id"] for t in await store.turns_of(new.id)] == ["E1"]


async def test_the_backend_session_id_a_turn_ends_with_is_what_the_next_process_reads(open_test_store):
    """The runner leaves the backend's id on the session and closes the turn: set by the first
    turn, kept by the next ones, replaced when the backend starts a new conversation."""
    store: Store = await open_test_store()
    ids = []
    for n, backend_id in enumerate(["backend-1", "backend-1", "backend-2", "backend-2"]):
        session = await store.active_session(T1, "b")
        session.session_id, session.turn_count, session.last_active = backend_id, n + 1, 1000.0 + n
        await finish_turn(store, session, f"E{n}")
        await store.close()
        store = await open_test_store()
        again = await store.active_session(T1, "b")
        ids.append((again.id, again.session_id, again.turn_count, again.last_active))
    await store.close()
    assert ids == [(session.id, "backend-1", 1, 1000.0), (session.id, "backend-1", 2, 1001.0),
                   (session.id, "backend-2", 3, 1002.0), (session.id, "backend-2", 4, 1003.0)]


async def test_turns_history_and_feedback(store: Store):
    record = await store.active_session(T1, "b")
    await finish_turn(store, record, "E1", question="q1", answer="a1", message_ids=["m1", "m2"])
    await finish_turn(store, record, "E2", question="q2", answer="cut", status="failed")
    await finish_turn(store, record, "E3", question="q3", answer="a3", message_ids=["m3"])

    rows = await store.turns_of(record.id)
    assert [r["event_id"] for r in rows] == ["E1", "E2", "E3"]
    first = rows[0]
    assert {k: first[k] for k in ("session", "thread", "adapter", "backend", "user", "question", "answer", "status",
                                  "sources", "score", "message_ids", "flags", "edits", "duration")} == {
        "session": record.id, "thread": str(T1), "adapter": "rec", "backend": "b", "user": "u1", "question": "q1",
        "answer": "a1", "status": "complete", "sources": [asdict(SOURCE)],
        "score": 0.75, "message_ids": ["m1", "m2"], "flags": {"usage": {"tokens": 3}}, "edits": 2, "duration": 0.5}

    with_recent = await store.active_session(T1, "b", with_recent=5)
    assert with_recent.recent == [("q1", "a1"), ("q3", "a3")]  # complete exchanges only, oldest first
    assert (await store.active_session(T1, "b", with_recent=1)).recent[-1] == ("q3", "a3")

    found = await store.turn_for_message(T1, "m2")
    assert found is not None and (found.event_id, found.thread, found.message_ids) == ("E1", T1, ["m1", "m2"])
    assert found.sources == [asdict(SOURCE)] and found.flags == {"usage": {"tokens": 3}}
    assert await store.turn_for_message(T2, "m2") is None
    assert await store.turn_for_message(T1, "m9") is None

    await Votes(store).record("E1", "u1", "up", None, 100.0)
    await Votes(store).record("E1", "u1", None, "very good", 101.0)  # a comment keeps the vote
    await Votes(store).record("E3", "u2", "down", None, 102.0)
    await Votes(store).record("E3", "u3", None, "hmm", 103.0)
    feedback = await Votes(store).list()
    assert [(f["event_id"], f["user"], f["value"], f["comment"], f["at"]) for f in feedback] == [
        ("E1", "u1", "up", "very good", 101.0), ("E3", "u2", "down", None, 102.0), ("E3", "u3", None, "hmm", 103.0)]
    assert (feedback[0]["thread"], feedback[0]["question"], feedback[0]["answer"], feedback[0]["score"]) == (
        str(T1), "q1", "a1", 0.75)
    assert [f["event_id"] for f in await Votes(store).list(since=102.0)] == ["E3", "E3"]
    assert await Votes(store).counts() == {"up": 1, "down": 1, "comment": 1}


@contextlib.asynccontextmanager
async def outside_reader(store: Store, url: str) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    """Reads a journal entry's `messages` as committed, from outside the store, at once: before
    the store's writer could commit what a call that did not wait left queued (PostgreSQL:
    one round trip on a prepared query; SQLite, opened with `exclusive=False`: a synchronous
    read, which the store's process may still race, so there it proves less)."""
    if isinstance(store, SQLiteStore):
        db = sqlite3.connect(store.path)

        async def read(event_id: str) -> Any:
            row = db.execute("SELECT messages FROM journal WHERE event_id = ?", (event_id,)).fetchone()
            return None if row is None else json.loads(row[0])

        try:
            yield read
        finally:
            db.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(url)
        query = await conn.prepare("SELECT messages::text FROM journal WHERE event_id = $1")  # then one round trip

        async def read(event_id: str) -> Any:
            value = await query.fetchval(event_id)
            return None if value is None else json.loads(value)

        try:
            yield read
        finally:
            await conn.close()


def _inbound_fields(inbound: Inbound) -> tuple:
    return (inbound.event_id, inbound.thread, inbound.user, inbound.text, inbound.adapter, inbound.user_name,
            inbound.mentions, inbound.is_direct, inbound.command)


async def test_the_journal_keeps_admitted_turns_in_order_across_a_restart_until_closed(open_test_store, store_url):
    store: Store = await open_test_store(exclusive=False)  # (SQLite: so that a reader outside can open it)
    e1 = entry("E1", T1, "q1", user_name="User One", mentions=("U2",), is_direct=True)
    e1.raw, e1.extra = {"ts": "1.5"}, {"hint": 1}
    e2, e3, e4 = entry("E2", T2), entry("E3", T1, "q3"), entry("E4", T1)
    async with outside_reader(store, store_url) as committed:
        for admitted in (e1, e2, e3, e4):
            assert await store.admit(admitted)
            assert await committed(admitted.event_id) == []  # durable on return
    assert e1.seq < e3.seq < e4.seq
    assert (e1.state, e1.owner, e1.messages) == ("queued", store.owner, [])
    pending = await store.pending(T1)
    assert [p.event_id for p in pending] == ["E1", "E3", "E4"]  # admission order
    assert pending[0].extra == {"hint": 1}  # this process's entries keep what intake left on them
    assert [p.event_id for p in await store.pending(T2)] == ["E2"]

    assert await store.take_thread(T1)  # a turn is started by the thread's owner
    assert await store.start_turn(e1)
    assert (e1.state, e1.owner) == ("running", store.owner)
    shown = [{"message_id": "m1", "data": {"ts": "m1"}, "text": "partial", "notes": [["n", "warning", "end"]],
              "status": None, "final": False}, {"message_id": None, "data": None, "text": "", "notes": [],
                                                 "status": "thinking", "final": False}]
    e1.messages = shown
    async with outside_reader(store, store_url) as committed:
        await store.journal_screen(e1, durable=True)
        assert await committed("E1") == shown  # committed on return (write-ahead)
    peer = await open_test_store(exclusive=False)  # another process on the same database, before any flush or close
    seen = (await peer.pending(T1))[0]
    assert (seen.event_id, seen.state, seen.owner, seen.messages) == ("E1", "running", store.owner, shown)
    await peer.close()

    e3.messages = [{"message_id": "m3", "data": {}, "text": "x", "notes": [], "status": None, "final": True}]
    await store.journal_screen(e3, durable=False)  # write-behind: durable by close
    await store.close_turn(e4)  # dropped without an answer
    assert [p.event_id for p in await store.pending(T1)] == ["E1", "E3"]
    old_owner = store.owner
    await store.close()

    store = await open_test_store()  # the next process finds what is journaled
    assert store.owner != old_owner
    assert sorted(map(str, await store.orphaned_threads())) == sorted([str(T1), str(T2)])
    again = await store.orphaned_threads()
    if isinstance(store, SQLiteStore):
        assert again == []  # a single process is told once, at start
    else:
        assert sorted(map(str, again)) == sorted([str(T1), str(T2)])  # until a live process takes them
    assert await store.take_thread(T1) and await store.take_thread(T2)
    assert await store.orphaned_threads() == []

    r1, r3 = await store.pending(T1)
    assert _inbound_fields(r1.inbound) == _inbound_fields(e1.inbound)
    assert (r1.inbound.raw, r1.raw, r1.backend, r1.query, r1.kind, r1.seq, r1.admitted_at) == (
        {"ts": "1.5"}, {"ts": "1.5"}, "b", "q1", "ask", e1.seq, e1.admitted_at)
    assert (r1.state, r1.owner, r1.messages) == ("running", old_owner, shown)  # cut off by the "crash"
    assert (r3.event_id, r3.state, r3.owner, r3.messages) == ("E3", "queued", old_owner, e3.messages)
    e5 = entry("E5", T1)
    assert await store.admit(e5)
    assert e5.seq > r3.seq
    assert [p.event_id for p in await store.pending(T1)] == ["E1", "E3", "E5"]

    assert await store.take_thread(T1)
    assert await store.start_turn(r1)  # adopted from the process that is gone
    assert (r1.state, r1.owner) == ("running", store.owner)
    session = await store.active_session(T1, "b")
    await store.close_turn(r1, session, Answer("recovered", status="interrupted", flags={"recovered": True}))
    for left in [r3, e5, *await store.pending(T2)]:
        await store.close_turn(left)
    assert await store.pending(T1) == [] and await store.pending(T2) == []
    await store.close()

    store = await open_test_store()
    assert await store.orphaned_threads() == []
    assert await store.pending(T1) == [] and await store.pending(T2) == []
    assert [(t["event_id"], t["status"], t["answer"], t["flags"]) for t in await store.turns_of(session.id)] == [
        ("E1", "interrupted", "recovered", {"recovered": True})]


async def test_a_sqlite_journal_of_the_schema_before_it_was_keyed_by_seq_is_recovered_in_order(tmp_path):
    """Schema 6 keys the journal by its sequence number: turns journaled by a botkit from
    before (keyed by event id) are still answered, in their order, after the upgrade."""
    path = str(tmp_path / "old.db")
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # back to schema 5, with three turns journaled
        db.executescript("""
            DROP TABLE journal;
            CREATE TABLE journal (event_id TEXT PRIMARY KEY, thread TEXT NOT NULL, seq INTEGER NOT NULL,
                backend TEXT NOT NULL, kind TEXT NOT NULL, query TEXT NOT NULL, inbound TEXT NOT NULL,
                state TEXT NOT NULL, messages TEXT NOT NULL, admitted_at REAL NOT NULL, owner TEXT NOT NULL) WITHOUT ROWID;
            PRAGMA user_version = 5;""")
        inbound = '["u1", "q", "rec", null, [], false, null, null]'
        db.executemany("INSERT INTO journal VALUES (?, ?, ?, 'b', 'ask', 'q', ?, ?, '[]', 1.0, 'gone:1:x')",
                       [("A-last", T1.key, 9, inbound, "queued"), ("Z-first", T1.key, 3, inbound, "running"),
                        ("M-other", T2.key, 5, inbound, "queued")])
        db.commit()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert sorted(map(str, await store.orphaned_threads())) == sorted([str(T1), str(T2)])
        first, last = await store.pending(T1)
        assert [(e.event_id, e.state) for e in (first, last)] == [("Z-first", "running"), ("A-last", "queued")]
        later = entry("E-new", T1)
        assert await store.admit(later) and later.seq > last.seq
        assert await store.start_turn(first)
        await store.close_turn(first)
        assert [e.event_id for e in await store.pending(T1)] == ["A-last", "E-new"]
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT event_id, state FROM journal ORDER BY seq").fetchall() == [
            ("M-other", "queued"), ("A-last", "queued"), ("E-new", "queued")]


async def test_a_redelivered_event_is_refused_and_not_journaled(store: Store):
    first = entry("E1")
    assert await store.admit(first)
    again = entry("E1", question="the same delivery, again")
    assert not await store.admit(again)
    assert not await store.claim_event("E1")  # the admission claimed the id
    assert await store.claim_event("E2")  # answered on the spot (help, busy) ...
    assert not await store.admit(entry("E2"))  # ... so never journaled when redelivered
    assert [(p.event_id, p.query) for p in await store.pending(T1)] == [("E1", "q")]
    await store.close_turn(first)
    assert not await store.admit(entry("E1"))  # a finished turn's id stays claimed
    assert await store.pending(T1) == []


async def test_a_closed_turn_is_recorded_once_and_never_started(store: Store):
    journaled = entry("E1", question="what the user wrote")
    journaled.query = "what a middleware made of it"
    assert await store.admit(journaled)
    session = await store.active_session(T1, "b")
    session.session_id, session.turn_count = "backend-1", 1
    await store.close_turn(journaled, session, Answer("a1", message_ids=["m1"]))
    assert await store.take_thread(T1)
    assert not await store.start_turn(journaled)  # closed meanwhile (superseded, or finished)
    assert await store.pending(T1) == []
    rows = await store.turns_of(session.id)
    assert [(r["event_id"], r["question"], r["answer"], r["message_ids"]) for r in rows] == [
        ("E1", "what the user wrote", "a1", ["m1"])]
    assert [(s["session_id"], s["turn_count"]) for s in await store.find_sessions(str(T1))] == [("backend-1", 1)]


async def test_prune_removes_old_turns_their_feedback_and_ended_sessions(store: Store):
    old = await store.active_session(T1, "b")
    old.last_active = 1000.0
    await store.save_session(old)
    await finish_turn(store, old, "E1", at=1000.0)
    await Votes(store).record("E1", "u1", "up", None, 1000.0)
    await store.end_session(T1)
    new = await store.active_session(T1, "b")
    await finish_turn(store, new, "E2", at=5000.0)
    await Votes(store).record("E2", "u1", "down", None, 5000.0)

    assert await store.prune(turns_before=2000.0) == 3  # E1's turn, its feedback, the ended session
    assert await store.turns_of(old.id) == []
    assert await store.find_sessions(str(old.id)) == []
    assert [t["event_id"] for t in await store.turns_of(new.id)] == ["E2"]
    assert [f["event_id"] for f in await Votes(store).list()] == ["E2"]
    assert (await store.active_session(T1, "b")).id == new.id


async def test_admin_reads_expiry_and_delete(store: Store):
    a = await store.active_session(T1, "b")
    a.session_id, a.last_active = "sess-a", 1000.0
    await store.save_session(a)
    await finish_turn(store, a, "E1", at=1000.0)
    b = await store.active_session(T2, "b")
    b.session_id, b.last_active = "sess-b", 3000.0
    await store.save_session(b)
    await finish_turn(store, b, "E2", at=3000.0)

    listed = await store.list_sessions()
    assert [s["id"] for s in listed] == [b.id, a.id]  # most recently active first
    assert {k: listed[0][k] for k in ("thread", "backend", "session_id", "turn_count", "ended_at", "adapter")} == {
        "thread": str(T2), "backend": "b", "session_id": "sess-b", "turn_count": 0, "ended_at": None, "adapter": "rec"}
    assert [s["id"] for s in await store.list_sessions(channel="c1")] == [a.id]
    assert [s["id"] for s in await store.list_sessions(since=2000.0)] == [b.id]
    assert await store.list_sessions(adapter="nobody") == []
    assert [s["id"] for s in await store.list_sessions(limit=1)] == [b.id]
    for ref in (str(T1), "sess-a", str(a.id)):
        assert [s["id"] for s in await store.find_sessions(ref)] == [a.id]
    assert await store.find_sessions("no-such-thing") == []

    assert await store.count_turns() == 2 and await store.count_turns(since=2000.0) == 1
    exported = [t async for t in store.iter_turns()]
    assert [(t["event_id"], t["session_id"], t["message_ids"]) for t in exported] == [
        ("E1", "sess-a", ["m-E1"]), ("E2", "sess-b", ["m-E2"])]

    expired = await store.expire_idle(2000.0)
    assert [(r.id, r.thread, r.session_id) for r in expired] == [(a.id, T1, "sess-a")]
    assert await store.expire_idle(4000.0, busy={T2}) == []
    assert await store.count_sessions() == 1

    await store.delete_session(b.id)
    assert await store.find_sessions(str(b.id)) == [] and await store.turns_of(b.id) == []
    assert await store.count_sessions() == 0
    assert (await store.active_session(T2, "b")).id != b.id


async def test_flush_makes_queued_writes_durable_for_another_connection(open_test_store):
    store: Store = await open_test_store(exclusive=False)  # (SQLite: so that another process can open it)
    record = await store.active_session(T1, "b")
    record.session_id, record.turn_count = "s-1", 1
    await store.save_session(record)
    await finish_turn(store, record, "E1")  # closing a turn is write-behind ...
    await store.flush()
    other = await open_test_store(exclusive=False)  # a second connection on the same database
    assert [t["event_id"] for t in await other.turns_of(record.id)] == ["E1"]
    assert await other.pending(T1) == []  # ... the turn left the journal with the same commit
    assert [s["session_id"] for s in await other.find_sessions(str(record.id))] == ["s-1"]


async def test_the_sqlite_wal_is_checkpointed_beside_the_writer(tmp_path):
    """The writer never checkpoints (its commits would wait on the sync); the store moves
    the WAL into the database file on its own, so the WAL does not grow without bound."""
    store = SQLiteStore(str(tmp_path / "wal.db"))
    await store.open()
    try:
        session = await store.active_session(T1, "b")
        await store.flush()
        # the pages reach the database file itself only through a checkpoint
        before = (tmp_path / "wal.db").stat().st_size
        for n in range(50):
            await finish_turn(store, session, f"E{n}")
        await store.flush()
        await eventually(lambda: (tmp_path / "wal.db").stat().st_size != before)
    finally:
        await store.close()


@pytest.mark.parametrize("setting, level", [(None, 1), ("normal", 1), ("full", 2)])
async def test_sqlite_synchronous_is_normal_unless_the_config_asks_for_full(tmp_path, setting, level):
    """`store.synchronous: full` syncs every commit (a power cut loses nothing committed);
    the default, normal, syncs at checkpoints."""
    (tmp_path / "c.yaml").write_text("adapters: {console: {}}\nbackends: {b: {type: local}}\n"
                                     + (f"store: {{synchronous: {setting}}}\n" if setting else ""))
    store = store_for(load(tmp_path / "c.yaml")[0])
    await store.open()
    try:
        assert await store._rows("PRAGMA synchronous", ()) == [{"synchronous": level}]
    finally:
        await store.close()


async def test_sqlite_commits_in_a_process_of_its_own_while_the_loop_goes_on(tmp_path):
    """Issue 12: the store's process commits, on the other core. A burst's writes go to it in
    batches as they queue, not all at the end of the loop iteration, so the first batches are
    being committed while the loop still admits the rest; every turn is durable, in order."""
    store = SQLiteStore(str(tmp_path / "process.db"))
    await store.open()
    try:
        assert store._process is not None and store._process.pid != os.getpid()
        admitted = [store.admit(entry(f"E{n}", ThreadKey("test", "w1", "c1", f"t{n % 7}"))) for n in range(1, 1201)]
        sent_within_the_iteration = store._sent
        assert 0 < sent_within_the_iteration < store._queued  # batches went; the rest goes as the iteration ends
        assert await asyncio.gather(*admitted) == [True] * 1200
        assert store._commits > 1
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "process.db")) as db:
        journaled = db.execute("SELECT event_id FROM journal ORDER BY seq").fetchall()
    assert journaled == [(f"E{n}",) for n in range(1, 1201)]


async def test_the_claims_of_a_burst_leave_no_table_behind_once_committed(tmp_path):
    """Issue 14: ids claimed and not yet committed are kept in a dict, and a dict keeps the table
    of its largest size; after a burst the store starts an empty one instead."""
    store = SQLiteStore(str(tmp_path / "claims.db"))
    await store.open()
    try:
        assert all(await asyncio.gather(*(store.claim_event(f"E{n}") for n in range(5000))))
        await store.flush()
        assert sys.getsizeof(store._claiming) == sys.getsizeof({})
    finally:
        await store.close()


async def test_a_store_whose_process_died_says_so_and_fails_what_waits_for_it(tmp_path, caplog):
    """Nothing more can be committed: deliveries are refused (the fault), a durable write and a
    read fail at once instead of hanging, and the close does not wait for the dead."""
    store = SQLiteStore(str(tmp_path / "dead.db"))
    await store.open()
    assert await store.admit(entry("E1"))
    os.kill(store._process.pid, signal.SIGKILL)
    await eventually(lambda: store.fault is not None)
    assert f"the store's process ended (exit code {-signal.SIGKILL}); the bot must be restarted" == store.fault
    with pytest.raises(sqlite3.OperationalError, match="process ended"):
        await asyncio.wait_for(store.admit(entry("E2")), 5)
    with pytest.raises(sqlite3.OperationalError, match="not open"):
        await asyncio.wait_for(store.count_turns(), 5)
    assert not await store.ping()
    await asyncio.wait_for(store.close(), 5)
    assert any("process ended" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    store = SQLiteStore(str(tmp_path / "dead.db"))  # the next start has what was committed
    await store.open()
    try:
        assert [e.event_id for e in await store.pending(T1)] == ["E1"]
    finally:
        await store.close()


async def test_ctrl_c_in_the_bots_terminal_leaves_its_store_process_to_the_bot(tmp_path):
    """SIGINT goes to the terminal's whole process group: the bot stops gracefully and flushes,
    so its store's process must outlive the signal until the bot closes it."""
    store = SQLiteStore(str(tmp_path / "sigint.db"))
    await store.open()
    try:
        os.kill(store._process.pid, signal.SIGINT)
        os.kill(store._process.pid, signal.SIGTERM)
        assert await store.admit(entry("E1"))
        assert store.fault is None and store._process.poll() is None
    finally:
        await store.close()


async def test_sqlite_keeps_the_sessions_used_last_in_memory_and_reads_the_others_back(tmp_path):
    """A bounded number of active sessions stay in memory (issue 14: per-thread state must not
    grow with every thread ever seen); a thread whose session was let go gets the same session,
    its history included, when it speaks again, and housekeeping still sees it."""
    threads = [ThreadKey("test", "w1", "c1", f"t{n}") for n in range(4)]
    store = SQLiteStore(str(tmp_path / "lru.db"), cached_sessions=2)
    await store.open()
    try:
        first = await store.active_session(threads[0], "b", with_recent=5)
        first.session_id, first.turn_count = "backend-1", 1  # as the runner leaves it
        await finish_turn(store, first, "E0", question="q0", answer="a0")
        for thread in threads[1:3]:
            await store.active_session(thread, "b")
        assert list(store._sessions) == [threads[1].key, threads[2].key]  # the first was let go
        assert await store.count_sessions() == 3

        again = await store.active_session(threads[0], "b", with_recent=5)
        assert (again.id, again.session_id, again.turn_count, again.recent) == (first.id, "backend-1", 1,
                                                                              [("q0", "a0")])
        assert list(store._sessions) == [threads[2].key, threads[0].key]  # and T1 went out in its place
        assert (await store.active_session(threads[3], "b")).id not in (first.id,)  # a new thread: no read

        ended = await store.end_session(threads[1])  # not in memory: read back to be ended
        assert ended is not None and ended.thread == threads[1]
        assert [s["ended_at"] is not None for s in await store.find_sessions(threads[1].key)] == [True]
        assert await store.count_sessions() == 3

        idle = await store.expire_idle(time.time() + 1, busy=[threads[3]])
        assert sorted(r.thread.key for r in idle) == sorted([threads[0].key, threads[2].key])
        assert await store.count_sessions() == 1
    finally:
        await store.close()

    reopened = SQLiteStore(str(tmp_path / "lru.db"), cached_sessions=1)
    await reopened.open()
    try:
        assert await reopened.count_sessions() == 1  # T4's, still active
        made = {t.key: (await reopened.active_session(t, "b")).id for t in threads[:2]}  # T4's let go
    finally:
        await reopened.close()
    again = SQLiteStore(str(tmp_path / "lru.db"), cached_sessions=1)
    await again.open()
    try:
        assert len(again._sessions) == 1 and await again.count_sessions() == 3
        assert {t.key: (await again.active_session(t, "b")).id for t in threads[:2]} == made  # read back
        await again.delete_session(made[threads[0].key])
        assert made[threads[0].key] not in [s["id"] for s in await again.find_sessions(threads[0].key)]
        assert await again.count_sessions() == 2
    finally:
        await again.close()


OPAQUE_FLAGS = """
from botkit import hookimpl


class Opaque:
    pass


@hookimpl
def botkit_answer_complete(turn, answer):
    if turn.inbound.text == "odd":
        answer.flags["mine"] = Opaque()  # not JSON
"""


async def test_a_turn_whose_record_is_not_json_is_answered_once_and_not_recorded(store_url, tmp_path, caplog):
    (tmp_path / "opaque_flags.py").write_text(OPAQUE_FLAGS)
    config = {"plugins": ["opaque_flags.py"], "adapters": {"rec": {"type": "recording"}},
              "backends": {"b": {"type": "fake", "answer": "A{turn}"}}, "store": {"url": store_url}}
    async with running_bot(config, tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert await rec.inject("odd", event_id="E1")
        assert await rec.inject("fine", event_id="E2")
        await bot.idle(5)
        await bot.store.flush()
        assert rec.texts() == ["A1", "A2"]
        thread = rec.thread("t1")
        assert await bot.store.pending(thread) == []  # both turns closed: nothing for recovery to answer again
        assert [t["event_id"] for t in await bot.store.thread_turns(thread, limit=10)] == ["E2"]
    assert any("E1" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)

