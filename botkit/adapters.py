"""What an adapter is: the base class every platform plugin subclasses.

An adapter turns native events into `Inbound` and hands them to `bot.submit`, and it
delivers what the renderer gives it (`Outgoing`) with `send` and `edit`. Everything
about timing (throttling, latest-wins, splitting, the final edit) lives in the
renderer, driven by the adapter's `Capabilities`, so adapters stay small.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from botkit.events import Attachment, Inbound, Note, Source, ThreadKey
from botkit.files import FileNotRead
from botkit.markup import Formatter, Markup, formatter_for

if TYPE_CHECKING:
    from botkit.bot import Bot


log = logging.getLogger("botkit.adapters")

#: Thread ids the core makes up for threads the bot starts itself (scheduled questions).
NEW_THREAD_PREFIX = "botkit-"


def starts_new_thread(thread: ThreadKey) -> bool:
    """True when `thread` is one the bot is starting: its id was made up by the core."""
    return thread.thread.startswith(NEW_THREAD_PREFIX)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the renderer must respect on this platform.

    `markup` is the flavour `botkit_render` hooks write for (`botkit.markup.Markup`);
    a platform with a markup of its own gives its `formatter`. With `can_edit` False the
    answer is sent once it is complete (split over several messages if long), with no
    placeholder and no edits; `show_progress` may still show a typing indicator (and
    must return None). `native_streaming` says the adapter streams through the
    platform's own API (informational: `botkit check` lists it).
    """

    max_length: int = 4000
    edit_interval: float = 1.0
    markup: Markup = Markup.MARKDOWN
    can_edit: bool = True
    native_streaming: bool = False
    formatter: Formatter | None = None


@dataclass(frozen=True, slots=True)
class Surface:
    """Where a draft will be shown: handed to `botkit_render` with every draft. Hooks mark
    text up through `formatter` (links, escaping, list lines, headings)."""

    platform: str
    adapter: str
    markup: str
    max_length: int
    formatter: Formatter = None  # type: ignore[assignment]  # None: the markup's own

    def __post_init__(self) -> None:
        if self.formatter is None:
            object.__setattr__(self, "formatter", formatter_for(self.markup))


@dataclass(slots=True)
class MessageRef:
    """A message the bot posted, as the adapter needs it to edit it later.

    `message_id` is what the store records; `data` is the adapter's own (e.g. a Slack
    channel and ts, a Teams service URL); it must be JSON-serialisable so a restart can
    still edit the message.
    """

    thread: ThreadKey
    message_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outgoing:
    """One platform message as it should now read: answer text plus notes around it.

    `sources` are the answer's sources (`Draft.sources`), for a platform that shows the
    cited ones natively (Teams' citation entities); others ignore them.
    """

    text: str
    notes: list[Note] = field(default_factory=list)
    status: str | None = None
    final: bool = False
    sources: list[Source] = field(default_factory=list)

    def plain(self) -> str:
        """The whole message as one string, for adapters with no richer layout."""
        above = [n.text for n in self.notes if n.placement == "above"]
        below = [n.text for n in self.notes if n.placement != "above"]
        body = self.text or (self.status or "")
        return "\n\n".join(part for part in (*above, body, *below) if part)


class Unavailable(Exception):
    """Raised by `bot.submit` when the delivery was not taken: the bot is stopping, or its
    store cannot write (a full disk...), so nothing could be journaled.

    Fail the delivery instead of acknowledging it (an HTTP 503, no Socket Mode ack), so
    the platform sends it again: to this bot once it can take it, or to another replica.
    A platform that never delivers again (a Discord gateway message) tells the person
    `notice`, when there is one.
    """

    def __init__(self, reason: str, notice: str | None = None) -> None:
        super().__init__(reason)
        self.notice = notice


class Stopping(Unavailable):
    """`Unavailable` because the bot is stopping."""


class Undeliverable(Exception):
    """Raised by `send`/`edit` when the platform refused the message for good: the
    conversation or message is gone, the bot was removed, the message is invalid (a 4xx
    other than 408 and 429). Trying again cannot help: the renderer says so in one log
    line and records the turn as undelivered, instead of retrying its final edit."""


