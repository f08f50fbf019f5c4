"""The SQLite store: aiosqlite, WAL, versioned migrations, group-committed writes.

This store assumes it is the only process writing its file (one replica), which lets
it answer the per-message questions (was this event seen? which session does this
thread have?) from memory, loaded at open: a filter of the event ids within their TTL in
fixed memory (`botkit.store.seen`; its rare "maybe" is settled by one indexed read), and
the active sessions, a few hundred bytes each (idle ones are ended by the scheduler). It
writes behind: every write is queued and a writer thread commits whatever has queued in
one transaction (group commit). Several replicas need a shared store (PostgreSQL) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
import orjson

from botkit.events import ThreadKey
from botkit.ready import DONE, Ready
from botkit.store.base import JournalEntry, SessionRecord, StoreUnusable, turn_row
from botkit.store.history import SQLHistory
from botkit.store.seen import SeenIds
from botkit.store.tables import PluginTables

if TYPE_CHECKING:
    from botkit.turn import Answer

log = logging.getLogger("botkit.store")

# Each entry migrates from the previous version to the next; never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        thread TEXT NOT NULL,
        backend TEXT NOT NULL,
        session_id TEXT,
        created_at REAL NOT NULL,
        last_active REAL NOT NULL,
        turn_count INTEGER NOT NULL DEFAULT 0,
        ended_at REAL
    );
    CREATE UNIQUE INDEX sessions_active ON sessions(thread) WHERE ended_at IS NULL;
    CREATE INDEX sessions_last_active ON sessions(last_active);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        session INTEGER NOT NULL REFERENCES sessions(id),
        thread TEXT NOT NULL,
        event_id TEXT NOT NULL,
        adapter TEXT NOT NULL,
        backend TEXT NOT NULL,
        user TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        status TEXT NOT NULL,
        sources TEXT NOT NULL,
        score REAL,
        error TEXT,
        message_ids TEXT NOT NULL,
        first_text_after REAL,
        duration REAL NOT NULL,
        edits INTEGER NOT NULL,
        flags TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX turns_session ON turns(session, id);
    CREATE INDEX turns_created ON turns(created_at);
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX events_expires ON events(expires_at);
    CREATE TABLE inflight (
        event_id TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        adapter TEXT NOT NULL,
        messages TEXT NOT NULL,
        started_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    CREATE INDEX turns_thread ON turns(thread, id);
    -- released before plugins had tables of their own: the feedback plugin's now (its first migration)
    CREATE TABLE feedback (
        event_id TEXT NOT NULL,
        user TEXT NOT NULL,
        value TEXT,
        comment TEXT,
        at REAL NOT NULL,
        PRIMARY KEY (event_id, user)
    ) WITHOUT ROWID;
    """,
    """
    CREATE INDEX sessions_session_id ON sessions(session_id);
    """,
    # the turn journal replaces the table of answers in progress
    """
    DROP TABLE inflight;
    CREATE TABLE journal (
        event_id TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        seq INTEGER NOT NULL,
        backend TEXT NOT NULL,
        kind TEXT NOT NULL,
        query TEXT NOT NULL,
        inbound TEXT NOT NULL,
        state TEXT NOT NULL,
        messages TEXT NOT NULL,
        admitted_at REAL NOT NULL,
        owner TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # plugins' own tables (botkit.store.tables): the version each namespace is at
    """
    CREATE TABLE plugin_schema (
        namespace TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # the journal keyed by its sequence number (the rowid): a turn's row is written four
    # times (admitted, started, shown, closed), and each of those finds it a third cheaper
    # by an integer than by its event id in a table clustered on that text (the events table
    # keeps ids unique); the numbers are renewed in journal order
    """
    CREATE TABLE journal_by_seq (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        thread TEXT NOT NULL,
        backend TEXT NOT NULL,
        kind TEXT NOT NULL,
        query TEXT NOT NULL,
        inbound TEXT NOT NULL,
        state TEXT NOT NULL,
        messages TEXT NOT NULL,
        admitted_at REAL NOT NULL,
        owner TEXT NOT NULL
    );
    INSERT INTO journal_by_seq SELECT ROW_NUMBER() OVER (ORDER BY seq, admitted_at), event_id, thread, backend, kind,
        query, inbound, state, messages, admitted_at, owner FROM journal;
    DROP TABLE journal;
    ALTER TABLE journal_by_seq RENAME TO journal;
    """,
]

