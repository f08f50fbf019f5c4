"""Turn deadlines: one watchdog for every running turn instead of a timer per turn.

`asyncio.timeout` schedules and cancels a timer handle for every turn, a measurable
share of the hot path when answers are fast. A turn's deadline here is one dict entry;
a single task looks at the oldest ones once a `resolution` and cancels the tasks of
turns past theirs. The runner tells a timeout from a shutdown by what `stop(task)` says.
"""

from __future__ import annotations

import asyncio
import time


class Deadlines:
    def __init__(self, resolution: float = 0.25) -> None:
        self.resolution = resolution
        self._due: dict[asyncio.Task, float] = {}  # insertion order is deadline order (one timeout for all)
        self._expired: set[asyncio.Task] = set()
        self._watchdog: asyncio.Task | None = None

    def start(self, task: asyncio.Task, seconds: float) -> None:
        """`task` must finish its turn within `seconds` (until `stop`)."""
        self._due[task] = time.monotonic() + seconds
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="botkit-turn-deadlines")

    def stop(self, task: asyncio.Task) -> bool:
        """The turn of `task` is over; True if it had run past its deadline (and was cancelled)."""
        self._due.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def _watch(self) -> None:
        try:
            while self._due:
                await asyncio.sleep(self.resolution)
                now = time.monotonic()
                while self._due:  # oldest first: stop at the first one not yet due
                    task, due = next(iter(self._due.items()))
                    if due > now:
                        break
                    del self._due[task]
                    self._expired.add(task)
                    task.cancel()
        finally:
            self._watchdog = None
