"""The dispatcher: the pipeline's stages wired together, and what the rest of botkit calls.

    adapter -> Intake.submit -> store.admit (journal) -> ThreadWorkers -> TurnRunner -> store.close_turn

`submit` returns once the delivery is journaled (or answered on the spot, or dropped);
the turn runs in its thread's worker. Turns in one thread run one at a time in journal
order; threads run concurrently, at most `dispatch.max_in_flight` turns asking their backend at once.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from botkit.adapters import Adapter
from botkit.backends import Backend
from botkit.config import DispatchConfig, RecoveryConfig, Route
from botkit.events import Inbound, ThreadKey
from botkit.pipeline.intake import Intake
from botkit.pipeline.runner import TurnRunner
from botkit.pipeline.workers import ThreadWorkers
from botkit.store import JournalEntry, TurnStore
from botkit.turn import Turn

#: seconds after the grace time that the final edits of turns cut off by a stop may take;
#: what is not delivered by then stays journaled for the next start
FINAL_EDIT_MARGIN = 5.0

if TYPE_CHECKING:
    from botkit.plugins import Plugins
    from botkit.render import DeliveryObserver


class Dispatcher:
    def __init__(self, *, adapters: dict[str, Adapter], backends: dict[str, Backend], store: TurnStore,
                 plugins: Plugins, routes: list[Route], settings: DispatchConfig,
                 recovery: RecoveryConfig | None = None, observers: Sequence[DeliveryObserver] = ()) -> None:
        self.settings = settings
        self.recovery = recovery or RecoveryConfig()
        self.store = store
        self.runner = TurnRunner(adapters=adapters, backends=backends, store=store, plugins=plugins,
                                 settings=settings, recovery=self.recovery, observers=observers)
        self.workers = ThreadWorkers(store, self.runner.run, lambda entry: self.intake.finished(entry))
        self.intake = Intake(adapters=adapters, store=store, plugins=plugins, routes=routes, settings=settings,
                             workers=self.workers)

    # -- what adapters and the scheduler call ----------------------------------------------------

    def submit(self, inbound: Inbound) -> Coroutine[Any, Any, bool]:
        """Accept a delivery; True once it is journaled (or was handled), False if dropped.

        A redelivered event id or a message no route matches returns False and gets no
        answer; during shutdown `botkit.adapters.Stopping` is raised (fail the delivery).
        (The intake's coroutine itself.)
        """
        return self.intake.submit(inbound)

    async def start_turn(self, turn: Turn) -> bool:
        """Journal a turn the bot asks itself (a scheduled question): deduped on its event id
        like any message, but not routed and not shown to `botkit_message_received`."""
        if not self.intake.accepting:
            return False
        entry = JournalEntry(turn.inbound, turn.backend, turn.query, "start", raw=turn.adapter.journal_raw(turn.inbound))
        return await self.intake.admit(entry)

    def cancel(self, thread: ThreadKey) -> bool:
        """Stop the answer streaming in `thread` (see `TurnRunner.cancel`)."""
        return self.runner.cancel(thread)

    def route(self, inbound: Inbound) -> str | None:
        return self.intake.route(inbound)

    @property
    def queued(self) -> int:
        """Turns accepted here and not yet finished."""
        return self.intake.queued

    def busy_threads(self) -> Collection[ThreadKey]:
        """Threads with a turn queued or running here (their sessions are not idle)."""
        return self.workers.busy_threads()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what the journal holds, then keep sweeping for threads nobody owns."""
        await self.workers.sweep()
        self.workers.start_sweeping(self.recovery.sweep_interval)

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until no turn is queued or running."""
        await self.workers.idle(timeout)

    async def drain(self, grace: float) -> None:
        """Stop accepting; let running turns finish for `grace` seconds, then cut them off.
        Turns still queued stay journaled for the next start or another replica."""
        self.intake.accepting = False
        self.runner.stop_deadline = time.monotonic() + grace + FINAL_EDIT_MARGIN
        await self.workers.stop(grace)