# One statement both saves and ends sessions, so their rows run in the order they were
# queued: a thread's old session is ended before its new one is inserted (the unique
# index on active threads would refuse the batch otherwise). Once ended, a session stays so.
_UPSERT_SESSION = (
    "INSERT INTO sessions (id, thread, backend, session_id, created_at, last_active, turn_count, ended_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET session_id = excluded.session_id,"
    " last_active = excluded.last_active, turn_count = excluded.turn_count,"
    " ended_at = COALESCE(sessions.ended_at, excluded.ended_at)"
)
# A turn's end, on the row its session was created with: only what a turn changes, so that
# SQLite leaves the indexes on the thread, the end and the backend's session id alone (a
# column named in SET has its index rewritten, whatever the value: 9,000 instructions a
# turn for the session id). A turn that changed the session id saves the whole row instead.
_TOUCH_SESSION = "UPDATE sessions SET last_active = ?, turn_count = ? WHERE id = ?"
# An id claimed again after its expiry gets the new expiry.
_INSERT_EVENT = ("INSERT INTO events (event_id, expires_at) VALUES (?, ?)"
                 " ON CONFLICT(event_id) DO UPDATE SET expires_at = excluded.expires_at")
_INSERT_JOURNAL = ("INSERT INTO journal (event_id, thread, seq, backend, kind, query, inbound, state, messages,"
                   " admitted_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPDATE_JOURNAL = "UPDATE journal SET state = ?, messages = ?, owner = ? WHERE seq = ?"
_DELETE_JOURNAL = "DELETE FROM journal WHERE seq = ?"
_INSERT_TURN = (
    "INSERT INTO turns (session, thread, event_id, adapter, backend, user, question, answer, status, created_at,"
    " sources, score, error, message_ids, first_text_after, duration, edits, flags)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_SESSION_FIELDS = "id, thread, backend, session_id, created_at, last_active, turn_count"

_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000")
_CHECKPOINT_TICK = 0.25  # seconds between looks at whether to checkpoint
#: commits after which a checkpoint runs even while writes go on: the WAL stays within about
#: this many times a few pages (SQLite's own default is 1,000 pages)
_CHECKPOINT_COMMITS = 2_000
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0  # seconds between attempts to write while the store fails
#: the writer's busy timeout is short, so that a close is never stuck behind it; a lock held
#: elsewhere becomes a fault (deliveries refused) only once it has lasted this long
_WRITER_BUSY_TIMEOUT_MS, _LOCK_PATIENCE = 100, 5.0
#: ops the event loop commits at most in one go (a few milliseconds), and how long a commit
#: may take before the writes go to the writer thread (seconds)
_LOOP_BATCH, _SLOW_COMMIT = 2_000, 0.05
#: errors of the store rather than of a row: retried until they are over (BUSY and LOCKED after
#: the busy timeout: another process holds the file)
_FAULTS = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY",
                     "SQLITE_CANTOPEN", "SQLITE_NOMEM", "SQLITE_PROTOCOL", "SQLITE_CORRUPT", "SQLITE_NOTADB",
                     "SQLITE_PERM", "SQLITE_AUTH"})


def _primary_code(exc: sqlite3.Error) -> str:
    """SQLITE_IOERR of SQLITE_IOERR_WRITE."""
    return "_".join(getattr(exc, "sqlite_errorname", "").split("_")[:2])


def _is_fault(exc: sqlite3.Error) -> bool:
    return _primary_code(exc) in _FAULTS


