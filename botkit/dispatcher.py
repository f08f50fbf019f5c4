"""One turn, end to end: dedupe, route, middlewares, per-thread order, stream, record.

`submit` is what adapters call; it returns as soon as the message is accepted (or
known to be a duplicate, unrouted or refused) and the turn runs in the background.
Turns in one thread run one at a time in arrival order; turns in different threads
run concurrently up to `dispatch.max_in_flight`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Collection
from dataclasses import asdict
from typing import TYPE_CHECKING

from botkit.adapters import Adapter, MessageRef
from botkit.backends import Backend, BackendError, Question, Session
from botkit.config import DispatchConfig, Route
from botkit.events import Done, Failed, Inbound, SessionInfo, ThreadKey
from botkit.logs import turn_context
from botkit.render import AnswerRenderer
from botkit.store import Store, TurnRecord
from botkit.turn import Answer, Turn

if TYPE_CHECKING:
    from botkit.plugins import Plugins

log = logging.getLogger("botkit.dispatcher")

_RESET = object()


class _Pending:
    """A turn waiting in its thread's queue; `ready` resolves once middlewares let it through."""

    __slots__ = ("turn", "ready", "kind")

    def __init__(self, turn: Turn, ready: asyncio.Future | None, kind: object = None) -> None:
        self.turn = turn
        self.ready = ready
        self.kind = kind


