"""Thread workers: a bounded pool of tasks runs the threads that have journaled turns.

A thread with work waits in a ready queue (first come, first served) until one of at
most `POOL_SIZE` worker tasks takes it. The worker owns the thread through the store
(`take_thread`: a lease with a heartbeat on a shared store), runs its pending turns in
journal order, one at a time, and lets go only when the journal has nothing more for
it (on a shared store the release itself checks, against every replica's admissions);
then it takes the next ready thread. So turns in one thread never overlap, and a
burst over 100,000 threads costs 100,000 queue entries, not 100,000 live tasks for the
garbage collector to walk. (How many turns ask their backend at once is the runner's
`dispatch.max_in_flight`; the pool is larger so that the journal writes of many turns
share each commit.)

A sweep at start and every `recovery.sweep_interval` finds threads that have journaled
turns and no live owner (a crash, a stop, a replica that died) and queues them: that is
recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator

from botkit.events import ThreadKey
from botkit.logs import turn_context
from botkit.store import JournalEntry, StoreUnreachable, TurnStore

log = logging.getLogger("botkit.dispatcher")

#: worker tasks at most: 64 turns' journal writes per commit cost ~15 % more CPU per turn
#: than 1,000's (bench/dispatch.py), and 1,000 tasks are nothing to the garbage collector
POOL_SIZE = 1024
#: seconds before a thread whose worker failed (the store out of reach) is taken up again
RETRY_AFTER = 5.0


class ThreadWorkers:
    def __init__(self, store: TurnStore, run: Callable[[JournalEntry], Awaitable[object]],
                 finished: Callable[[JournalEntry], None], *, size: int | None = None) -> None:
        self.store = store
        self.run = run
        self.finished = finished  # told of every turn that ran here, however it ended
        self.size = size or POOL_SIZE
        # thread (its `key`: a str hashes in C, a ThreadKey in Python, a dozen times a turn) ->
        # whether a turn was journaled for it since its worker last looked (every thread here
        # is either waiting in `_ready` or held by a worker)
        self._kicked: dict[str, bool] = {}
        self._ready: deque[ThreadKey] = deque()
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._sweeper: asyncio.Task | None = None

    def busy_threads(self) -> Collection[ThreadKey]:
        """Threads this process has turns for, queued or running (their sessions are not idle)."""
        return _Threads(self._kicked.keys())

    def kick(self, thread: ThreadKey) -> None:
        """A turn was journaled for `thread`: make sure a worker will run it."""
        if self._stopping:
            return
        key = thread.key
        if key in self._kicked:
            self._kicked[key] = True
            return
        self._kicked[key] = False
        self._ready.append(thread)
        self._idle.clear()
        if len(self._tasks) < self.size:
            task = asyncio.create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        """A worker is gone: from the count at once (a thread queued from now on gets a new
        worker rather than wait for one that has stopped looking)."""
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _work(self) -> None:
        """One worker: take ready threads until none is left."""
        ready = self._ready
        try:
            while ready and not self._stopping:
                thread = ready.popleft()
                try:
                    await self._work_on(thread)
                finally:
                    del self._kicked[thread.key]
        finally:
            task = asyncio.current_task()
            assert task is not None
            self._done(task)  # (the done callback covers a worker cancelled before it ran)

    async def _work_on(self, thread: ThreadKey) -> None:
        """Run `thread`'s journaled turns until its journal is empty."""
        store = self.store
        kicked = self._kicked
        key = thread.key
        leased = store.shared
        try:
            while not self._stopping:
                if leased and not await store.take_thread(thread):
                    return  # a live replica owns it and will run what is journaled
                while not self._stopping:
                    kicked[key] = False
                    entries = await store.pending(thread)
                    if not entries:
                        if kicked[key]:
                            continue
                        break
                    for entry in entries:  # (each turn here, not in a coroutine of its own: one a turn)
                        if self._stopping:
                            break
                        turn_context.set((key, entry.event_id))
                        try:
                            await self.run(entry)
                        except asyncio.CancelledError:
                            raise
                        except StoreUnreachable:
                            raise  # the turn stays journaled, for the thread's next try (below)
                        except Exception:
                            log.exception("turn %s failed in the dispatcher", entry.event_id)
                            await store.close_turn(entry)  # never retried forever: the failure is logged
                        finally:
                            self.finished(entry)
                    if leased and not kicked[key]:
                        break  # no look at an empty journal: the release sees whether a replica journaled more
                if not leased:
                    if not kicked[key]:
                        return
                elif self._stopping:
                    await store.release_thread(thread, force=True)
                    return
                elif await store.release_thread(thread) and not kicked[key]:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the worker of thread %s failed; its turns stay journaled and are tried again in %g s",
                          thread, RETRY_AFTER)
            asyncio.get_running_loop().call_later(RETRY_AFTER, self.kick, thread)

    # -- recovery sweeps ------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Queue threads with journaled turns and no live owner; how many."""
        threads = [t for t in await self.store.orphaned_threads() if t.key not in self._kicked]
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
            tasks = list(self._tasks)
            log.warning("interrupting %d turns still running after %g s", len(tasks), grace)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._ready.clear()
        self._kicked.clear()


class _Threads(Collection[ThreadKey]):
    """The threads whose keys are in `keys` (a live view), as ThreadKeys."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Collection[str]) -> None:
        self._keys = keys

    def __contains__(self, thread: object) -> bool:
        return isinstance(thread, ThreadKey) and thread.key in self._keys

    def __iter__(self) -> Iterator[ThreadKey]:
        return (ThreadKey.parse(key) for key in list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)
