"""One turn, from the journal entry to the record: session, progress, backend stream, renderer.

The runner owns the turn's journal entry while it runs: it marks it running before
anything is shown or asked, lets the renderer show progress and write ahead every
delivery, and closes it with the turn's record when the final edit has landed.
A turn found running that no live process runs (a crash, a dead replica) goes to
`botkit.pipeline.recovery` instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from botkit.adapters import Adapter, NewThread
from botkit.backends import Backend, BackendError, Question, Session
from botkit.config import DispatchConfig, RecoveryConfig
from botkit import files
from botkit.deadlines import Deadlines
from botkit.events import Done, Failed, Note, NoteKind, Placement, SessionInfo, ThreadKey
from botkit.pipeline.recovery import resume
from botkit.pipeline.screen import ScreenJournal
from botkit.pipeline.slots import Slots
from botkit.render import AnswerRenderer, DeliveryObserver
from botkit.store import JournalEntry, SessionRecord, StoreUnreachable, TurnStore
from botkit.turn import Answer, Turn, TurnStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from botkit.plugins import Plugins

log = logging.getLogger("botkit.dispatcher")
#: seconds between look-ups of a started turn's session while the store cannot be reached (doubling)
_LOOKUP_RETRY_FIRST, _LOOKUP_RETRY_MAX = 0.25, 5.0


class TurnRunner:
    def __init__(self, *, adapters: dict[str, Adapter], backends: dict[str, Backend], store: TurnStore,
                 plugins: Plugins, settings: DispatchConfig, recovery: RecoveryConfig,
                 observers: Sequence[DeliveryObserver] = ()) -> None:
        #: turns asking their backend at once (`dispatch.max_in_flight`); journal writes wait outside
        self.slots = Slots(settings.max_in_flight)
        self.deadlines = Deadlines(resolution=0.25)  # turn timeouts
        self.progress_timers = Deadlines(resolution=0.05)  # deferred progress placeholders
        self.adapters = adapters
        self.backends = backends
        self.store = store
        self.plugins = plugins
        self.settings = settings
        self.recovery = recovery
        self.observers = observers  # of every delivery (metrics)
        #: set by a stop: when final edits of turns cut off must have landed (`time.monotonic()`)
        self.stop_deadline: float | None = None
        self._asking: dict[str, asyncio.Task] = {}  # thread key -> the task streaming its answer now
        #: why a turn's task was cancelled by the runner ("timeout", "cancelled"); absent: a stop
        self._cut_short: dict[asyncio.Task, str] = {}

    def cancel(self, thread: ThreadKey) -> bool:
        """Stop the answer `thread` is getting now (its asker gave up, e.g. Ctrl-C in the console).

        What was shown stays, with the failure notice; the turn is recorded as interrupted and
        the thread's next turns run as usual. False if no answer is streaming there.
        """
        task = self._asking.pop(thread.key, None)
        if task is None:
            return False
        self._cut(task, "cancelled")
        return True

    def _cut(self, task: asyncio.Task, why: str) -> None:
        self._cut_short[task] = why
        task.cancel()

    def _timed_out(self, task: asyncio.Task) -> None:
        self._cut(task, "timeout")

    async def run(self, entry: JournalEntry) -> Answer | None:
        """Run `entry` if this process gets it; the answer, or None when there was none to give."""
        store = self.store
        adapter = self.adapters.get(entry.inbound.adapter)
        if adapter is None or entry.backend not in self.backends:
            log.error("turn %s names adapter %r and backend %r, which are not configured; dropped",
                      entry.event_id, entry.inbound.adapter, entry.backend)
            await store.close_turn(entry)
            return None
        if entry.kind == "start":
            adapter = NewThread(adapter)
        turn = Turn(entry.inbound, adapter, entry.backend, entry.query, entry.extra)
        if entry.state == "running":  # cut off by a crash, a stop or a dead replica
            if not await store.start_turn(entry):
                return None
            return await resume(entry, turn, store, self.plugins, self.observers)
        if entry.kind == "reset" or time.time() - entry.admitted_at > self.recovery.max_age:
            if not await store.start_turn(entry):
                return None
            if entry.kind == "reset":
                await self._reset(turn)
            else:
                log.warning("turn %s waited longer than recovery.max_age: the asker is told", entry.event_id)
                await adapter.tell(turn.inbound, self.settings.shutdown_notice)
            await store.close_turn(entry)
            return None
        # durable before the backend is asked: a crash from here on is recovered without asking twice
        if not await store.start_turn(entry):
            return None
        async with self.slots:
            answer, renderer, record, session, failed = await self._ask(turn, entry)
        if failed and answer.status == TurnStatus.COMPLETE:
            answer.status = TurnStatus.FAILED
        await self._finish(turn, entry, renderer, answer, record, session, failed)
        return answer

    async def _reset(self, turn: Turn) -> None:
        record = await self.store.end_session(turn.thread)
        backend = self.backends.get(turn.backend)
        if record is not None and record.session_id and backend is not None:
            try:
                await backend.end_session(record.session_id)
            except Exception:
                log.warning("backend %s could not end its session on reset", turn.backend, exc_info=True)
        await turn.adapter.tell(turn.inbound, self.settings.reset_text)

    async def _ask(self, turn: Turn, entry: JournalEntry
                   ) -> tuple[Answer, AnswerRenderer, SessionRecord, Session, str | None]:
        """Progress, then the backend's stream through the renderer, within a slot."""
        inbound, adapter = turn.inbound, turn.adapter
        backend = self.backends[turn.backend]
        record = await self._session(inbound.thread, turn.backend, backend.history_turns)  # (before anything shows)
        renderer = AnswerRenderer(adapter, self.plugins, inbound, turn.backend, ScreenJournal(self.store, entry),
                                  self.settings.max_answer_chars, self.observers)
        if self.settings.progress_delay:
            renderer.show_progress_after(self.settings.progress_delay, self.progress_timers)
        else:
            renderer.start_progress()
            await asyncio.sleep(0)  # it starts first: the placeholder is on its way before the question
        if type(adapter).prepare is not Adapter.prepare:  # most adapters have nothing to look up
            as_asked = inbound.text.strip()
            try:
                await adapter.prepare(inbound)
            except Exception:
                log.warning("%s could not prepare %s; answering it as it is", adapter.name, inbound.event_id,
                            exc_info=True)
            if turn.query == as_asked:  # no middleware rewrote it: ask what the adapter prepared
                turn.query = inbound.text.strip()
        session = Session(inbound.thread, turn.backend, record.session_id, record.turn_count,
                          list(record.recent[-backend.history_turns:]) if backend.history_turns and record.recent else [])
        question = self._question(turn)

        answer = Answer("", session_id=record.session_id)
        failed: str | None = None
        stream = None
        task = asyncio.current_task()
        assert task is not None
        self.deadlines.start(task, self.settings.turn_timeout, self._timed_out)
        self._asking[inbound.thread.key] = task
        try:
            try:
                # (most backends make their sessions implicitly, or keep none: nothing to await)
                if session.session_id is None and type(backend).create_session is not Backend.create_session:
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
                        if renderer.cut:
                            failed = f"the answer was longer than {renderer.max_chars:,} characters and was cut there"
                            break
            finally:
                self.deadlines.stop(task)
                self._asking.pop(inbound.thread.key, None)
        except asyncio.CancelledError:
            why = self._cut_short.pop(task, None)
            if why is None:  # the bot is stopping
                failed = "the bot was stopped while answering"
                answer.status = TurnStatus.INTERRUPTED
                await self._finish(turn, entry, renderer, answer, record, session, failed, self.stop_deadline)
                raise
            task.uncancel()
            if why == "cancelled":
                failed, answer.status = "cancelled", TurnStatus.INTERRUPTED
            else:
                failed, answer.status = f"no complete answer within {self.settings.turn_timeout:g} s", TurnStatus.TIMEOUT
        except BackendError as exc:
            failed = exc.message
        except Exception:
            log.exception("backend %s failed", turn.backend)
            failed = "the backend failed unexpectedly"
        finally:
            if stream is not None:
                await _aclose(stream)
        if question.attachments:
            self._note_unread(renderer, question, failed)
        return answer, renderer, record, session, failed

    async def _session(self, thread: ThreadKey, backend: str, history: int) -> SessionRecord:
        """The thread's session, once the store can be reached. The turn is started (durable)
        and its backend not asked yet: it waits here, since the journal's recovery would tell
        the asker the answer was interrupted."""
        pause = _LOOKUP_RETRY_FIRST
        while True:
            try:
                return await self.store.active_session(thread, backend, with_recent=history)
            except StoreUnreachable as exc:
                log.warning("the session of %s cannot be looked up (%s); trying again in %g s", thread, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LOOKUP_RETRY_MAX)

    def _question(self, turn: Turn) -> Question:
        inbound = turn.inbound
        question = Question(turn.query, inbound.user, inbound.user_name, inbound.is_direct, inbound)
        if inbound.attachments:
            settings = self.settings
            question.attachments = inbound.attachments
            question.fetch = files.fetcher(turn.adapter, int(settings.max_file_size), settings.file_timeout)
            if not question.text:
                question.text = files.placeholder_question(inbound.attachments)
        return question

    @staticmethod
    def _note_unread(renderer: AnswerRenderer, question: Question, failed: str | None) -> None:
        """Above the answer: the files the backend did not read, and why. When the answer failed,
        only those it gave a reason for (it may have failed before it got to them)."""
        unread = [(a, why) for a, why in question.unread() if not failed or a in question.outcomes]
        if unread:
            renderer.notes.append(Note(files.unread_note(unread), kind=NoteKind.ATTACHMENTS, placement=Placement.ABOVE))

    async def _finish(self, turn: Turn, entry: JournalEntry, renderer: AnswerRenderer, answer: Answer,
                      record: SessionRecord, session: Session, failed: str | None,
                      deadline: float | None = None) -> None:
        notice = self.settings.failure_notice.format(reason=failed) if failed else None
        delivered = await renderer.finish(failed=notice, deadline=deadline)
        if not delivered and deadline is not None:
            return  # stopping: the journal keeps the turn, and the next start finishes or marks it
        received_at = turn.inbound.received_at
        answer.text = renderer.text
        answer.sources = renderer.sources
        answer.score = renderer.score
        answer.warnings = renderer.warnings
        answer.error = failed
        answer.session_id = session.session_id
        answer.message_ids = [m.message_id for m in renderer.messages]
        answer.first_text_after = (renderer.first_text_at - received_at) if renderer.first_text_at else None
        answer.duration = time.monotonic() - received_at
        answer.edits = renderer.edits
        if not delivered:
            answer.flags["undelivered"] = True
        await self.plugins.answer_complete(turn, answer)
        record.session_id = session.session_id
        record.last_active = time.time()
        record.turn_count += 1
        await self.store.close_turn(entry, record, answer)


async def _aclose(stream) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing a backend stream failed", exc_info=True)
