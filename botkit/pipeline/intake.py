"""Intake: what happens to a delivery in the task that submitted it, before the platform is acked.

Everything here runs before `bot.submit` returns, so an adapter can acknowledge the
platform once it does: the delivery is either journaled (durably: a crash from here on
is recovery's job) or answered on the spot (help, busy, refused), or dropped (a
redelivery, no route). Its place in the thread is fixed before the first await: with no
middlewares the journal write is queued synchronously; with middlewares, whose verdict
takes awaits, a per-thread chain hands admissions to the store in arrival order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botkit.adapters import Adapter, Stopping, Unavailable
from botkit.config import DispatchConfig, Route
from botkit.events import Inbound
from botkit.logs import turn_context
from botkit.ordering import ThreadOrder
from botkit.pipeline.workers import ThreadWorkers
from botkit.store import JournalEntry, TurnStore
from botkit.turn import Turn

if TYPE_CHECKING:
    from botkit.plugins import Plugins

log = logging.getLogger("botkit.dispatcher")


class Intake:
    def __init__(self, *, adapters: dict[str, Adapter], store: TurnStore, plugins: Plugins, routes: list[Route],
                 settings: DispatchConfig, workers: ThreadWorkers) -> None:
        self.adapters = adapters
        self.store = store
        self.plugins = plugins
        self.routes = routes
        self.settings = settings
        self.workers = workers
        self.accepting = True
        self._route_cache: dict[tuple, str | None] = {}
        self._admitting = ThreadOrder()  # a thread's admissions waiting for middleware verdicts, in order
        self._per_thread: dict[str, int] = {}  # turns journaled by this process and not finished, by thread key
        self._queued = 0
        self._reset_words = frozenset(w.lower() for w in settings.reset_commands)
        self._help_words = frozenset(w.lower() for w in settings.help_commands)

    @property
    def queued(self) -> int:
        """Turns this process journaled and has not finished."""
        return self._queued

    def finished(self, entry: JournalEntry) -> None:
        """A turn is over: if this process journaled it, its place in the bounds frees up."""
        if not entry.counted:
            return
        entry.counted = False
        self._queued -= 1
        key = entry.thread.key
        count = self._per_thread[key]
        if count > 1:
            self._per_thread[key] = count - 1
        else:
            del self._per_thread[key]

    # -- routing --------------------------------------------------------------------------

    def route(self, inbound: Inbound) -> str | None:
        """The backend for this message: the first route whose given fields all match."""
        key = (inbound.adapter, inbound.thread.workspace, inbound.thread.channel, inbound.is_direct)
        try:
            return self._route_cache[key]
        except KeyError:
            pass
        backend = None
        for route in self.routes:
            if ((route.adapter is None or route.adapter == inbound.adapter)
                    and (route.workspace is None or route.workspace == inbound.thread.workspace)
                    and (route.channel is None or route.channel == inbound.thread.channel)
                    and (route.direct is None or route.direct == inbound.is_direct)):
                backend = route.backend
                break
        if len(self._route_cache) < 100_000:
            self._route_cache[key] = backend
        return backend

    # -- admission --------------------------------------------------------------------------

    async def submit(self, inbound: Inbound) -> bool:
        """Admit a delivery; True if it is journaled or was handled, False if dropped."""
        token = turn_context.set((inbound.thread.key, inbound.event_id))  # for the logs
        try:
            if not self.accepting:
                log.warning("shutting down; message %s not taken (to be delivered again)", inbound.event_id)
                raise Stopping(inbound.event_id)
            if self.store.fault is not None:  # logged by the store, once per fault
                raise Unavailable(f"the store cannot write ({self.store.fault}); {inbound.event_id} not taken",
                                  self.settings.unavailable_message)
            backend = self.route(inbound)
            if backend is None:
                log.debug("no route for %s in %s", inbound.event_id, inbound.thread)
                return False
            adapter = self.adapters.get(inbound.adapter)
            if adapter is None:
                raise ValueError(f"Inbound.adapter must name a configured adapter, not {inbound.adapter!r}")
            text = inbound.text.strip()
            command = inbound.command or text.lower()
            native = inbound.command is not None
            is_reset = command == "reset" if native else command in self._reset_words
            is_help = command == "help" if native else command in self._help_words
            entry = JournalEntry(inbound, backend, text, "reset" if is_reset else "ask",
                                 raw=adapter.journal_raw(inbound))
            thread = inbound.thread
            waiting = self._per_thread.get(thread.key, 0)
            if waiting >= self.settings.max_queued_per_thread or self._queued >= self.settings.max_queued:
                log.warning("busy: %d queued in %s, %d in all", waiting, thread, self._queued)
                return await self._answer_now(adapter, inbound, self.settings.busy_message)
            screened = self.plugins.screens_messages
            if not screened and not self._admitting.busy(thread.key):
                if is_help:
                    return await self._answer_now(adapter, inbound, self.settings.help_text)
                return await self.admit(entry)

            async def judged() -> bool:  # its place in the thread is taken before the middlewares' awaits
                turn = Turn(inbound, adapter, backend, text, entry.extra)
                verdict = await self.plugins.message_received(turn) if screened else None
                if verdict is not None:
                    log.info("turn %s handled by a middleware: %s", inbound.event_id, verdict.reason or "-")
                    return await self._answer_now(adapter, inbound, verdict.reply)
                if is_help:
                    return await self._answer_now(adapter, inbound, self.settings.help_text)
                entry.query = turn.query  # as the middlewares left it
                return await self.admit(entry)

            return await self._admitting.run(thread.key, judged)
        finally:
            turn_context.reset(token)

    async def admit(self, entry: JournalEntry) -> bool:
        """Journal `entry` (claiming its event id) and hand its thread to a worker."""
        thread = entry.thread
        key = thread.key
        self._queued += 1
        self._per_thread[key] = self._per_thread.get(key, 0) + 1
        entry.counted = True
        try:
            admitted = await self.store.admit(entry, lambda: self.workers.kick(thread))
        except BaseException:
            self.finished(entry)
            raise
        if not admitted:
            self.finished(entry)
            log.info("duplicate delivery of event %s ignored", entry.event_id)
            return False
        if self.settings.strategy == "latest":
            await self._supersede(entry)
        return True

    async def _supersede(self, entry: JournalEntry) -> None:
        """Strategy `latest`: questions still waiting in the thread give way to the newest."""
        for older in (await self.store.pending(entry.thread))[1:]:  # the first is running, or about to
            if older.seq < entry.seq and older.state == "queued":
                log.info("strategy latest: %s superseded by %s", older.event_id, entry.event_id)
                await self.store.close_turn(older)
                self.finished(older)

    async def _answer_now(self, adapter: Adapter, inbound: Inbound, text: str | None) -> bool:
        """Claim the delivery and answer it on the spot (help, busy, a refusal); no turn."""
        if not await self.store.claim_event(inbound.event_id):
            log.info("duplicate delivery of event %s ignored", inbound.event_id)
            return False
        if text:
            await adapter.tell(inbound, text)
        return True
