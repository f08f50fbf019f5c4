"""A turn as middlewares see it: the question on its way in, the answer on its way out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botkit.events import Inbound, Source, ThreadKey, Warning

if TYPE_CHECKING:
    from botkit.adapters import Adapter


class TurnStatus(StrEnum):
    """How a turn ended, as the store records it (history, metrics, the dashboard)."""

    COMPLETE = "complete"  #: the whole answer was shown
    FAILED = "failed"  #: the backend failed or cut it off: a notice says so
    TIMEOUT = "timeout"  #: no complete answer within `dispatch.turn_timeout`
    INTERRUPTED = "interrupted"  #: stopped by the asker, a shutdown or a crash, with a notice


@dataclass(slots=True)
class Turn:
    """One question in one thread, routed to `backend`.

    `botkit_message_received` hooks may rewrite `query` (what the backend is asked;
    `inbound.text` stays what the user wrote) and put data in `extra` for later hooks.
    """

    inbound: Inbound
    adapter: Adapter
    backend: str
    query: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def thread(self) -> ThreadKey:
        return self.inbound.thread


@dataclass(slots=True)
class Handled:
    """Returned by `botkit_message_received` to stop the turn: the backend is not asked.

    `reply` is posted in the thread (None: silence); `reason` goes to the log.
    """

    reply: str | None = None
    reason: str = ""


@dataclass(slots=True)
class Answer:
    """What a finished turn produced, as recorded in the store.

    `status` is a `TurnStatus`. `message_ids` are the platform messages the answer
    occupies, in order. Timings are seconds since the inbound was accepted (None when
    that point was never reached).
    """

    text: str
    sources: list[Source] = field(default_factory=list)
    score: float | None = None
    warnings: list[Warning] = field(default_factory=list)
    status: TurnStatus = TurnStatus.COMPLETE
    error: str | None = None
    session_id: str | None = None
    message_ids: list[str] = field(default_factory=list)
    first_text_after: float | None = None
    duration: float = 0.0
    edits: int = 0
    flags: dict[str, Any] = field(default_factory=dict)