class RateLimited(Exception):
    """Raised by `send`/`edit` when the platform said 429; the renderer waits and retries."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Adapter(ABC):
    """Base class of platform adapters.

    Subclasses set `platform` and `capabilities`, and implement `send` and `edit` (and
    `start`/`stop` when they connect to something). They are constructed by the core with their instance name
    (the key under `adapters:`), their validated config section and the bot.
    """

    platform: ClassVar[str] = ""
    capabilities: Capabilities = Capabilities()
    #: Progress text shown until the first answer text arrives, as written; None: "thinking…"
    #: set apart in the platform's markup (`progress_text`)
    placeholder: str | None = None
    _surface: tuple[Capabilities, Surface] | None = None

    def __init__(self, name: str, config: BaseModel, bot: Bot) -> None:
        self.name = name
        self.config = config
        self.bot = bot

    @property
    def surface(self) -> Surface:
        """What drafts are shaped for, made once per `capabilities` (every answer asks)."""
        caps = self.capabilities
        made = self._surface
        if made is None or made[0] is not caps:
            made = self._surface = (caps, Surface(self.platform, self.name, caps.markup, caps.max_length,
                                                  caps.formatter))
        return made[1]

    @property
    def progress_text(self) -> str:
        """What the progress placeholder reads: `placeholder`, or the default in this markup."""
        if self.placeholder is not None:
            return self.placeholder
        return self.surface.formatter.emphasis("thinking…")

    @property
    def ready(self) -> bool:
        """True while connected and able to deliver; `/readyz` reports it."""
        return True

    async def start(self) -> None:
        """Connect and begin delivering `Inbound`s to `self.bot.submit`."""

    async def verify(self) -> str | None:
        """Sign in to the platform with the configured credentials and say as whom
        (`botkit check --online`); raise with a readable message when they do not work.
        Called on an adapter that is built but not started. None: nothing to sign in to."""
        return None

    async def stop(self) -> None:
        """Stop receiving; close connections. Answers in flight are finished by the core."""

    @abstractmethod
    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        """Post a new message in `thread` and return how to edit it.

        `reply_to` is the user's message being answered, or None when the bot posts on
        its own (a notice, a scheduled answer). When `starts_new_thread(thread)` holds,
        the bot is starting a thread itself (a scheduled question, `botkit.scheduler`):
        `thread.thread` is a made-up id the platform has never seen, and the adapter
        starts a new thread at the top of `thread.channel` (Slack: a top-level message;
        Discord: a message or thread in the channel; Teams: a new conversation post).
        Later sends for the same key (an answer split over several messages) go into the
        thread that first message started, so the adapter remembers the platform's id
        for it (the returned `MessageRef.data` is a good place). Otherwise a send with
        no `reply_to` simply posts in `thread`.
        """

    @abstractmethod
    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        """Make the message `ref` read `message` (full text, not a delta)."""

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        """Show within a second that the bot is working; return a placeholder to edit, or None.

        The default posts `progress_text` as a message that the answer then replaces (on a
        platform that cannot edit, nothing: the placeholder could never be replaced).
        Adapters with a typing indicator may show that instead and return None.
        """
        if not self.capabilities.can_edit:
            return None
        return await self.send(inbound.thread, Outgoing("", status=self.progress_text), reply_to=inbound)

    # -- the turn journal (the intake order rule: see the docstring of botkit/hookspecs.py) ----

    def journal_raw(self, inbound: Inbound) -> Any:
        """What of `inbound.raw` the journal keeps, so a turn recovered after a crash can
        still be answered: JSON types only. The default keeps a dict raw (Slack events,
        Teams activities) and drops anything else (a library object). A recovered
        `Inbound` carries this value as its `raw`."""
        return inbound.raw if isinstance(inbound.raw, dict) else None

    async def prepare(self, inbound: Inbound) -> None:
        """Enrich an accepted message inside its turn, before the backend is asked.

        Lookups that need the network (user and mention names, thread context) belong
        here, never before `bot.submit`: the message's place in its thread is fixed when
        it is submitted, and an await before that lets a slower lookup reorder questions.
        May change `inbound.text` and `inbound.user_name`. Failures are logged and the
        turn goes on with what it has.
        """

    async def download(self, attachment: Attachment, limit: int) -> bytes:
        """The content of `attachment` (one this adapter put on an `Inbound`), read from the
        platform with the credentials it needs, at most `limit` bytes.

        Called only when a backend asks (`Question.read`), inside the turn; the core bounds
        it in time and refuses files the platform said are over the limit before calling.
        Raise `botkit.files.FileNotRead` with a reason to show (a file over `limit` as it
        arrives, one the platform no longer has); other errors are reported as "it could
        not be downloaded". `botkit.files.download` does the HTTP part. Never log the
        content, the URL (some carry a signature) or a token. The default cannot download.
        """
        raise FileNotRead(f"files on {self.platform or 'this platform'} cannot be downloaded")

    async def find_orphan(self, inbound: Inbound, placeholder: Outgoing) -> MessageRef | None:
        """After a crash between posting a message for `inbound` and recording its id:
        the message the bot posted in `inbound.thread` in answer to it (reading `placeholder`
        would show there), or None when there is none or the platform cannot tell.

        Recovery calls it only for answers whose post was intended but never recorded, so
        that nothing the bot put on screen is left reading "thinking…". The default cannot
        look and returns None (the answer is then posted anew).
        """
        return None

    async def reply(self, inbound: Inbound, text: str) -> MessageRef:
        """A short complete answer (help text, busy notice, a refusal)."""
        return await self.send(inbound.thread, Outgoing(text, final=True), reply_to=inbound)

    async def tell(self, inbound: Inbound, text: str) -> None:
        """`reply`, for the core's notices: a failure is logged, not raised (the turn goes on)."""
        try:
            await self.reply(inbound, text)
        except Exception:
            log.warning("%s could not reply in %s", self.name, inbound.thread, exc_info=True)


class NewThread(Adapter):
    """The adapter as the renderer of a thread the bot starts sees it (a scheduled answer).

    Nobody asked in the channel, so every message goes out with `reply_to=None`: the
    adapter starts a new thread at the top of the channel (see `Adapter.send`).
    """

    def __init__(self, inner: Adapter) -> None:
        super().__init__(inner.name, inner.config, inner.bot)
        self.inner = inner
        self.platform = inner.platform  # type: ignore[misc]  # the instance's, not the class default
        self.capabilities = inner.capabilities
        self.placeholder = inner.placeholder

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        return await self.inner.send(thread, message, None)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        await self.inner.edit(ref, message)