class Dispatcher:
    def __init__(self, *, adapters: dict[str, Adapter], backends: dict[str, Backend], store: Store,
                 plugins: Plugins, routes: list[Route], settings: DispatchConfig) -> None:
        self.adapters = adapters
        self.backends = backends
        self.store = store
        self.plugins = plugins
        self.routes = routes
        self.settings = settings
        self._route_cache: dict[tuple, str | None] = {}
        self._threads: dict[ThreadKey, deque[_Pending]] = {}
        self._workers: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._queued = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._reset_words = frozenset(w.lower() for w in settings.reset_commands)
        self._help_words = frozenset(w.lower() for w in settings.help_commands)
        self._has_middlewares = False
        self.refresh()

    def refresh(self) -> None:
        """Recompute hot-path shortcuts after plugins changed (middlewares registered)."""
        self._has_middlewares = bool(self.plugins.pm.hook.botkit_message_received.get_hookimpls())

    @property
    def queued(self) -> int:
        """Turns accepted and not yet finished."""
        return self._queued

    def busy_threads(self) -> Collection[ThreadKey]:
        """Threads with a turn queued or running (their sessions are not idle)."""
        return self._threads.keys()

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

    # -- accepting ----------------------------------------------------------------------------

    async def submit(self, inbound: Inbound) -> bool:
        """Accept a message; True if it will be answered (or was handled), False if dropped.

        A redelivered event id, a message no route matches, or one arriving during
        shutdown returns False and gets no answer.
        """
        token = turn_context.set((str(inbound.thread), inbound.event_id))
        try:
            return await self._submit(inbound)
        finally:
            turn_context.reset(token)

    async def start_turn(self, turn: Turn) -> bool:
        """Queue a turn the bot asks itself (a scheduled question): deduped on its event id
        like any message, but not routed and not shown to `botkit_message_received`."""
        if not self._accepting or not await self.store.claim_event(turn.inbound.event_id):
            return False
        self._enqueue(turn.thread, self._threads.get(turn.thread), _Pending(turn, None))
        return True

    async def _submit(self, inbound: Inbound) -> bool:
        if not self._accepting:
            log.warning("shutting down; message %s not taken", inbound.event_id)
            return False
        if not await self.store.claim_event(inbound.event_id):
            log.info("duplicate delivery of event %s ignored", inbound.event_id)
            return False
        backend = self.route(inbound)
        if backend is None:
            log.debug("no route for %s in %s", inbound.event_id, inbound.thread)
            return False
        adapter = self.adapters[inbound.adapter]
        text = inbound.text.strip()
        turn = Turn(inbound, adapter, backend, text)
        command = inbound.command or text.lower()
        native = inbound.command is not None
        kind = _RESET if (command == "reset" if native else command in self._reset_words) else None

        queue = self._threads.get(inbound.thread)
        pending_here = len(queue) if queue is not None else 0
        if pending_here >= self.settings.max_queued_per_thread or self._queued >= self.settings.max_queued:
            log.warning("busy: %d queued in %s, %d in all", pending_here, inbound.thread, self._queued)
            await self._safe_reply(adapter, inbound, self.settings.busy_message)
            return True

        ready = asyncio.get_running_loop().create_future() if self._has_middlewares else None
        entry = _Pending(turn, ready, kind)
        is_help = command == "help" if native else command in self._help_words
        if is_help and not self._has_middlewares:
            await self._safe_reply(adapter, inbound, self.settings.help_text)
            return True
        self._enqueue(inbound.thread, queue, entry)  # before any await: arrival order is queue order
        if ready is not None:
            try:
                verdict = await self.plugins.message_received(turn)
            except Exception:
                log.exception("a botkit_message_received hook failed; the message is answered anyway")
                verdict = None
            if verdict is not None:
                log.info("turn %s handled by a middleware: %s", inbound.event_id, verdict.reason or "-")
                ready.set_result(False)
                if verdict.reply:
                    await self._safe_reply(adapter, inbound, verdict.reply)
                return True
            if is_help:
                ready.set_result(False)
                await self._safe_reply(adapter, inbound, self.settings.help_text)
                return True
            ready.set_result(True)
        return True

    def _enqueue(self, thread: ThreadKey, queue: deque[_Pending] | None, entry: _Pending) -> None:
        self._queued += 1
        self._idle.clear()
        if queue is None:
            queue = self._threads[thread] = deque()
            queue.append(entry)
            task = asyncio.create_task(self._drain(thread, queue))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
            return
        if self.settings.strategy == "latest":
            # keep only the newest waiting question; the one running (queue[0]) finishes
            while len(queue) > 1:
                dropped = queue.pop()
                self._queued -= 1
                log.info("strategy latest: %s superseded by %s", dropped.turn.inbound.event_id, entry.turn.inbound.event_id)
        queue.append(entry)

    async def _drain(self, thread: ThreadKey, queue: deque[_Pending]) -> None:
        try:
            while queue:
                entry = queue[0]
                turn_context.set((str(thread), entry.turn.inbound.event_id))
                try:
                    if entry.ready is None or await entry.ready:
                        async with self._slots, self.store.thread_lock(thread):
                            if entry.kind is _RESET:
                                await self._reset(entry.turn)
                            else:
                                await self.run_turn(entry.turn)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("turn %s failed in the dispatcher", entry.turn.inbound.event_id)
                finally:
                    queue.popleft()
                    self._queued -= 1
        finally:
            if self._threads.get(thread) is queue:
                del self._threads[thread]
            if not self._threads:
                self._idle.set()

    # -- running a turn ---------------------------------------------------------------------------

    async def _reset(self, turn: Turn) -> None:
        record = await self.store.end_session(turn.thread)
        backend = self.backends.get(turn.backend)
        if record is not None and record.session_id and backend is not None:
            try:
                await backend.end_session(record.session_id)
            except Exception:
                log.warning("backend %s could not end its session on reset", turn.backend, exc_info=True)
        await self._safe_reply(turn.adapter, turn.inbound, self.settings.reset_text)

    async def run_turn(self, turn: Turn) -> Answer:
        inbound, adapter = turn.inbound, turn.adapter
        backend = self.backends[turn.backend]
        store = self.store
        record = await store.active_session(inbound.thread, turn.backend, with_recent=backend.history_turns)
        session = Session(inbound.thread, turn.backend, record.session_id, record.turn_count,
                          list(record.recent[-backend.history_turns:]) if backend.history_turns and record.recent else [])
        question = Question(turn.query, inbound.user, inbound.user_name, inbound.is_direct, inbound)

        try:
            placeholder = await adapter.show_progress(inbound)
        except Exception:
            log.warning("%s could not show progress", adapter.name, exc_info=True)
            placeholder = None

        async def remember_messages(refs: list[MessageRef]) -> None:
            """So that a restart can find and mark this answer if it is cut off."""
            messages = [{"message_id": r.message_id, "data": r.data} for r in refs]
            await store.answer_started(inbound.event_id, inbound.thread, adapter.name, messages)

        renderer = AnswerRenderer(adapter, self.plugins, inbound, turn.backend, placeholder, remember_messages)
        if placeholder is not None:
            await remember_messages(renderer.messages)

        answer = Answer("", session_id=record.session_id)
        failed: str | None = None
        stream = None
        try:
            async with asyncio.timeout(self.settings.turn_timeout):
                if session.session_id is None:
                    session.session_id = await backend.create_session(session, question)
                stream = backend.stream(session, question)
                async for event in stream:
                    if isinstance(event, SessionInfo):
                        session.session_id = event.session_id
                    elif isinstance(event, Done):
                        if event.usage:
                            answer.flags["usage"] = event.usage
                        break
                    elif isinstance(event, Failed):
                        failed = event.message
                        break
                    else:
                        renderer.apply(event)
        except TimeoutError:
            failed = f"no complete answer within {self.settings.turn_timeout:g} s"
            answer.status = "timeout"
        except BackendError as exc:
            failed = exc.message
        except asyncio.CancelledError:
            failed = "the bot was stopped while answering"
            answer.status = "interrupted"
            await self._finish(turn, renderer, answer, record, session, failed)
            raise
        except Exception:
            log.exception("backend %s failed", turn.backend)
            failed = "the backend failed unexpectedly"
        finally:
            if stream is not None:
                await _aclose(stream)
        if failed and answer.status == "complete":
            answer.status = "failed"
        await self._finish(turn, renderer, answer, record, session, failed)
        return answer

    async def _finish(self, turn: Turn, renderer: AnswerRenderer, answer: Answer, record, session: Session,
                      failed: str | None) -> None:
        notice = self.settings.failure_notice.format(reason=failed) if failed else None
        delivered = await renderer.finish(failed=notice)
        inbound = turn.inbound
        now = time.monotonic()
        answer.text = renderer.text
        answer.sources = renderer.sources
        answer.score = renderer.score
        answer.warnings = renderer.warnings
        answer.error = failed
        answer.session_id = session.session_id
        answer.message_ids = [m.message_id for m in renderer.messages]
        answer.first_text_after = (renderer.first_text_at - inbound.received_at) if renderer.first_text_at else None
        answer.duration = now - inbound.received_at
        answer.edits = renderer.edits
        if not delivered:
            answer.flags["undelivered"] = True
        await self.plugins.notify("botkit_answer_complete", turn=turn, answer=answer)

        wall = time.time()
        record.session_id = session.session_id
        record.last_active = wall
        record.turn_count += 1
        await self.store.save_session(record)
        await self.store.record_turn(TurnRecord(
            record.id, inbound.thread, inbound.event_id, inbound.adapter, turn.backend, inbound.user,
            inbound.text, answer.text, answer.status, wall,
            [asdict(s) for s in answer.sources] if answer.sources else [], answer.score, failed,
            answer.message_ids, answer.first_text_after, answer.duration, answer.edits, answer.flags))

    async def _safe_reply(self, adapter: Adapter, inbound: Inbound, text: str) -> None:
        try:
            await adapter.reply(inbound, text)
        except Exception:
            log.warning("%s could not reply in %s", adapter.name, inbound.thread, exc_info=True)

    # -- shutdown ---------------------------------------------------------------------------------

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until no turn is queued or running."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def drain(self, grace: float) -> None:
        """Stop accepting; let turns finish for `grace` seconds, then interrupt the rest."""
        self._accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            waiting = [entry for queue in self._threads.values() for entry in list(queue)[1:]]
            log.warning("interrupting %d turns still running after %g s; %d waiting get a notice",
                        len(self._workers), grace, len(waiting))
            for task in list(self._workers):
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            # their event ids are claimed, so no redelivery would answer them: say so
            notices = [self._safe_reply(e.turn.adapter, e.turn.inbound, self.settings.shutdown_notice) for e in waiting]
            try:
                await asyncio.wait_for(asyncio.gather(*notices), 5.0)
            except TimeoutError:
                log.warning("not every waiting question could be told about the shutdown")


async def _aclose(stream) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing a backend stream failed", exc_info=True)

