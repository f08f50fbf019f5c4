"""The store interface the dispatcher depends on, and the records it keeps."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

from botkit.events import ThreadKey


@dataclass(slots=True)
class SessionRecord:
    """A thread's current backend session. `id` is the store's; `session_id` the backend's."""

    id: int
    thread: ThreadKey
    backend: str
    session_id: str | None
    created_at: float
    last_active: float
    turn_count: int = 0
    recent: list[tuple[str, str]] | None = None  # (question, answer) pairs, loaded on demand


@dataclass(slots=True)
class TurnRecord:
    session: int
    thread: ThreadKey
    event_id: str
    adapter: str
    backend: str
    user: str
    question: str
    answer: str
    status: str
    created_at: float
    sources: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None
    error: str | None = None
    message_ids: list[str] = field(default_factory=list)
    first_text_after: float | None = None
    duration: float = 0.0
    edits: int = 0
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InflightAnswer:
    """An answer that was being streamed when the process stopped."""

    event_id: str
    thread: ThreadKey
    adapter: str
    messages: list[dict[str, Any]]  # MessageRef fields: message_id, data
    started_at: float


_NO_LOCK = contextlib.nullcontext()


class Store(ABC):
    """What the dispatcher needs from persistence.

    Implementations may buffer writes (group commit) as long as `flush` makes them
    durable and `claim_event` is atomic for every process sharing the store.
    """

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Flush and close."""

    @abstractmethod
    async def flush(self) -> None:
        """Make every write so far durable."""

    @abstractmethod
    async def ping(self) -> bool:
        """True if the store answers (for /readyz)."""

    def thread_lock(self, thread: ThreadKey) -> AbstractAsyncContextManager[object]:
        """Held while a turn of `thread` runs.

        Within one process the dispatcher already runs a thread's turns one at a time;
        a store shared by several replicas makes that hold across them (PostgreSQL: an
        advisory lock). The default, for single-process stores, holds nothing.
        """
        return _NO_LOCK

    @abstractmethod
    async def claim_event(self, event_id: str) -> bool:
        """Record a platform event id; False if it was seen within the TTL (a redelivery)."""

    @abstractmethod
    async def active_session(self, thread: ThreadKey, backend: str, *, with_recent: int = 0) -> SessionRecord:
        """The thread's current session for `backend`, created (without a backend id) if none.

        A thread whose current session belongs to another backend (the routes changed)
        gets a new one. `with_recent` > 0 loads that many earlier exchanges into `recent`.
        """

    @abstractmethod
    async def save_session(self, record: SessionRecord) -> None:
        """Persist `session_id`, `last_active` and `turn_count` of `record`."""

    @abstractmethod
    async def end_session(self, thread: ThreadKey) -> SessionRecord | None:
        """End the thread's current session (reset, idle); the next turn starts a new one."""

    @abstractmethod
    async def answer_started(self, event_id: str, thread: ThreadKey, adapter: str,
                             messages: list[dict[str, Any]]) -> None:
        """Remember the messages of an answer in progress (called again as it grows)."""

    @abstractmethod
    async def record_turn(self, turn: TurnRecord) -> None:
        """Record a finished turn; the answer is no longer in progress."""

    @abstractmethod
    async def interrupted_answers(self) -> list[InflightAnswer]:
        """Answers left in progress by a previous process."""

    @abstractmethod
    async def forget_inflight(self, event_id: str) -> None:
        """Drop an in-progress entry (after it was marked interrupted)."""

    @abstractmethod
    async def turn_for_message(self, thread: ThreadKey, message_id: str) -> TurnRecord | None:
        """The turn whose answer occupies `message_id` in `thread` (feedback on a message)."""

    @abstractmethod
    async def record_feedback(self, event_id: str, user: str, value: str | None, comment: str | None,
                              at: float) -> None:
        """One user's feedback on a turn; None keeps what was stored (a later comment on a vote)."""

    @abstractmethod
    async def list_feedback(self, since: float | None = None) -> list[dict[str, Any]]:
        """Feedback with its turn: at, event_id, thread, adapter, backend, user, value, comment,
        question, answer, score; oldest first."""

    @abstractmethod
    async def turns_of(self, session: int) -> list[dict[str, Any]]:
        """Every turn of a session (store id), oldest first, as column dicts."""

    @abstractmethod
    async def prune(self, *, turns_before: float | None = None) -> int:
        """Delete expired event ids (and turns older than `turns_before`, their feedback, and
        ended sessions left without turns); return rows removed."""

    # -- housekeeping and administration (scheduler, metrics, `botkit sessions`) ------------------

    @abstractmethod
    async def expire_idle(self, idle_before: float, *, busy: Collection[ThreadKey] = ()) -> list[SessionRecord]:
        """End every active session last active before `idle_before`, except in `busy` threads."""

    @abstractmethod
    async def count_sessions(self) -> int:
        """How many sessions are active (for the metrics gauge)."""

    @abstractmethod
    async def feedback_counts(self) -> dict[str, int]:
        """Stored feedback votes by value (comments without a vote count as "comment")."""

    @abstractmethod
    async def list_sessions(self, *, adapter: str | None = None, channel: str | None = None,
                            since: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Sessions, most recently active first, as dicts: id, thread, backend, session_id,
        created_at, last_active, turn_count, ended_at, adapter (of its first turn)."""

    @abstractmethod
    async def find_sessions(self, ref: str) -> list[dict[str, Any]]:
        """Sessions (as in `list_sessions`) named by a thread key, a store id or a backend session id."""

    @abstractmethod
    async def delete_session(self, session: int) -> None:
        """Delete a session with its turns and their feedback (it is ended first if active)."""

    @abstractmethod
    async def count_turns(self, *, since: float | None = None) -> int:
        """How many turns `iter_turns` would yield."""

    @abstractmethod
    def iter_turns(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every turn (as in `turns_of`, plus its session's backend session id), oldest first."""
