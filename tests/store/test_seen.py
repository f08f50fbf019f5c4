"""The dedupe filter of the SQLite store: never "certainly not" for an id claimed within its
TTL, forgetting only what expired, in the memory it was given."""

from __future__ import annotations

import time

import pytest

from botkit.store.seen import SeenIds


START = 1_000_000.0


def test_an_id_is_remembered_for_at_least_its_ttl_and_forgotten_after_two():
    seen = SeenIds(100.0, bits=1 << 16, now=START)
    for step in range(0, 300, 7):  # ids claimed all along, through several rotations
        assert not seen.add(f"E{step}", START + step)
        for earlier in range(0, step + 1, 7):
            if step - earlier < 100:  # within its TTL: claimed again, it may have been seen
                assert seen.add(f"E{earlier}", START + step), (earlier, step)
    later = START + 300 + 200 + 1
    assert not any(seen.add(f"E{step}", later) for step in range(0, 300, 7))


def test_new_ids_are_mostly_certainly_not_seen():
    seen = SeenIds(3600.0, bits=1 << 20, now=START)
    first_time = [seen.add(f"old-{n}", START) for n in range(50_000)]
    assert sum(first_time) < 50_000 * 0.02  # (a few false alarms among the first claims)
    assert all(seen.add(f"old-{n}", START + 1) for n in range(50_000))
    false_alarms = sum(seen.add(f"new-{n}", START + 1) for n in range(50_000))
    assert false_alarms < 50_000 * 0.02  # 4 hashes over 2^20 bits: ~0.2 % expected


def test_the_size_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        SeenIds(60.0, bits=1000)


async def test_the_sqlite_store_refuses_a_claimed_id_before_and_after_its_commit_until_it_expires(tmp_path):
    from botkit.store.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "seen.db"), events_ttl=0.5)
    await store.open()
    try:
        assert await store.claim_event("E1")
        assert not await store.claim_event("E1")  # queued, not yet committed: the store remembers it
        await store.flush()
        assert not await store.claim_event("E1")  # committed: the filter says maybe, the database says when
        assert store._claiming == {}  # nothing per id is kept in memory once committed
        assert store._claim("E1", time.time() + 0.6)  # once its TTL ran out, the id may be claimed again
    finally:
        await store.close()
