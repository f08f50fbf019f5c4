"""Coarse timers for many turns: one watchdog task instead of a timer per turn.

A loop timer per turn (`asyncio.timeout`, `call_later`) is scheduled and cancelled for
almost every turn, which is a measurable share of the hot path when answers are fast.
Here a timer is one dict entry; a single task looks at the oldest ones once a
`resolution` and runs the actions of those past due. Used for turn timeouts and for
the deferred progress placeholder, each with one length for all its timers (so
insertion order is deadline order).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("botkit.dispatcher")


class Deadlines:
    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self._due: dict[Hashable, tuple[float, Callable[[Any], object]]] = {}
        self._watchdog: asyncio.Task | None = None

    def start(self, key: Hashable, seconds: float, action: Callable[[Any], object]) -> None:
        """Run `action(key)` in `seconds` (give or take `resolution`) unless `stop(key)` comes
        first. (The key is passed, so that callers hand the same function every time rather
        than make a closure per timer.)"""
        self._due[key] = (time.monotonic() + seconds, action)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="botkit-deadlines")

    def stop(self, key: Hashable) -> None:
        """Forget `key`'s timer (if its action has not run yet)."""
        self._due.pop(key, None)

    async def _watch(self) -> None:
        try:
            while self._due:
                await asyncio.sleep(self.resolution)
                now = time.monotonic()
                while self._due:  # oldest first: stop at the first one not yet due
                    key, (due, action) = next(iter(self._due.items()))
                    if due > now:
                        break
                    del self._due[key]
                    try:
                        action(key)
                    except Exception:
                        log.exception("a deadline's action failed")
        finally:
            self._watchdog = None
