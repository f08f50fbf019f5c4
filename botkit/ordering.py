"""Per key (a thread), steps that take awaits still finish in the order they were started.

What fixes a delivery's place in its thread is the order in which steps are started;
`ThreadOrder` keeps that order while a step awaits something (a middleware's verdict, a
database round trip, a Slack thread look-up): later steps of the same key queue behind
it, other keys never wait. Intake, the PostgreSQL store and the Slack adapter use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class ThreadBusy(RuntimeError):
    """More steps queue for one key than the bound: refuse (the platform retries later)."""


class ThreadOrder:
    """Per key, runs steps one after another in the order `run` was called.

    At most `per_thread` steps wait or run per key (None: no bound); `run` raises
    `ThreadBusy` past that. Keys with nothing queued take no memory.
    """

    def __init__(self, per_thread: int | None = None) -> None:
        self._per_thread = per_thread
        self._queues: dict[Hashable, list[asyncio.Future[None]]] = {}

    def busy(self, key: Hashable) -> bool:
        """Whether steps of `key` are waiting or running: a new one must queue behind them."""
        return key in self._queues

    def queued(self, key: Hashable) -> int:
        """How many steps of `key` are waiting or running."""
        return len(self._queues.get(key, ()))

    async def run(self, key: Hashable, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` once every step queued earlier for `key` has finished (or was cancelled)."""
        queue = self._queues.setdefault(key, [])
        if self._per_thread is not None and len(queue) >= self._per_thread:
            raise ThreadBusy(f"{len(queue)} deliveries already queued in {key}")
        earlier = list(queue)  # all of them: a cancelled one in between must not let this one jump ahead
        done = asyncio.get_running_loop().create_future()
        queue.append(done)
        try:
            if earlier:
                await asyncio.wait(earlier)  # never cancels them, unlike awaiting a future
            return await step()
        finally:
            done.set_result(None)
            queue.remove(done)
            if not queue:
                del self._queues[key]
