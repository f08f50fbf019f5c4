"""Slots: how many turns ask their backend at once (`dispatch.max_in_flight`), first come first served.

`asyncio.Semaphore` looks at every waiter to decide whether it is free (Python 3.11), and
with a thousand turns waiting for 64 slots that scan was a measurable share of a turn.
Here a freed slot is handed straight to the oldest waiter: O(1) either way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from types import TracebackType

from botkit.ready import DONE


class Slots:
    __slots__ = ("_free", "_waiting")

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: deque[asyncio.Future[None]] = deque()

    def __aenter__(self) -> Awaitable[None]:
        if self._free and not self._waiting:
            self._free -= 1
            return DONE  # (no coroutine to make and run for a free slot: most turns)
        return self._wait()

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter  # resolved by `__aexit__`, which hands this waiter its slot
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot came with the cancellation: pass it on
            elif waiter in self._waiting:  # (a release may have dropped it already)
                self._waiting.remove(waiter)
            raise

    def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                  tb: TracebackType | None) -> Awaitable[None]:
        self._release()
        return DONE

    def _release(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
