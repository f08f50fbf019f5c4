"""ThreadOrder: per key, steps that await still finish in the order they were started."""

from __future__ import annotations

import asyncio

import pytest

from botkit.ordering import ThreadBusy, ThreadOrder


async def test_thread_order_runs_one_thread_in_call_order_and_others_freely():
    order = ThreadOrder(per_thread=3)
    first_started, release_first = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def first() -> str:
        first_started.set()
        await release_first.wait()
        ran.append("first")
        return "first"

    async def record(name: str) -> str:
        ran.append(name)
        return name

    a = asyncio.ensure_future(order.run("t", first))
    await asyncio.wait_for(first_started.wait(), 5)
    b = asyncio.ensure_future(order.run("t", lambda: record("second")))
    cancelled = asyncio.ensure_future(order.run("t", lambda: record("never")))
    await asyncio.sleep(0)  # one pass of the loop: both tasks start and queue (no I/O, no timing)
    assert order.queued("t") == 3
    with pytest.raises(ThreadBusy):
        await order.run("t", lambda: record("one too many"))
    assert await order.run("other", lambda: record("other thread")) == "other thread"  # does not wait
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert not b.done()  # a cancelled step in between does not let a later one jump ahead
    release_first.set()
    assert await asyncio.wait_for(asyncio.gather(a, b), 5) == ["first", "second"]
    assert ran == ["other thread", "first", "second"]
    assert not order.busy("t") and not order.busy("other")
