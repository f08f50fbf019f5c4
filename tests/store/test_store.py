"""What the dispatcher and the admin commands rely on, run against every store (SQLite, PostgreSQL)."""

from __future__ import annotations

import time

from botkit.events import ThreadKey
from botkit.store import Store, TurnRecord

T1 = ThreadKey("test", "w1", "c1", "t1")
T2 = ThreadKey("test", "w1", "c2", "t2")


def turn(session: int, thread: ThreadKey, event_id: str, *, question: str = "q", answer: str = "a",
         status: str = "complete", at: float | None = None, message_ids: list[str] | None = None) -> TurnRecord:
    return TurnRecord(session, thread, event_id, "rec", "b", "u1", question, answer, status,
                      time.time() if at is None else at, sources=[{"index": 1, "title": "Doc", "url": "https://x"}],
                      score=0.75, message_ids=message_ids or [f"m-{event_id}"], first_text_after=0.1, duration=0.5,
                      edits=2, flags={"usage": {"tokens": 3}})


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
    await store.record_turn(turn(new.id, T1, "E1"))
    await store.close()
    store = await open_test_store()
    assert (await store.active_session(T1, "b")).id == new.id
    assert [t["event_id"] for t in await store.turns_of(new.id)] == ["E1"]


async def test_turns_history_and_feedback(store: Store):
    record = await store.active_session(T1, "b")
    await store.record_turn(turn(record.id, T1, "E1", question="q1", answer="a1", message_ids=["m1", "m2"]))
    await store.record_turn(turn(record.id, T1, "E2", question="q2", answer="cut", status="failed"))
    await store.record_turn(turn(record.id, T1, "E3", question="q3", answer="a3", message_ids=["m3"]))

    rows = await store.turns_of(record.id)
    assert [r["event_id"] for r in rows] == ["E1", "E2", "E3"]
    first = rows[0]
    assert {k: first[k] for k in ("session", "thread", "adapter", "backend", "user", "question", "answer", "status",
                                  "sources", "score", "message_ids", "flags", "edits", "duration")} == {
        "session": record.id, "thread": str(T1), "adapter": "rec", "backend": "b", "user": "u1", "question": "q1",
        "answer": "a1", "status": "complete", "sources": [{"index": 1, "title": "Doc", "url": "https://x"}],
        "score": 0.75, "message_ids": ["m1", "m2"], "flags": {"usage": {"tokens": 3}}, "edits": 2, "duration": 0.5}

    with_recent = await store.active_session(T1, "b", with_recent=5)
    assert with_recent.recent == [("q1", "a1"), ("q3", "a3")]  # complete exchanges only, oldest first
    assert (await store.active_session(T1, "b", with_recent=1)).recent[-1] == ("q3", "a3")

    found = await store.turn_for_message(T1, "m2")
    assert found is not None and (found.event_id, found.thread, found.message_ids) == ("E1", T1, ["m1", "m2"])
    assert found.sources == [{"index": 1, "title": "Doc", "url": "https://x"}] and found.flags == {"usage": {"tokens": 3}}
    assert await store.turn_for_message(T2, "m2") is None
    assert await store.turn_for_message(T1, "m9") is None

    await store.record_feedback("E1", "u1", "up", None, 100.0)
    await store.record_feedback("E1", "u1", None, "very good", 101.0)  # a comment keeps the vote
    await store.record_feedback("E3", "u2", "down", None, 102.0)
    await store.record_feedback("E3", "u3", None, "hmm", 103.0)
    feedback = await store.list_feedback()
    assert [(f["event_id"], f["user"], f["value"], f["comment"], f["at"]) for f in feedback] == [
        ("E1", "u1", "up", "very good", 101.0), ("E3", "u2", "down", None, 102.0), ("E3", "u3", None, "hmm", 103.0)]
    assert (feedback[0]["thread"], feedback[0]["question"], feedback[0]["answer"], feedback[0]["score"]) == (
        str(T1), "q1", "a1", 0.75)
    assert [f["event_id"] for f in await store.list_feedback(since=102.0)] == ["E3", "E3"]
    assert await store.feedback_counts() == {"up": 1, "down": 1, "comment": 1}


async def test_answers_in_progress_until_recorded_or_forgotten(open_test_store):
    store: Store = await open_test_store()
    record = await store.active_session(T1, "b")
    await store.answer_started("E1", T1, "rec", [{"message_id": "m1", "data": {}}])
    await store.answer_started("E1", T1, "rec", [{"message_id": "m1", "data": {}}, {"message_id": "m2", "data": {"x": 1}}])
    await store.answer_started("E2", T2, "rec", [{"message_id": "m3", "data": {}}])
    await store.answer_started("E3", T2, "rec", [])
    await store.record_turn(turn(record.id, T1, "E3"))
    await store.close()

    store = await open_test_store()  # the next process finds them
    left = await store.interrupted_answers()
    assert [(a.event_id, a.thread, a.adapter, a.messages) for a in left] == [
        ("E1", T1, "rec", [{"message_id": "m1", "data": {}}, {"message_id": "m2", "data": {"x": 1}}]),
        ("E2", T2, "rec", [{"message_id": "m3", "data": {}}])]
    await store.forget_inflight("E1")
    await store.record_turn(turn(record.id, T2, "E2"))
    assert await store.interrupted_answers() == []


async def test_prune_removes_old_turns_their_feedback_and_ended_sessions(store: Store):
    old = await store.active_session(T1, "b")
    old.last_active = 1000.0
    await store.save_session(old)
    await store.record_turn(turn(old.id, T1, "E1", at=1000.0))
    await store.record_feedback("E1", "u1", "up", None, 1000.0)
    await store.end_session(T1)
    new = await store.active_session(T1, "b")
    await store.record_turn(turn(new.id, T1, "E2", at=5000.0))
    await store.record_feedback("E2", "u1", "down", None, 5000.0)

    assert await store.prune(turns_before=2000.0) == 3  # E1's turn, its feedback, the ended session
    assert await store.turns_of(old.id) == []
    assert await store.find_sessions(str(old.id)) == []
    assert [t["event_id"] for t in await store.turns_of(new.id)] == ["E2"]
    assert [f["event_id"] for f in await store.list_feedback()] == ["E2"]
    assert (await store.active_session(T1, "b")).id == new.id


async def test_admin_reads_expiry_and_delete(store: Store):
    a = await store.active_session(T1, "b")
    a.session_id, a.last_active = "sess-a", 1000.0
    await store.save_session(a)
    await store.record_turn(turn(a.id, T1, "E1", at=1000.0))
    b = await store.active_session(T2, "b")
    b.session_id, b.last_active = "sess-b", 3000.0
    await store.save_session(b)
    await store.record_turn(turn(b.id, T2, "E2", at=3000.0))

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
    store: Store = await open_test_store()
    record = await store.active_session(T1, "b")
    record.session_id, record.turn_count = "s-1", 1
    await store.save_session(record)
    await store.record_turn(turn(record.id, T1, "E1"))
    await store.flush()
    other = await open_test_store()  # a second connection on the same database
    assert [t["event_id"] for t in await other.turns_of(record.id)] == ["E1"]
    assert [s["session_id"] for s in await other.find_sessions(str(record.id))] == ["s-1"]
