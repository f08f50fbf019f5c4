"""Deliveries of one Slack thread reach `bot.submit` in the order they arrived.

Most deliveries are submitted at once, before any await, and that fixes their place in
their thread. A thread follow-up in a thread the adapter does not remember must first
read the thread (conversations.replies) to know whether it is a question at all; while
it does, later deliveries of that thread queue behind it, so that a mention arriving
during the look-up cannot overtake it. Deliveries of other threads never wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class ThreadBusy(RuntimeError):
    """More deliveries queue in one thread than the bound: refuse (the platform retries later)."""


class ThreadOrder:
    """Per key, runs steps one after another in the order `run` was called.

    At most `per_thread` steps wait or run per key; `run` raises `ThreadBusy` past that.
    Keys with nothing queued take no memory.
    """

    def __init__(self, per_thread: int) -> None:
        self._per_thread = per_thread
        self._queues: dict[Hashable, list[asyncio.Future[None]]] = {}

    def busy(self, key: Hashable) -> bool:
        """Whether steps of `key` are waiting or running: a new delivery must queue behind them."""
        return key in self._queues

    def queued(self, key: Hashable) -> int:
        """How many steps of `key` are waiting or running."""
        return len(self._queues.get(key, ()))

    async def run(self, key: Hashable, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` once every step queued earlier for `key` has finished (or was cancelled)."""
        queue = self._queues.setdefault(key, [])
        if len(queue) >= self._per_thread:
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
