"""Thread workers: one task per busy thread runs its journaled turns in journal order.

A worker owns its thread through the store (`take_thread`: a lease with a heartbeat on
a shared store), reads the thread's pending turns from the journal, runs them one at a
time, and gives the thread up only when
the journal has nothing more for it. A sweep at start and every `recovery.sweep_interval`
finds threads that have journaled turns and no live owner (a crash, a stop, a replica
that died) and starts workers for them: that is recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from botkit.events import ThreadKey
from botkit.logs import turn_context
from botkit.store import JournalEntry, Store

log = logging.getLogger("botkit.dispatcher")


class _Worker:
    __slots__ = ("task", "kicked")

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.kicked = False  # a turn was journaled for the thread since the worker last looked


class ThreadWorkers:
    def __init__(self, store: Store, run: Callable[[JournalEntry], Awaitable[object]],
                 finished: Callable[[JournalEntry], None]) -> None:
        self.store = store
        self.run = run
        self.finished = finished  # told of every turn that ran here, however it ended
        self._workers: dict[ThreadKey, _Worker] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._sweeper: asyncio.Task | None = None

    def busy_threads(self) -> Collection[ThreadKey]:
        """Threads this process is working on (their sessions are not idle)."""
        return self._workers.keys()

    def kick(self, thread: ThreadKey) -> None:
        """A turn was journaled for `thread`: make sure a worker will run it."""
        if self._stopping:
            return
        worker = self._workers.get(thread)
        if worker is not None:
            worker.kicked = True
            return
        worker = self._workers[thread] = _Worker()
        self._idle.clear()
        worker.task = asyncio.create_task(self._work(thread, worker))

    async def _work(self, thread: ThreadKey, worker: _Worker) -> None:
        store = self.store
        leased = store.shared
        try:
            while not self._stopping:
                if leased and not await store.take_thread(thread):
                    return  # a live replica owns it and will run what is journaled
                while not self._stopping:
                    worker.kicked = False
                    entries = await store.pending(thread)
                    if not entries:
                        if worker.kicked:
                            continue
                        break
                    for entry in entries:
                        if self._stopping:
                            break
                        await self._run(thread, entry)
                if not leased:
                    if not worker.kicked:
                        return
                elif self._stopping:
                    await store.release_thread(thread, force=True)
                    return
                elif await store.release_thread(thread) and not worker.kicked:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the worker of thread %s failed; its turns stay journaled for recovery", thread)
        finally:
            if self._workers.get(thread) is worker:
                del self._workers[thread]
            if not self._workers:
                self._idle.set()

    async def _run(self, thread: ThreadKey, entry: JournalEntry) -> None:
        turn_context.set((str(thread), entry.event_id))
        try:
            await self.run(entry)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("turn %s failed in the dispatcher", entry.event_id)
            await self.store.close_turn(entry)  # never retried forever: the failure is logged
        finally:
            self.finished(entry)

    # -- recovery sweeps ------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Start workers for threads with journaled turns and no live owner; how many."""
        threads = [t for t in await self.store.orphaned_threads() if t not in self._workers]
        for thread in threads:
            self.kick(thread)
        if threads:
            log.info("recovering journaled turns in %d threads", len(threads))
        return len(threads)

    def start_sweeping(self, interval: float) -> None:
        self._sweeper = asyncio.create_task(self._sweep_loop(interval), name="botkit-recovery-sweep")

    async def _sweep_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.warning("the recovery sweep failed; trying again in %g s", interval, exc_info=True)

    # -- stopping -------------------------------------------------------------------------------

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until no worker runs."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, grace: float) -> None:
        """Start no more turns; let running ones finish for `grace` seconds, then cut them off.

        Queued turns stay in the journal for the next start or another replica. A turn cut
        off here ends with its partial answer and a notice (the runner sees the cancellation).
        """
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            tasks = [w.task for w in self._workers.values() if w.task is not None]
            log.warning("interrupting %d turns still running after %g s", len(tasks), grace)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
