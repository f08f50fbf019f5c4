"""The streaming renderer: one answer, from the first delta to the final edit.

Rules: the first text is shown as soon as it arrives; after that at most
one edit per the adapter's interval; every edit carries the latest text (states that
went stale while waiting are skipped, never queued); a 429 is waited out; text over
the platform's limit continues in new messages; the final edit always lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Protocol

from botkit.adapters import Adapter, MessageRef, Outgoing, RateLimited, Undeliverable
from botkit.deadlines import Deadlines
from botkit.events import Draft, Inbound, Note, NoteKind, Placement, Score, Sources, Status, TextDelta, Warning
from botkit.plugins import Plugins
from botkit.ready import DONE
from botkit.split import split_text

log = logging.getLogger("botkit.render")

FINAL_ATTEMPTS = 6
_NOTE_SEPARATOR = 2  # "\n\n" between the text and each note


class ScreenLog(Protocol):
    """Where the renderer writes ahead what it is about to show (the turn journal)."""

    def intend(self, messages: list[Outgoing], refs: list[MessageRef]) -> Awaitable[object]:
        """`messages` are about to be shown: message i edits `refs[i]`, or is posted anew
        when i >= len(refs). What it returns is done once that is durable."""

    def posted(self, index: int, ref: MessageRef) -> Awaitable[object]:
        """Message `index` was posted as `ref` (need not be durable when what it returns is done)."""

    def withdrawn(self) -> Awaitable[object]:
        """The intended messages were not posted after all (need not be durable)."""


class DeliveryObserver(Protocol):
    """Told of every message the renderer (or recovery) posts or edits, and of every 429 the
    platform answered (metrics subscribe). Called on the hot path: keep it cheap."""

    def delivered(self, adapter: Adapter, *, sent: bool, final: bool) -> None:
        """A message was posted (`sent`) or edited; `final`: it shows the finished answer."""

    def rate_limited(self, adapter: Adapter, retry_after: float) -> None:
        """The platform said 429; the delivery is tried again after `retry_after` seconds."""


class AnswerRenderer:
    """Folds answer events into a draft and delivers it through an adapter."""

    __slots__ = ("adapter", "plugins", "inbound", "backend", "caps", "messages", "screen",
                 "_parts", "sources", "score", "status", "warnings", "_shown", "_dirty", "_next_at", "edits",
                 "first_text_at", "_flusher", "_wake", "_delivering", "_closing", "_text_cache", "_progress",
                 "max_chars", "_size", "cut", "notes", "observers", "_progress_backoff")

    def __init__(self, adapter: Adapter, plugins: Plugins, inbound: Inbound, backend: str,
                 screen: ScreenLog | None = None, max_chars: int = 100_000,
                 observers: Sequence[DeliveryObserver] = ()) -> None:
        self.adapter = adapter
        self.plugins = plugins
        self.inbound = inbound
        self.backend = backend
        self.caps = adapter.capabilities
        self.messages: list[MessageRef] = []
        self._shown: list[Outgoing | None] = []
        self.screen = screen
        self._parts: list[str] = []
        self._text_cache = ""
        self.sources: list = []
        self.score: float | None = None
        self.status: str | None = None
        self.warnings: list[Warning] = []
        self._dirty = False
        self._next_at = 0.0
        self.edits = 0
        self.first_text_at: float | None = None
        self._flusher: asyncio.Task | asyncio.Handle | None = None
        self._wake: asyncio.Event | None = None
        self._delivering = False
        self._closing = False
        self._progress: Deadlines | asyncio.Task | None = None  # the timer, or the post on its way
        self._progress_backoff = False  # the progress post is waiting out a 429
        self.observers = observers
        self.max_chars = max_chars
        self._size = 0
        self.cut = False  # the answer reached `max_chars`: what came after was dropped
        #: the core's own notes, in every draft from now on (files a backend did not read)
        self.notes: list[Note] = []

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    # -- progress ---------------------------------------------------------------------------

    def show_progress_after(self, delay: float, timers: Deadlines) -> None:
        """Show the adapter's progress if nothing else is shown within `delay` seconds."""
        self._progress = timers
        timers.start(self, delay, AnswerRenderer.start_progress)

    def start_progress(self) -> None:
        """Show the adapter's progress now, beside the turn: the answer's first delivery
        waits for it (and edits the placeholder), not the backend's question."""
        self._progress = asyncio.create_task(self.show_progress())

    async def show_progress(self) -> None:
        """Show progress (`Adapter.show_progress`) unless an answer is already on screen.
        The placeholder it posts is written ahead like any message, and edited into the answer.
        A 429 is waited out as an edit's is, unless the answer comes first."""
        if self.messages or self._delivering or self._closing:
            return
        placeholder = Outgoing("", status=self.adapter.progress_text)
        screen = self.screen
        if screen is not None:
            await screen.intend([placeholder], [])
        try:
            ref = await self._post_progress()
        except asyncio.CancelledError:  # the answer came while a 429 was waited out
            ref = None
        if ref is not None and not self.caps.can_edit:
            log.error("%s posted progress as a message but cannot edit it into the answer: return None from"
                      " show_progress (a typing indicator) on a platform without edits", self.adapter.name)
            ref = None
        if ref is None:  # a typing indicator, a reaction, or nothing: no message to edit
            if screen is not None:
                await screen.withdrawn()
            return
        self.messages.append(ref)
        self._shown.append(placeholder)
        for observer in self.observers:
            observer.delivered(self.adapter, sent=True, final=False)
        if not self._parts and self.status is None:
            self.status = placeholder.status
        if screen is not None:
            await screen.posted(0, ref)

    async def _post_progress(self) -> MessageRef | None:
        while True:
            try:
                return await self.adapter.show_progress(self.inbound)
            except RateLimited as exc:
                self._tell_rate_limited(exc)
                self._progress_backoff = True
                try:
                    await asyncio.sleep(exc.retry_after)
                finally:
                    self._progress_backoff = False
            except Exception:
                log.warning("%s could not show progress", self.adapter.name, exc_info=True)
                return None

    def _progress_settled(self) -> Awaitable[object]:
        """Before anything is delivered (the caller checks `_progress` is set): a progress
        post not yet due is not needed any more (most answers: no coroutine for that), nor
        one waiting out a 429; one on its way is waited for (the answer edits it instead of
        posting anew)."""
        progress, self._progress = self._progress, None
        if isinstance(progress, asyncio.Task):
            if self._progress_backoff:
                progress.cancel()
            return asyncio.wait([progress])  # never cancels it, whatever happens to this caller
        progress.stop(self)
        return DONE

    def _tell_rate_limited(self, exc: RateLimited) -> None:
        for observer in self.observers:
            observer.rate_limited(self.adapter, exc.retry_after)

    # -- events in ------------------------------------------------------------------------

    def apply(self, event: object) -> None:
        """Take one answer event; schedule an edit if it changes what is shown."""
        if isinstance(event, TextDelta):
            text = event.text
            if not text or self.cut:
                return
            self._size += len(text)
            if self._size > self.max_chars:  # a runaway backend must not fill the thread
                text = text[:len(text) - (self._size - self.max_chars)]
                self.cut = True
            self._parts.append(text)
            self.status = None
            if self.first_text_at is None:
                self.first_text_at = time.monotonic()
        elif isinstance(event, Sources):
            self.sources = event.sources
            return  # shown once text refers to them
        elif isinstance(event, Status):
            self.status = event.text
        elif isinstance(event, Score):
            self.score = event.factual_consistency
            return  # shown with the final edit only
        elif isinstance(event, Warning):
            self.warnings.append(event)
            return
        else:
            return
        self._dirty = True
        if not self.caps.can_edit:
            return  # sent once, complete, by `finish`
        if self._flusher is None:
            # Start the edit loop on the next loop iteration, not now: an answer that is
            # complete before then (a fast backend) is delivered by `finish` alone.
            self._flusher = asyncio.get_running_loop().call_soon(self._start_flushing)
        elif self._wake is not None:
            self._wake.set()

    def _start_flushing(self) -> None:
        self._wake = asyncio.Event()
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        wake = self._wake
        assert wake is not None
        while not self._closing:
            if not self._dirty:
                wake.clear()
                await wake.wait()
                continue
            delay = self._next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # latest-wins: whatever arrived meanwhile goes out together
                if self._closing:
                    return
            self._dirty = False
            self._delivering = True
            try:
                await self._deliver(final=False)
            except RateLimited as exc:
                self._tell_rate_limited(exc)
                self._dirty = True
                self._next_at = time.monotonic() + exc.retry_after
            except Undeliverable as exc:
                log.warning("%s refused an edit in %s: %s", self.adapter.name, self.inbound.thread, exc)
                return  # nothing more is shown until the final edit, which says how it ends
            except Exception:
                log.warning("edit failed on %s; the next edit carries the text", self.adapter.name, exc_info=True)
                self._next_at = time.monotonic() + max(self.caps.edit_interval, 1.0)
            finally:
                self._delivering = False

    # -- delivery -----------------------------------------------------------------------------

    def draft(self, *, final: bool, failed: str | None = None) -> Draft:
        draft = Draft(self.text, self.sources, self.score, None if final else self.status, self.warnings,
                      list(self.notes), final, failed, self.backend, self.inbound.thread)
        self.plugins.render(draft, self.adapter.surface)
        return draft

    def _compose(self, text: str, notes: list[Note], status: str | None, final: bool, failed: str | None,
                 sources: list) -> list[Outgoing]:
        """A draft's parts as platform messages: split text, notes on the first/last piece."""
        above = [n for n in notes if n.placement == Placement.ABOVE] if notes else []  # (most answers have none)
        below = [n for n in notes if n.placement != Placement.ABOVE] if notes else []
        if failed:
            below.append(Note(failed, kind=NoteKind.ERROR))
        limit = self.caps.max_length
        room = limit - (sum(len(n.text) + _NOTE_SEPARATOR for n in notes) if notes else 0) - (len(failed or "") + 4)
        if len(text) <= room:
            return [Outgoing(text, above + below, status, final, sources)]
        pieces = split_text(text, max(room, limit // 2))
        if len(pieces[-1]) > room:  # the notes don't fit beside the last piece: give them their own message
            pieces.append("")
        out = [Outgoing(piece, [], None, final, sources) for piece in pieces]
        out[0].notes = above
        out[-1].notes = below
        out[-1].status = status
        return out

    async def _deliver(self, *, final: bool, failed: str | None = None) -> None:
        if self._progress is not None:
            await self._progress_settled()
        if self.plugins.renders:  # plugins shape a draft of the answer first
            draft = self.draft(final=final, failed=failed)
            messages = self._compose(draft.text, draft.notes, draft.status, final, draft.failed, draft.sources)
        else:
            messages = self._compose(self.text, self.notes, None if final else self.status, final, failed,
                                     self.sources)
        shown = self._shown
        changed = [i for i, message in enumerate(messages) if i >= len(shown) or shown[i] != message]
        if not changed:
            return
        if self.screen is not None:
            await self.screen.intend(messages, self.messages)  # write-ahead: recovery knows what may show
        thread = self.inbound.thread
        for i in changed:
            message = messages[i]
            sent = i >= len(self.messages)
            if not sent:
                await self.adapter.edit(self.messages[i], message)
                shown[i] = message
            else:
                ref = await self.adapter.send(thread, message, reply_to=self.inbound)
                self.messages.append(ref)
                shown.append(message)
                if self.screen is not None:
                    await self.screen.posted(i, ref)
            self.edits += 1
            for observer in self.observers:
                observer.delivered(self.adapter, sent=sent, final=message.final)
        self._next_at = time.monotonic() + self.caps.edit_interval

    def finish(self, failed: str | None = None, deadline: float | None = None) -> Awaitable[bool]:
        """Deliver the final state (with a failure notice if given); True if it landed.

        An edit in flight is allowed to complete (cancelling a request half-way leaves
        its outcome unknown); a wait before the next edit is cut short. A `deadline`
        (`time.monotonic()`; a stop) bounds it all, in-flight edit included: what was
        written ahead and not delivered by then is recovery's to finish.
        """
        if deadline is None:
            return self._finish(failed)
        return self._finish_by(failed, deadline)

    async def _finish_by(self, failed: str | None, deadline: float) -> bool:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                return await self._finish(failed)
        except TimeoutError:
            log.warning("final edit on %s not delivered before the stop deadline; the next start finishes it",
                        self.adapter.name)
            return False

    async def _finish(self, failed: str | None) -> bool:
        self._closing = True
        flusher = self._flusher
        if flusher is not None:
            if self._delivering and isinstance(flusher, asyncio.Task):
                await asyncio.shield(flusher)
            else:
                flusher.cancel()
        for attempt in range(FINAL_ATTEMPTS):
            delay = self._next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self._deliver(final=True, failed=failed)
                return True
            except RateLimited as exc:
                self._tell_rate_limited(exc)
                self._next_at = time.monotonic() + exc.retry_after
            except Undeliverable as exc:
                log.warning("%s refused the answer in %s for good (%s); not tried again", self.adapter.name,
                            self.inbound.thread, exc)
                return False
            except Exception:
                log.warning("final edit failed on %s (attempt %d)", self.adapter.name, attempt + 1, exc_info=True)
                self._next_at = time.monotonic() + min(2.0 ** attempt, 30.0)
        log.error("final answer could not be delivered on %s in thread %s", self.adapter.name, self.inbound.thread)
        return False

