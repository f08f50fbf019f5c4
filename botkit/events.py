"""The platform-neutral vocabulary: what arrives, what a backend streams, what is shown.

Adapters turn native events into `Inbound`; backends yield the answer events below;
the renderer folds those into a `Draft` that `botkit_render` hooks shape and the
adapter delivers. These are plain slotted dataclasses: they are created on the hot
path, so they carry no validation (the adapter or backend producing them owns that).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Union


@dataclass(frozen=True, slots=True, eq=False)
class ThreadKey:
    """One conversation thread on one platform: the unit a backend session belongs to.

    Slack: (slack, team, channel, thread_ts or ts); Discord: (discord, guild or @me,
    parent channel, thread id); Teams: (teams, tenant, conversation, root activity id).
    """

    platform: str
    workspace: str
    channel: str
    thread: str
    #: `str(key)`, computed once: the store looks threads up by it several times a turn
    key: str = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}")

    # Thread keys are dict keys all along the hot path: hash and compare the one string
    # (whose hash Python caches) instead of a tuple of four fields each time.
    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is ThreadKey:
            return self.key == other.key  # type: ignore[attr-defined]
        return NotImplemented

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str) -> ThreadKey:
        """Inverse of `str()`. The channel may contain colons (Teams conversation ids);
        platform, workspace and thread never do."""
        head = text.split(":", 2)
        if len(head) != 3 or ":" not in head[2]:
            raise ValueError(f"not a thread key (platform:workspace:channel:thread): {text!r}")
        channel, thread = head[2].rsplit(":", 1)
        return cls(head[0], head[1], channel, thread)


@dataclass(frozen=True, slots=True, eq=False)
class Attachment:
    """A file or image on a question, as the platform described it.

    `name`, `content_type` (a MIME type; "application/octet-stream" when the platform did
    not say) and `size` (bytes; None when the platform did not say) are what a backend is
    told. `url` and `data` are the adapter's own: where and how it downloads the content
    (`Adapter.download`), which happens only when a backend asks (`Question.read`). JSON
    types only, since the turn journal keeps them; never shown or logged (a URL may carry
    a signature).
    """

    name: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    url: str | None = field(default=None, repr=False)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    def as_json(self) -> list[Any]:
        return [self.name, self.content_type, self.size, self.url, self.data]

    @classmethod
    def from_json(cls, value: list[Any]) -> Attachment:
        name, content_type, size, url, data = value
        return cls(name, content_type, size, url, data or {})


@dataclass(slots=True)
class Inbound:
    """A message that asks the bot something, normalized by an adapter.

    `event_id` is the platform's delivery id (Slack event_id, Discord message or
    interaction id, Teams activity id): a redelivery carries the same one and is
    answered once. `adapter` is the configured adapter name, set by the adapter.
    `command` is set by adapters with native commands (a `/reset` slash command):
    "reset" or "help" are handled by the core whatever the configured command words.
    `attachments` are the files and images on the message (never dropped: a backend
    that cannot read them makes the core say so under the answer); the text may be
    empty when the message is only a file.
    """

    event_id: str
    thread: ThreadKey
    user: str
    text: str
    adapter: str = ""
    user_name: str | None = None
    mentions: tuple[str, ...] = ()
    is_direct: bool = False
    command: str | None = None
    raw: Any = field(default=None, repr=False)
    received_at: float = field(default_factory=time.monotonic)
    attachments: tuple[Attachment, ...] = ()


# -- answer events: one vocabulary for every backend ------------------------------------


@dataclass(slots=True)
class SessionInfo:
    """The backend's id for this thread's chat session (and for this turn, if it has one)."""

    session_id: str
    turn_id: str | None = None


@dataclass(slots=True)
class Source:
    """One retrieved passage; `index` is the number `[N]` markers in the text refer to (1-based)."""

    index: int
    title: str
    url: str | None = None
    snippet: str | None = None
    doc_id: str | None = None
    score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Sources:
    sources: list[Source]


@dataclass(slots=True)
class TextDelta:
    """More answer text, appended to what came before (never cumulative)."""

    text: str


@dataclass(slots=True)
class Status:
    """Progress that is not answer text (thinking, searching, tool call): shown, then replaced."""

    text: str


@dataclass(slots=True)
class Score:
    """The backend's factual-consistency score for the answer, 0..1."""

    factual_consistency: float


@dataclass(slots=True)
class Warning:  # noqa: A001 - the design's name for it
    """Something the reader should know about the answer (e.g. the query was rephrased)."""

    code: str
    message: str


@dataclass(slots=True)
class Done:
    """The answer is complete."""

    usage: dict[str, Any] | None = None


@dataclass(slots=True)
class Failed:
    """The backend gave up; `message` is safe to show (no secrets, no stack trace)."""

    message: str
    retryable: bool = False


AnswerEvent = Union[SessionInfo, Sources, TextDelta, Status, Score, Warning, Done, Failed]


# -- what the renderer shows --------------------------------------------------------------


class NoteKind(StrEnum):
    """What a note is, so that an adapter can show it natively (a Slack context block,
    Discord subtext, a Teams card element) or in its own way (buttons for FEEDBACK)."""

    CONTEXT = "context"  #: anything else beside the answer: shown subtly
    SOURCES = "sources"  #: the cited sources (the citations middleware)
    WARNING = "warning"  #: something the reader should weigh (a low factual-consistency score)
    SCORE = "score"  #: a score shown as it is
    FEEDBACK = "feedback"  #: a request for a vote: adapters with buttons or reactions show those instead
    ERROR = "error"  #: why the answer failed or stopped
    ATTACHMENTS = "attachments"  #: files on the question the backend did not read


class Placement(StrEnum):
    ABOVE = "above"
    BELOW = "below"


@dataclass(slots=True)
class Note:
    """A part of a message beside the answer text: a sources list, a warning, a score."""

    text: str
    kind: NoteKind = NoteKind.CONTEXT
    placement: Placement = Placement.BELOW


@dataclass(slots=True)
class Draft:
    """The answer as it stands, handed to `botkit_render` hooks before every edit.

    Hooks change it in place: rewrite `text`, append `notes`. `final` is True for the
    last edit only; `failed` holds a readable notice when the backend failed.
    """

    text: str = ""
    sources: list[Source] = field(default_factory=list)
    score: float | None = None
    status: str | None = None
    warnings: list[Warning] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    final: bool = False
    failed: str | None = None
    backend: str = ""
    thread: ThreadKey | None = None
