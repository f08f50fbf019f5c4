"""What a backend is: the base class every RAG backend plugin subclasses.

A backend maps a thread to one chat session of its own and streams answers as the
events of `botkit.events`. The core owns the mapping (the store keeps the backend's
session id per thread); the backend owns its wire format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from botkit.events import AnswerEvent, Attachment, Inbound, ThreadKey
from botkit.files import NOT_ASKED, Fetch, FileNotRead

if TYPE_CHECKING:
    from botkit.bot import Bot


@dataclass(slots=True)
class Session:
    """A thread's chat session as the backend sees it.

    `session_id` is None until the backend has created one (by `create_session`, or by
    yielding `SessionInfo` from its first `stream`). `history` holds earlier
    (question, answer) pairs of this session, oldest first, when the backend asked for
    them with `history_turns`.
    """

    thread: ThreadKey
    backend: str
    session_id: str | None = None
    turn_count: int = 0
    history: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Question:
    """What the backend is asked: the text after middlewares rewrote it, and who asks.

    `attachments` are the files and images on the question (name, MIME type, size). A
    backend that can use one reads it with `await read(attachment)`, and may say why it
    passed one over with `skip`; the core then shows, above the answer, a short note for
    every attachment that was not read (a backend that never looks at them needs no code
    for that). When the message was only files, `text` names them.
    """

    text: str
    user: str
    user_name: str | None = None
    is_direct: bool = False
    inbound: Inbound | None = field(default=None, repr=False)
    attachments: tuple[Attachment, ...] = ()
    #: set by the core: downloads through the adapter, within `dispatch.max_file_size`
    fetch: Fetch | None = field(default=None, repr=False)
    #: attachment -> None once read, or why it was not read
    outcomes: dict[Attachment, str | None] = field(default_factory=dict, repr=False)

    async def read(self, attachment: Attachment) -> bytes:
        """The content of one of `attachments`, downloaded now (authenticated as the platform
        needs). Raises `FileNotRead` (its `reason` fit to show) when it is over the size
        limit, cannot be fetched, or there is no way to fetch it here; the note under the
        answer then says so, whether or not the backend catches it."""
        try:
            if self.fetch is None:
                raise FileNotRead("files cannot be downloaded here")
            content = await self.fetch(attachment)
        except FileNotRead as exc:
            self.outcomes[attachment] = exc.reason
            raise
        self.outcomes[attachment] = None
        return content

    def skip(self, attachment: Attachment, reason: str) -> None:
        """Say why this backend leaves `attachment` unread ("PDF files are not read"), for the note."""
        self.outcomes[attachment] = reason

    def unread(self) -> list[tuple[Attachment, str]]:
        """The attachments not read, each with why (in the order they came)."""
        unread = []
        for attachment in self.attachments:
            reason = self.outcomes.get(attachment, NOT_ASKED)
            if reason is not None:
                unread.append((attachment, reason))
        return unread


class BackendError(Exception):
    """A backend call failed; `message` is safe to show to users (no secrets)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class Backend(ABC):
    """Base class of RAG chat backends.

    Constructed by the core with the instance name (the key under `backends:`), the
    validated config section and the bot. `stream` is the only required method.
    """

    #: How many earlier exchanges of the session `stream` wants in `Session.history`
    #: (0: none, the backend keeps its own history server-side). A class default that
    #: an instance may override from its config.
    history_turns: int = 0

    def __init__(self, name: str, config: BaseModel, bot: Bot) -> None:
        self.name = name
        self.config = config
        self.bot = bot

    async def start(self) -> None:
        """Open clients, check credentials if cheap; called once before the first turn."""

    async def close(self) -> None:
        """Close clients."""

    async def create_session(self, session: Session, question: Question) -> str | None:
        """Create the backend session for a new thread and return its id.

        Return None when the backend creates sessions implicitly on the first turn
        (and reports the id with `SessionInfo`).
        """
        return None

    async def end_session(self, session_id: str) -> None:
        """The thread was reset or went idle: this session will not be used again.

        The default keeps it upstream (its history stays there for review); backends
        with a `delete_on_reset`-style option delete it here.
        """

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session upstream now (`botkit sessions delete`); False if the backend cannot."""
        return False

    @abstractmethod
    def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        """Ask `question` in `session` and yield answer events, ending with Done or Failed.

        Files on the question (`question.attachments`) are read with `question.read` when the
        backend can use them; the core tells the user about those it did not read.

        Yield `SessionInfo` when the backend created a session (or replaced one that
        vanished upstream): the core stores the new id for the thread. `Done.usage` is
        recorded with the turn (token counts, a rephrased query, the upstream turn id).
        Raising `BackendError` is equivalent to yielding `Failed`. Cancellation (the
        per-turn timeout, shutdown) must close the upstream request.
        """

    async def verify(self) -> str | None:
        """Show that the configured credentials work (`botkit check --online`), on a started
        backend; raise (BackendError) when they do not. The default lists one upstream session
        where the backend keeps history, which needs working credentials; None: not checked."""
        if type(self).list_sessions is Backend.list_sessions:
            return None
        await self.list_sessions(1)
        return "signed in (listed its sessions)"

    async def list_sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Upstream sessions, newest first, if the backend keeps history."""
        raise BackendError(f"backend {self.name!r} does not list sessions")

    async def list_turns(self, session_id: str) -> list[dict[str, Any]]:
        """Upstream turns of one session, oldest first, if the backend keeps history."""
        raise BackendError(f"backend {self.name!r} does not list turns")
