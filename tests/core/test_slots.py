"""The turn slots (`dispatch.max_in_flight`): bounded, first come first served, and a slot
never lost to a waiter that was cancelled."""

from __future__ import annotations

import asyncio

from botkit.pipeline.slots import Slots


async def test_no_more_than_count_hold_a_slot_and_waiters_go_in_arrival_order():
    slots, order, holding, peak = Slots(2), [], [0], [0]
    release = asyncio.Event()

    async def turn(n: int) -> None:
        async with slots:
            order.append(n)
            holding[0] += 1
            peak[0] = max(peak[0], holding[0])
            await release.wait()
            holding[0] -= 1

    tasks = [asyncio.create_task(turn(n)) for n in range(6)]
    async with asyncio.timeout(5):
        while len(order) < 2:
            await asyncio.sleep(0)
    assert order == [0, 1]  # the others wait
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == list(range(6)) and peak[0] == 2


async def cancel_a_queued_waiter(*, as_it_is_handed_the_slot: bool) -> list[str]:
    """A holder, then "doomed" and "patient" queued behind it; "doomed" is cancelled while
    it waits, or just as the holder hands it the slot. Who got in, once all is over."""
    slots = Slots(1)
    entered: list[str] = []
    tasks: dict[str, asyncio.Task] = {}
    first_in, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with slots:
            first_in.set()
            await release.wait()
        if as_it_is_handed_the_slot:
            tasks["doomed"].cancel()  # the slot has just been handed to it; it has not run yet

    async def waiter(name: str) -> None:
        async with slots:
            entered.append(name)

    held = asyncio.create_task(holder())
    await first_in.wait()
    tasks["doomed"] = asyncio.create_task(waiter("doomed"))
    patient = asyncio.create_task(waiter("patient"))
    await asyncio.sleep(0)  # a yield: both are queued behind the holder
    release.set()
    if not as_it_is_handed_the_slot:
        tasks["doomed"].cancel()
    await asyncio.wait_for(asyncio.gather(held, patient), 5)
    assert tasks["doomed"].cancelled()
    async with asyncio.timeout(1):  # and the slot is free again
        async with slots:
            pass
    return entered


async def test_a_cancelled_waiter_passes_its_slot_on():
    assert await cancel_a_queued_waiter(as_it_is_handed_the_slot=False) == ["patient"]


async def test_a_waiter_cancelled_just_after_it_was_handed_the_slot_passes_it_on():
    assert await cancel_a_queued_waiter(as_it_is_handed_the_slot=True) == ["patient"]