def _is_lock(exc: sqlite3.Error) -> bool:
    return _primary_code(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED")


_REFUSED = Ready(False)

# The sqlite3 module runs its adaptation protocol on every parameter that is not exactly an
# int, float, str or bytearray (CPython's _need_adapt): for None that is two attribute look-ups
# that fail, each raising and clearing an AttributeError, about 3,300 instructions. A turn
# binds three to five Nones: 2 % of its instructions. With an adapter registered for None the
# protocol ends at one dict look-up and a C call; `{}.get(None)` is None, which binds NULL as
# before (for every user of sqlite3 in the process, with the same result).
sqlite3.register_adapter(type(None), {}.get)


def _group(ops: list[tuple[str, Any]]) -> dict[str, list[tuple]]:
    """Writes by statement, in queue order. A journal entry's row is encoded now, once per
    batch with its latest state: an entry inserted in this batch needs no update in it, and
    one deleted in it none either (inserted too, it is not written at all)."""
    batch: dict[str, list[tuple]] = {}
    inserted: dict[str, JournalEntry] = {}
    screens: dict[str, JournalEntry] = {}
    deleted: list[tuple] = []
    for sql, params in ops:
        if sql is _UPDATE_JOURNAL:
            screens[params.event_id] = params
        elif sql is _INSERT_JOURNAL:
            inserted[params.event_id] = params
        elif sql is _DELETE_JOURNAL:
            event_id = params.event_id
            screens.pop(event_id, None)
            if inserted.pop(event_id, None) is None:
                deleted.append((params.seq,))
        else:
            rows = batch.get(sql)
            if rows is None:
                batch[sql] = [params]
            else:
                rows.append(params)
    if inserted:
        batch[_INSERT_JOURNAL] = [_journal_row(e) for e in inserted.values()]
    updated = [(e.state, _json(e.messages), e.owner, e.seq) for e in screens.values() if e.event_id not in inserted]
    if updated:
        batch[_UPDATE_JOURNAL] = updated
    if deleted:
        batch[_DELETE_JOURNAL] = deleted
    return batch


def _journal_row(entry: JournalEntry) -> tuple:
    return (entry.event_id, entry.thread.key, entry.seq, entry.backend, entry.kind, entry.query,
            _json(entry.inbound_fields()), entry.state, _json(entry.messages), entry.admitted_at, entry.owner)


def _session(row: tuple, thread: ThreadKey | None = None) -> SessionRecord:
    """An active session as read from `_SESSION_FIELDS` (its history is read when asked for)."""
    return SessionRecord(row[0], thread or ThreadKey.parse(row[1]), *row[2:], written_session_id=row[3])


def _json(value: list | dict) -> str:
    """JSON for a column; empty values (most turns' flags) skip the encoder."""
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()  # measurably cheaper per turn


# A session row is created before a turn's end touches it; a journal row is inserted before
# it is updated, and updated before it is deleted.
_WRITE_ORDER = (_INSERT_EVENT, _UPSERT_SESSION, _TOUCH_SESSION, _INSERT_JOURNAL, _UPDATE_JOURNAL, _INSERT_TURN,
                _DELETE_JOURNAL)


def _target(path: str, exclusive: bool) -> tuple[str, bool]:
    """What every connection of this process opens, and whether it is a URI. The writer has a
    connection of its own: an in-memory database must be one all see. SQLite's `unix-excl`
    VFS locks the file against other processes and keeps the WAL index on the heap, shared by
    this process's connections (see StoreConfig.exclusive)."""
    if path == ":memory:":
        return f"file:botkit-{uuid.uuid4().hex}?mode=memory&cache=shared", True
    if exclusive:
        return f"{Path(path).absolute().as_uri()}?vfs=unix-excl", True
    return path, False


def _why_not_writable(path: str) -> str:
    """What SQLite's "unable to open database file" does not say, when it is that."""
    if path == ":memory:":
        return ""
    folder = Path(path).absolute().parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f" ({folder} is on a read-only file system)"
    except OSError:
        return f" ({folder} cannot be reached)"
    if not os.access(folder, os.W_OK | os.X_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
        return " (not writable by this user: the store writes the file and its -wal beside it)"
    return ""


class SQLiteStore(SQLHistory):
    dialect = "sqlite"
    _HOLDS_MESSAGE = "EXISTS (SELECT 1 FROM json_each(turns.message_ids) WHERE value = ?)"

    def __init__(self, path: str, *, events_ttl: float = 48 * 3600, synchronous: str = "normal",
                 exclusive: bool = True, cached_sessions: int = 10_000, tables: Sequence[PluginTables] = ()) -> None:
        super().__init__(tables)
        self.path = path
        self._pragmas = (f"PRAGMA synchronous={synchronous.upper()}", *_PRAGMAS)  # see StoreConfig.synchronous
        self._target = _target(path, exclusive)
        self.events_ttl = events_ttl
        self._db: aiosqlite.Connection | None = None
        self._seen = SeenIds(events_ttl)  # event ids claimed within the TTL: "certainly not", or "maybe"
        self._claiming: dict[str, float] = {}  # event ids claimed and not yet committed -> expiry
        self._claimed_at: deque[tuple[int, str]] = deque()  # (op number, event id) of `_claiming`
        self._lookup: sqlite3.Connection | None = None  # the event loop's own, for a "maybe" (one indexed read)
        # The active sessions used last, by thread (at most `cached_sessions`, least recently
        # used first); the others are read back when their thread speaks again, known by the
        # hash of their thread's key (a few dozen bytes each instead of a few kilobytes).
        self._sessions: OrderedDict[str, SessionRecord] = OrderedDict()
        self._evicted: set[int] = set()
        self.cached_sessions = cached_sessions
        self._next_session_id = 1
        # Writes queue in order in `_ops`, a deque (appends and pops are atomic between
        # threads), and are committed by the event loop or the writer thread (see group
        # commit). Ops are numbered as queued; a durable write waits until they are
        # committed through its number.
        self._ops: deque[tuple[str, Any]] = deque()  # (SQL, parameters or the journal entry to encode)
        self._queued = 0  # ops queued so far (event loop's thread)
        self._committed = 0  # ops committed so far, as the event loop knows
        self._taken = 0  # ops committed so far (whoever holds `_writing`)
        self._commits = 0  # transactions committed
        #: seconds spent writing batches, on the event loop's thread and on the writer's
        #: (bench/dispatch.py reports the loop's share: the part of a turn no tuning of the
        #: pipeline can win back)
        self.commit_seconds = {"loop": 0.0, "writer": 0.0}
        self._waiters: deque[tuple[int, asyncio.Future[bool]]] = deque()  # by op number, ascending
        self._writer_db: sqlite3.Connection | None = None  # the one connection that writes
        self._writing = threading.Lock()
        #: a sync per commit (FULL, EXTRA) is never waited for on the event loop
        self._may_commit_on_loop = synchronous.lower() in ("off", "normal")
        self._loop_commits = False  # the event loop commits, rather than the writer thread
        self._commit_due = False  # a loop commit is scheduled
        self._wake = threading.Event()
        self._idle = False  # the writer is waiting for `_wake`
        self._journal: dict[str, list[JournalEntry]] = {}  # thread key -> its journaled turns, by seq
        self._recovered: list[ThreadKey] = []  # threads with turns journaled by an earlier process
        self._seq = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._writer: threading.Thread | None = None
        self._checkpointer: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._give_up_at = 0.0  # closing: when the writer stops retrying a store that cannot write
        #: seconds `close` waits for queued writes while the store cannot write
        self.close_timeout = 10.0

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Open, check and migrate the file, load what the hot path answers from memory. A file
        that is not a sound botkit store fails here, with its path, and leaves nothing open."""
        self._db = await aiosqlite.connect(self._target[0], uri=self._target[1], isolation_level=None)
        try:
            await self._load()
            self._writer_db = await asyncio.to_thread(self._connect_writer)
            self._lookup = await asyncio.to_thread(self._connect_lookup)
        except BaseException as exc:
            await self._db.close()
            self._db = None
            if self._writer_db is not None:
                self._writer_db.close()
                self._writer_db = None
            if isinstance(exc, sqlite3.Error) and _is_lock(exc):
                raise StoreUnusable(f"{self.path} is in use by another process (a running bot holds its store for"
                                    " itself: stop it first, or see store.exclusive)") from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreUnusable(f"{self.path}: {exc}{_why_not_writable(self.path)}") from exc
            raise
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._loop_commits = self._may_commit_on_loop
        self._writer = threading.Thread(target=self._write_loop, name="botkit-store-writer", daemon=True)
        self._writer.start()
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="botkit-store-checkpoint")

    async def _load(self) -> None:
        assert self._db is not None
        await self._db.execute("PRAGMA journal_mode=WAL")
        for pragma in self._pragmas:
            await self._db.execute(pragma)
        async with self._db.execute("PRAGMA quick_check") as cur:  # reads every page once: seconds per GB
            problems = [line for (row,) in await cur.fetchall() for line in row.splitlines()
                        if line != "ok" and not line.startswith("***")]
        if problems:
            raise StoreUnusable(f"{self.path} is damaged ({'; '.join(problems[:2])}); restore a backup, or move it"
                                " away to start with an empty store")
        await self._migrate()
        now = time.time()
        async with self._db.execute("SELECT event_id FROM events WHERE expires_at > ?", (now,)) as cur:
            async for (event_id,) in cur:
                self._seen.add(event_id, now)
        await self._load_journal()
        async with self._db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions") as cur:
            (max_id,) = await cur.fetchone()
        self._next_session_id = max_id + 1
        async with self._db.execute(f"SELECT {_SESSION_FIELDS} FROM sessions WHERE ended_at IS NULL"
                                    " ORDER BY last_active DESC") as cur:
            cached: list[tuple] = []
            async for row in cur:
                if len(cached) < self.cached_sessions:
                    cached.append(row)
                else:
                    self._evicted.add(hash(row[1]))
        for row in reversed(cached):  # the least recently active first
            self._sessions[row[1]] = _session(row)

    async def _checkpoint_loop(self) -> None:
        """Move the WAL into the database file when the writer is idle (nothing committed for
        a tick), or after `_CHECKPOINT_COMMITS` commits while writes go on (the WAL stays small).

        A checkpoint syncs the database file, and commits that land meanwhile wait for the
        disk: on the writer's own connection that wait would fall on whichever turn commits
        next (a p99 of ~5 ms), and even beside it, a checkpoint once a second put the seq
        benchmark's p99 at 2.5-3.6 ms (0.7-0.9 ms without). So it runs on the readers'
        connection (PASSIVE), and when nobody is waiting for a commit, if it can.
        """
        assert self._db is not None
        checkpointed = seen = 0
        failing = False  # logged once until a checkpoint succeeds again
        while True:
            await asyncio.sleep(_CHECKPOINT_TICK)
            commits = self._commits
            idle, seen = commits == seen, commits
            if commits == checkpointed or not (idle or commits - checkpointed >= _CHECKPOINT_COMMITS):
                continue
            checkpointed = commits
            try:
                await self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the writer reports the store's faults; this is the same one
                if not failing:
                    log.warning("store checkpoint failed (%s); retried while commits go on", exc)
                failing = True
            else:
                failing = False

    async def _load_journal(self) -> None:
        """Turns an earlier process accepted and did not finish: recovery answers them."""
        assert self._db
        async with self._db.execute("SELECT event_id, thread, backend, kind, query, inbound, seq, state, messages,"
                                    " admitted_at, owner FROM journal ORDER BY seq") as cur:
            async for row in cur:
                entry = JournalEntry.from_row(row[0], ThreadKey.parse(row[1]), *row[2:])
                entries = self._journal.setdefault(row[1], [])
                if not entries:
                    self._recovered.append(entry.thread)
                entries.append(entry)
                self._seq = entry.seq

    async def _migrate(self) -> None:
        assert self._db
        async with self._db.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()
        if version > len(MIGRATIONS):
            raise StoreUnusable(f"{self.path}: schema version {version} is newer than this botkit knows")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            log.info("store %s migrated to schema version %d", self.path, number)
        async with self._db.execute("SELECT namespace, version FROM plugin_schema") as cur:
            versions = dict(await cur.fetchall())
        for tables, number, script in self._plugin_migrations(versions):
            # the namespace is checked to be a plain name (PluginTables), so it can be written in
            await self._db.executescript(f"BEGIN; {script}; INSERT INTO plugin_schema VALUES ('{tables.namespace}',"
                                         f" {number}) ON CONFLICT (namespace) DO UPDATE SET version = {number};"
                                         " COMMIT;")
            log.info("store %s: the %s tables migrated to version %d", self.path, tables.namespace, number)

    def _connect_lookup(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._target[0], uri=self._target[1], isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA query_only=ON")
        return db

    def _connect_writer(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._target[0], uri=self._target[1], isolation_level=None, check_same_thread=False)
        # the event loop never waits on a lock: the writer thread waits it out (see group commit)
        busy_timeout = 0 if self._may_commit_on_loop else _WRITER_BUSY_TIMEOUT_MS
        for pragma in (*self._pragmas, "PRAGMA wal_autocheckpoint=0",  # see _checkpoint_loop
                       f"PRAGMA busy_timeout={busy_timeout}"):
            db.execute(pragma)
        return db

    async def close(self) -> None:
        """Flush and close; while the store cannot write, give up after `close_timeout` seconds
        (what was committed stays: the journal has every turn whose delivery was acked)."""
        if self._db is None:
            return
        try:
            await asyncio.wait_for(self.flush(), self.close_timeout)
        except TimeoutError:
            log.error("store %s: %d writes not committed after %g s (%s); closing without them",
                      self.path, self._queued - self._committed, self.close_timeout, self.fault)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            self._checkpointer = None
        if self._writer is not None:
            self._loop_commits = False  # what is left is the writer's to finish or give up on
            self._closing = True
            self._give_up_at = time.monotonic()
            self._wake.set()
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = None
        await self._db.close()
        self._db = None

    async def flush(self) -> None:
        if self._committed < self._queued and self._writer is not None:
            await self._committed_through(self._queued)

    async def ping(self) -> bool:
        if self._db is None or self.fault is not None:
            return False
        try:
            async with self._db.execute("SELECT 1") as cur:
                return (await cur.fetchone()) == (1,)
        except Exception:
            return False

    # -- group commit -----------------------------------------------------------------
    #
    # Writes queue in `_ops` and are committed in groups, one transaction each. While commits
    # are quick the event loop commits them itself, once per loop iteration: a writer thread
    # would take the GIL back after every row it steps, waiting up to the switch interval each
    # time while the loop is busy (its commits took 5-10x their CPU time, and the loop sat
    # idle waiting for them), and each durable write would cost a thread handoff. A commit
    # that fails (a full disk, a lock, a refused row) or is slow (a disk under pressure) hands
    # the writes to the writer thread, which retries without blocking the loop and hands
    # them back once a commit is quick again. With `synchronous=FULL` (a sync per commit) the
    # thread commits everything. `_writing` is held by whoever is committing.

    def _queue(self, sql: str, params: Any) -> None:
        """Queue a write (group-committed, write-behind)."""
        self._ops.append((sql, params))
        self._queued += 1
        if self._loop_commits:
            if not self._commit_due:
                self._commit_soon()
        elif self._idle and not self._wake.is_set():  # set once: each set takes the event's lock
            self._wake.set()

    def _queue_durable(self, sql: str, params: Any) -> asyncio.Future[bool]:
        """Queue a write; what resolves (True) once it is committed."""
        self._queue(sql, params)
        return self._committed_through(self._queued)

    def _committed_through(self, op: int) -> asyncio.Future[bool]:
        assert self._loop is not None
        future = self._loop.create_future()
        if op <= self._committed:
            future.set_result(True)
        else:
            self._waiters.append((op, future))
        return future

    def _now_committed(self, op: int) -> None:
        """Every op through `op` is committed (called on the event loop's thread)."""
        if op <= self._committed:
            return  # the loop's own commit overtook the writer's word on an earlier one
        self._committed = op
        claimed, claiming = self._claimed_at, self._claiming
        while claimed and claimed[0][0] <= op:  # committed claims: the database answers for them now
            claiming.pop(claimed.popleft()[1], None)
        waiters = self._waiters
        while waiters and waiters[0][0] <= op:
            future = waiters.popleft()[1]
            if not future.done():  # a waiter may have been cancelled, its future with it
                future.set_result(True)

    def _commit_here(self) -> None:
        """The event loop's group commit: what has queued, in one transaction."""
        self._commit_due = False
        ops = self._ops
        if not self._loop_commits or not ops:
            return
        if not self._writing.acquire(blocking=False):  # the writer is still at it: leave it the rest
            self._hand_over()
            return
        try:
            batch = [ops.popleft() for _ in range(min(len(ops), _LOOP_BATCH))]
            started = time.perf_counter()
            try:
                self._write_batch(self._writer_db, _group(batch))
            except BaseException as exc:  # rolled back: nothing of the batch is lost
                ops.extendleft(reversed(batch))
                if not isinstance(exc, Exception):
                    raise  # (Ctrl-C: the stop that follows flushes them)
                self._hand_over()  # whatever it is, the writer deals with it as with its own
                return
            taken = self._counted(len(batch))
        finally:
            self._writing.release()
        took = time.perf_counter() - started
        self.commit_seconds["loop"] += took
        if took > _SLOW_COMMIT:
            log.info("store %s: a commit took %.0f ms; the writer thread commits until they are quick again",
                     self.path, took * 1000)
            self._hand_over()
        elif ops:
            self._commit_soon()
        self._now_committed(taken)

    def _counted(self, ops: int) -> int:
        """A transaction of `ops` ops is committed (its committer holds `_writing`); how many
        ops are committed so far."""
        self._taken += ops
        self._commits += 1
        return self._taken

    def _commit_soon(self) -> None:
        """The loop commits what has queued once the callbacks now ready have run (they may queue more)."""
        self._commit_due = True
        self._loop.call_soon(self._commit_here)  # type: ignore[union-attr]

    def _hand_over(self) -> None:
        self._loop_commits = False
        self._wake.set()

    def _take_back(self) -> None:
        """The writer caught up with quick commits: the loop commits again."""
        if self._closing:
            return
        self._loop_commits = True
        if self._ops and not self._commit_due:
            self._commit_soon()

    def _write_loop(self) -> None:
        """The writer's thread: commit whatever has queued, in one transaction (group
        commit); what queues meanwhile goes in the next. Woken when the loop hands the
        writes over, or for every write under `synchronous=FULL`."""
        assert self._loop is not None and self._writer_db is not None
        db, ops = self._writer_db, self._ops
        try:
            while True:
                self._idle = True
                if not ops and not self._closing:  # looked at again: an op may just have come
                    self._wake.wait()
                self._wake.clear()
                self._idle = False
                # Handed back only after a quick commit of its own: woken with nothing to do (the
                # loop's slow commit wrote it all), it waits for the next writes and times those.
                quick = False
                while ops:
                    with self._writing:
                        batch = [ops.popleft() for _ in range(len(ops))]
                        started = time.perf_counter()
                        try:
                            committed = self._commit(db, _group(batch))
                        except Exception as exc:  # a bug: say so (deliveries are refused) rather than hang
                            log.exception("the store writer failed; the bot must be restarted")
                            self.fault = f"the store writer failed: {exc!r}"
                            return
                        if not committed:
                            return  # closing with the store still failing: `close` reports what was not written
                        took = time.perf_counter() - started
                        self.commit_seconds["writer"] += took
                        quick = took <= _SLOW_COMMIT
                        taken = self._counted(len(batch))
                    del batch  # not kept alive until the next write
                    self._loop.call_soon_threadsafe(self._now_committed, taken)
                if self._closing:
                    return
                if quick and self._may_commit_on_loop:
                    self._loop.call_soon_threadsafe(self._take_back)
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: dict[str, list[tuple]]) -> bool:
        """Write `batch`, however long the store takes to be writable again (a full disk, a
        lock held by another process, an I/O error): nothing is dropped for a fault of the
        store's. False only when closing gave up on it."""
        delay = _RETRY_FIRST
        since = time.monotonic()
        while True:
            try:
                self._write_batch(db, batch)
            except sqlite3.Error as exc:
                if self._closing and time.monotonic() >= self._give_up_at:
                    return False  # closing, and the store still cannot write: given up on
                if not _is_fault(exc):
                    rows = sum(map(len, batch.values()))
                    if rows == 1:
                        raise  # the row itself is refused (`_write_rows` drops it)
                    log.error("store write of %d rows failed (%s); writing them one by one", rows, exc)
                    return self._write_rows(db, batch)
                if not _is_lock(exc) or time.monotonic() - since >= _LOCK_PATIENCE:
                    self._failing(exc)
                self._wake.wait(delay)  # a close wakes it early
                self._wake.clear()
                if self._closing and time.monotonic() >= self._give_up_at:
                    return False
                delay = min(delay * 2, _RETRY_MAX)
                continue
            if self.fault is not None:
                log.warning("store writes again (%s is over)", self.fault)
                self.fault = None
            return True

    def _failing(self, exc: sqlite3.Error) -> None:
        """Note the fault (deliveries are refused meanwhile); logged once per kind of fault."""
        reason = f"{getattr(exc, 'sqlite_errorname', 'SQLITE_ERROR')}: {exc}"
        if reason != self.fault:
            log.warning("store %s cannot write (%s); new deliveries are refused and the writes retried until it can",
                        self.path, reason)
            self.fault = reason

    @staticmethod
    def _write_batch(db: sqlite3.Connection, batch: dict[str, list[tuple]]) -> None:
        """One transaction, statement kind by kind in `_WRITE_ORDER` (which makes grouping
        safe: a session row exists before the turns that reference it, and is created
        before it is ended). On failure nothing of it is written."""
        try:
            db.execute("BEGIN")
            for sql in _WRITE_ORDER:
                rows = batch.get(sql)
                if rows:
                    db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def _write_rows(self, db: sqlite3.Connection, batch: dict[str, list[tuple]]) -> bool:
        """A batch one of whose rows is refused (a bug, not a fault of the store): every
        other row is written, each in its own transaction, faults retried as for a batch."""
        for sql in _WRITE_ORDER:
            for row in batch.get(sql, ()):
                try:
                    if not self._commit(db, {sql: [row]}):
                        return False
                except sqlite3.Error as exc:
                    log.error("store row dropped (%s): %s", exc, sql.split("(")[0].strip())
        return True

    # -- events ---------------------------------------------------------------------------

    async def claim_event(self, event_id: str) -> bool:
        return self._claim(event_id, time.time())

    def _claim(self, event_id: str, now: float) -> bool:
        expiry = self._claiming.get(event_id)
        if expiry is None and self._seen.add(event_id, now):  # rare: a redelivery, or a filter's false alarm
            expiry = self._stored_expiry(event_id)
        if expiry is not None and expiry > now:
            return False
        expires = now + self.events_ttl
        self._claiming[event_id] = expires
        self._queue(_INSERT_EVENT, (event_id, expires))
        self._claimed_at.append((self._queued, event_id))
        return True

    def _stored_expiry(self, event_id: str) -> float | None:
        """The committed expiry of `event_id`: a read on the event loop's thread (the primary
        key, ~10 µs), rare enough not to be worth a hop to the reader's thread."""
        assert self._lookup is not None
        row = self._lookup.execute("SELECT expires_at FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    # -- sessions -----------------------------------------------------------------------------

    def active_session(self, thread: ThreadKey, backend: str, *,  # type: ignore[override]
                       with_recent: int = 0) -> Awaitable[SessionRecord]:
        record = self._sessions.get(thread.key)
        if record is not None and record.backend == backend and (not with_recent or record.recent is not None):
            self._sessions.move_to_end(thread.key)
            return Ready(record)  # the usual turn: a thread that spoke lately
        return self._active_session(thread, backend, with_recent)

    async def _active_session(self, thread: ThreadKey, backend: str, with_recent: int) -> SessionRecord:
        key = thread.key
        sessions = self._sessions
        record = sessions.get(key)
        if record is not None:
            sessions.move_to_end(key)
        elif self._evicted:
            record = await self._read_back(thread)
            if record is not None:
                self._cache(key, record)
        if record is not None and record.backend != backend:
            await self.end_session(thread)
            record = None
        if record is None:
            now = time.time()
            # a new session has no history; with none asked for, none is kept at all
            record = SessionRecord(self._next_session_id, thread, backend, None, now, now, 0,
                                   [] if with_recent else None)
            self._next_session_id += 1
            self._cache(key, record)
            await self.save_session(record)
        if with_recent and record.recent is None:
            record.recent = await self._load_recent(record.id, with_recent)
        return record

    def _cache(self, key: str, record: SessionRecord) -> None:
        """Keep `record` in memory, the least recently used session giving way past the bound."""
        sessions = self._sessions
        sessions[key] = record
        if len(sessions) > self.cached_sessions:
            evicted, _ = sessions.popitem(last=False)
            self._evicted.add(hash(evicted))

    async def _read_back(self, thread: ThreadKey) -> SessionRecord | None:
        """The thread's active session from the database, if it was evicted (no longer counted
        as evicted: the caller caches it, or ends it)."""
        key = thread.key
        if hash(key) not in self._evicted:
            return None  # a new thread, or one whose session ended: nothing to read
        assert self._db
        await self.flush()  # its last save may still be queued
        async with self._db.execute(f"SELECT {_SESSION_FIELDS} FROM sessions WHERE thread = ? AND ended_at IS NULL",
                                    (key,)) as cur:
            row = await cur.fetchone()
        if key in self._sessions:  # read back by another call meanwhile
            return self._sessions[key]
        if row is None:
            return None
        self._evicted.discard(hash(key))
        return _session(row, thread)

    async def _load_recent(self, session: int, n: int) -> list[tuple[str, str]]:
        assert self._db
        await self.flush()
        async with self._db.execute(
            "SELECT question, answer FROM turns WHERE session = ? AND status = 'complete' ORDER BY id DESC LIMIT ?",
            (session, n)) as cur:
            rows = await cur.fetchall()
        return [(q, a) for q, a in reversed(rows)]

    async def save_session(self, record: SessionRecord) -> None:
        self._save(record, None)

    async def end_session(self, thread: ThreadKey) -> SessionRecord | None:
        record = self._sessions.pop(thread.key, None)
        if record is None and self._evicted:
            record = await self._read_back(thread)
            self._sessions.pop(thread.key, None)  # cached by an active_session meanwhile
        if record is not None:
            self._save(record, time.time())
        return record

    def _save(self, record: SessionRecord, ended_at: float | None) -> None:
        self._queue(_UPSERT_SESSION, (record.id, str(record.thread), record.backend, record.session_id,
                                      record.created_at, record.last_active, record.turn_count, ended_at))
        record.written_session_id = record.session_id

    # -- the turn journal -----------------------------------------------------------------------

    def admit(self, entry: JournalEntry,  # type: ignore[override]  # an awaitable, not a coroutine:
              visible: Callable[[], None] | None = None) -> Awaitable[bool]:  # one frame less per turn
        now = time.time()
        if not self._claim(entry.event_id, now):
            return _REFUSED
        self._seq += 1
        entry.seq, entry.admitted_at, entry.owner = self._seq, now, self.owner
        key = entry.thread.key
        entries = self._journal.get(key)
        if entries is None:
            self._journal[key] = [entry]
        else:
            entries.append(entry)
        committed = self._queue_durable(_INSERT_JOURNAL, entry)
        if visible is not None:
            visible()
        return committed

    def pending(self, thread: ThreadKey) -> Awaitable[list[JournalEntry]]:  # type: ignore[override]
        entries = self._journal.get(thread.key)
        return Ready(list(entries) if entries else [])

    def start_turn(self, entry: JournalEntry) -> Awaitable[bool]:  # type: ignore[override]
        if entry not in self._journal.get(entry.thread.key, ()):
            return _REFUSED  # closed meanwhile (superseded by a newer question)
        entry.state = "running"
        entry.owner = self.owner
        return self._queue_durable(_UPDATE_JOURNAL, entry)

    def journal_screen(self, entry: JournalEntry, *,  # type: ignore[override]
                       durable: bool) -> Awaitable[object]:
        if durable:
            return self._queue_durable(_UPDATE_JOURNAL, entry)
        self._queue(_UPDATE_JOURNAL, entry)
        return DONE

    def close_turn(self, entry: JournalEntry, session: SessionRecord | None = None,  # type: ignore[override]
                   answer: Answer | None = None) -> Awaitable[None]:
        key = entry.thread.key
        entries = self._journal.get(key)
        if entries is not None and entry in entries:  # by identity (eq=False): usually the first
            entries.remove(entry)
            if not entries:
                del self._journal[key]
        self._queue(_DELETE_JOURNAL, entry)
        if answer is None or session is None:
            return DONE
        if session.session_id == session.written_session_id:
            self._queue(_TOUCH_SESSION, (session.last_active, session.turn_count, session.id))
        else:  # the backend gave it a (new) id
            self._save(session, None)
        self._queue(_INSERT_TURN, turn_row(entry, session, answer, _json))
        current = self._sessions.get(key)
        if current is session and session.recent is not None and answer.status == "complete":
            session.recent.append((entry.inbound.text, answer.text))
            del session.recent[:-20]
        return DONE

    async def orphaned_threads(self) -> list[ThreadKey]:
        found, self._recovered = self._recovered, []
        return found


    # -- housekeeping and administration --------------------------------------------------------

    async def expire_idle(self, idle_before: float, *, busy: Collection[ThreadKey] = ()) -> list[SessionRecord]:
        idle = [r for r in self._sessions.values() if r.last_active < idle_before and r.thread not in busy]
        if self._evicted:  # and those not in memory (none was used since it was evicted)
            rows = await self._rows(f"SELECT {_SESSION_FIELDS} FROM sessions WHERE ended_at IS NULL"
                                    " AND last_active < ?", (idle_before,))
            evicted = [_session(tuple(row.values())) for row in rows
                       if row["thread"] not in self._sessions and hash(row["thread"]) in self._evicted]
            idle += [r for r in evicted if r.thread not in busy]
        ended = time.time()
        for record in idle:
            self._sessions.pop(record.thread.key, None)
            self._evicted.discard(hash(record.thread.key))
            self._save(record, ended)
        return idle

    async def count_sessions(self) -> int:
        return len(self._sessions) + len(self._evicted)

    async def delete_session(self, session: int) -> None:
        for row in await self._rows("SELECT thread FROM sessions WHERE id = ? AND ended_at IS NULL", (session,)):
            await self.end_session(ThreadKey.parse(row["thread"]))
        await super().delete_session(session)

    # -- what the shared SQL runs on (SQLHistory) -------------------------------------------------

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute(sql, params) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in await cur.fetchall()]

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        assert self._db
        await self.flush()
        async with self._db.execute(sql, params) as cur:
            return cur.rowcount

    async def _stream(self, sql: str, params: Sequence[Any]) -> AsyncIterator[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute(sql, params) as cur:
            names = [d[0] for d in cur.description]
            async for row in cur:
                yield dict(zip(names, row))

    async def _run(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> int:
        """One statement at a time, in autocommit: the group-commit writer owns transactions."""
        return sum([await self._execute(sql, params) for sql, params in statements])
