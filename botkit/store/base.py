"""The store interface the dispatcher depends on, and the records it keeps."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botkit.events import Attachment, Inbound, ThreadKey

if TYPE_CHECKING:
    from botkit.store.tables import Tables
    from botkit.turn import Answer


@dataclass(slots=True)
class SessionRecord:
    """A thread's current backend session. `id` is the store's; `session_id` the backend's.
    `written_session_id` is the backend's id as the store last wrote it: a store may leave
    an unchanged id alone at the end of each turn (rewriting it rewrites its index)."""

    id: int
    thread: ThreadKey
    backend: str
    session_id: str | None
    created_at: float
    last_active: float
    turn_count: int = 0
    recent: list[tuple[str, str]] | None = None  # (question, answer) pairs, loaded on demand
    written_session_id: str | None = field(default=None, repr=False, compare=False)


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



def turn_row(entry: JournalEntry, session: SessionRecord, answer: Answer,
             encode: Callable[[Any], Any]) -> tuple:
    """The record of a finished turn as a row in `TurnRecord` field order: its identity
    from the journal, the rest from its answer; `encode` prepares the JSON columns."""
    inbound = entry.inbound
    return (session.id, inbound.thread.key, inbound.event_id, inbound.adapter, entry.backend, inbound.user,
            inbound.text, answer.text, str(answer.status), time.time(),  # a plain str binds without sqlite3's adaptation (store/sqlite.py)
            encode([asdict(s) for s in answer.sources] if answer.sources else []), answer.score, answer.error,
            encode(answer.message_ids), answer.first_text_after, answer.duration, answer.edits, encode(answer.flags))


@dataclass(slots=True, eq=False)
class JournalEntry:
    """A turn accepted and not yet finished: what the journal keeps so it survives a crash.

    Written when the delivery is accepted (with the claim of its event id, atomically),
    updated before anything is put on screen (write-ahead), removed when the turn is
    recorded. `seq` orders the turns of a thread (assigned by the store: the order it
    committed them). `messages` is the answer as it stands on screen, one dict per
    platform message: `message_id` (None while a post is intended but not confirmed),
    the adapter's `data`, and what it reads (`text`, `notes` as [text, kind, placement]
    triples, `status`, `final`). `owner` names the process running it.
    """

    inbound: Inbound
    backend: str
    query: str
    kind: str = "ask"  # "ask"; "reset"; "start": the bot asks itself, starting a thread (a schedule)
    seq: int = 0
    state: str = "queued"  # "queued" | "running"
    messages: list[dict[str, Any]] = field(default_factory=list)
    admitted_at: float = 0.0
    owner: str = ""
    raw: Any = None  # what the adapter keeps of `inbound.raw` (JSON), for a recovered inbound
    #: `Turn.extra` as middlewares left it at intake (not journaled: hints, not state)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: counted in this process's queue bounds until it finishes (not journaled)
    counted: bool = field(default=False, repr=False, compare=False)

    #: the inbound's, copied: read many times a turn
    thread: ThreadKey = field(init=False)
    event_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.thread = self.inbound.thread
        self.event_id = self.inbound.event_id

    def inbound_fields(self) -> list[Any]:
        """The inbound as the journal stores it (everything but the library's raw object)."""
        i = self.inbound
        fields = [i.user, i.text, i.adapter, i.user_name, list(i.mentions), i.is_direct, i.command, self.raw]
        if i.attachments:
            fields.append([a.as_json() for a in i.attachments])
        return fields

    @classmethod
    def from_row(cls, event_id: str, thread: ThreadKey, backend: str, kind: str, query: str, inbound: str | list,
                 seq: int, state: str, messages: str | list, admitted_at: float, owner: str) -> JournalEntry:
        """An entry read back from the journal (after a crash, or written by another replica)."""
        fields = json.loads(inbound) if isinstance(inbound, str) else inbound
        user, text, adapter, user_name, mentions, is_direct, command, raw = fields[:8]
        attachments = tuple(Attachment.from_json(a) for a in fields[8]) if len(fields) > 8 else ()
        restored = Inbound(event_id, thread, user, text, adapter, user_name, tuple(mentions), is_direct, command, raw,
                           attachments=attachments)
        return cls(restored, backend, query, kind, seq, state,
                   json.loads(messages) if isinstance(messages, str) else messages, admitted_at, owner, raw)


class StoreUnreachable(ConnectionError):
    """The store cannot be reached right now (its database restarting, or out of reach): the
    call may succeed later, and what it was for waits (a turn stays journaled)."""


class StoreUnusable(RuntimeError):
    """The store cannot be used as it is (a damaged file, not a botkit store, a schema
    newer than this botkit): the message says which and what to do; botkit does not start."""


class TurnStore(ABC):
    """What the turn path needs (intake, workers, runner, recovery, the scheduler's
    housekeeping): claims, the turn journal, thread leases, sessions.

    Implementations may buffer writes (group commit) as long as the methods documented
    as durable return only once committed, `flush` makes everything durable, and
    `admit`/`claim_event` are atomic for every process sharing the store.
    """

    #: this process's name in the journal and in thread leases (unique per process start)
    owner: str = ""
    #: several processes share this store: threads are leased (`take_thread`), and the
    #: journal may hold turns other processes admitted
    shared: bool = False
    #: why the store cannot write right now (a full disk, a lock held elsewhere), None when
    #: it can: meanwhile deliveries are refused (`botkit.adapters.Unavailable`) and /readyz
    #: answers 503, while the store keeps retrying what it has queued
    fault: str | None = None

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

    @abstractmethod
    async def claim_event(self, event_id: str) -> bool:
        """Record a platform event id; False if it was seen within the TTL (a redelivery).

        For deliveries that end without a turn (help, busy, refused by a middleware).
        """

    @abstractmethod
    async def admit(self, entry: JournalEntry, visible: Callable[[], None] | None = None) -> bool:
        """Claim `entry`'s event id and journal the turn, as one atomic write; durable on return.

        False, with nothing written, when the id was claimed within the TTL (a redelivery).
        Sets `entry.seq`: its place among the thread's turns, the order the store committed
        them. Entries of one thread admitted by one process are committed in call order.
        `visible` is called once `pending` returns the entry, which on a store that buffers
        writes is before it is durable: the thread's worker may start meanwhile, since
        `start_turn` waits for everything queued before it.
        """

    @abstractmethod
    async def pending(self, thread: ThreadKey) -> list[JournalEntry]:
        """The thread's journaled turns, oldest first: queued ones and running ones (of this
        process, or cut off by a crash)."""

    @abstractmethod
    async def start_turn(self, entry: JournalEntry) -> bool:
        """Mark `entry` running under this process; durable on return (recovery then knows
        the backend may have been asked, and does not ask it again).

        False when it is no longer journaled (closed, superseded) or another live process
        runs it. An entry left running by a process that is gone is adopted: the caller tells
        such a recovered turn by its state, "running", before the call.
        """

    @abstractmethod
    async def journal_screen(self, entry: JournalEntry, *, durable: bool) -> None:
        """Record `entry.messages` (what is, or is about to be, on screen).

        `durable=True` returns once committed: the renderer calls it so before every post
        or edit (write-ahead), so that recovery always knows what the bot may have shown.
        """

    @abstractmethod
    async def close_turn(self, entry: JournalEntry, session: SessionRecord | None = None,
                         answer: Answer | None = None) -> None:
        """The turn is over: take it out of the journal and, given `answer`, record it in
        `session` (saved too), in one transaction. Write-behind."""


    async def take_thread(self, thread: ThreadKey) -> bool:
        """Own `thread` (run its turns) until `release_thread`; False if a live process owns it.

        A shared store leases it with a heartbeat, so a dead owner's threads are taken
        over once the lease runs out. A single-process store always says yes.
        """
        return True

    async def release_thread(self, thread: ThreadKey, *, force: bool = False) -> bool:
        """Give `thread` up; False (still owned) when a turn was journaled for it since
        `pending` last looked, so the owner must look again. `force` gives it up anyway
        (a stop: what is journaled goes to the next owner)."""
        return True

    async def orphaned_threads(self) -> list[ThreadKey]:
        """Threads with journaled turns that no live process owns: left by a crash or a
        stop, or by a replica that died. Recovery asks at start and then periodically."""
        return []

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
    async def expire_idle(self, idle_before: float, *, busy: Collection[ThreadKey] = ()) -> list[SessionRecord]:
        """End every active session last active before `idle_before`, except in `busy` threads."""

    @abstractmethod
    async def prune(self, *, turns_before: float | None = None) -> int:
        """Delete expired event ids (and turns older than `turns_before` with their rows in
        plugins' tables, and ended sessions left without turns); return rows removed."""


class HistoryStore(ABC):
    """Reading what was said, for people: `botkit sessions`, the web chat after a reload,
    the dashboard. Each read is bounded: along an index, with a LIMIT, whatever the
    store's size (`iter_turns` streams)."""

    @abstractmethod
    async def turn_for_message(self, thread: ThreadKey, message_id: str) -> TurnRecord | None:
        """The turn whose answer occupies `message_id` in `thread` (a vote or a button on a message)."""

    @abstractmethod
    async def turns_of(self, session: int) -> list[dict[str, Any]]:
        """Every turn of a session (store id), oldest first, as column dicts."""

    @abstractmethod
    async def count_sessions(self) -> int:
        """How many sessions are active (for the metrics gauge)."""

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
        """Delete a session with its turns and their rows in plugins' tables (it is ended first if active)."""

    @abstractmethod
    async def count_turns(self, *, since: float | None = None) -> int:
        """How many turns `iter_turns` would yield."""

    @abstractmethod
    def iter_turns(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every turn (as in `turns_of`, plus its session's backend session id), oldest first."""

    @abstractmethod
    async def thread_turns(self, thread: ThreadKey, *, limit: int) -> list[dict[str, Any]]:
        """The thread's latest `limit` turns (as in `turns_of`), oldest first."""

    @abstractmethod
    async def turn_figures(self, *, since: float, limit: int) -> list[dict[str, Any]]:
        """The latest `limit` turns recorded at or after `since`, newest first, without their
        texts: id, event_id, created_at, adapter, backend, status, first_text_after, duration,
        score, and cited (whether the answer came with sources)."""

    @abstractmethod
    async def recent_turns(self, *, limit: int, before: int | None = None,
                           ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Turns for a listing, newest first: id, event_id, created_at, thread, adapter, backend,
        status, score, error, question (its first 300 characters). The latest `limit`, those
        with an id below `before` (the next page), or those named by `ids`."""

    @abstractmethod
    async def turn_by_id(self, turn_id: int) -> dict[str, Any] | None:
        """One turn (as in `turns_of`) with its session's backend `session_id`; None if there is none."""


class Store(TurnStore, HistoryStore, ABC):
    """The store botkit opens (`open_store`): one implementation per database (SQLite,
    PostgreSQL) serving every client. Code that needs only part of it says which
    (`TurnStore`, `HistoryStore`). Plugins keep tables of their own in it (`tables`)."""

    @abstractmethod
    def tables(self, namespace: str) -> Tables:
        """The handle on the tables a plugin registered as `namespace` (`botkit_register_tables`);
        LookupError if none did."""
