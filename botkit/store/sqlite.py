"""The SQLite store: WAL, versioned migrations, group-committed writes in a process of its own.

This store assumes it is the only process writing its file (one replica), which lets
it answer the per-message questions (was this event seen? which session does this
thread have?) from memory, loaded at open: a filter of the event ids within their TTL in
fixed memory (`botkit.store.seen`; its rare "maybe" is settled by one indexed read), and
the active sessions, a few hundred bytes each (idle ones are ended by the scheduler). It
writes behind: every write is queued, and the store's process (`botkit.store.sqlite_process`,
which holds the file and every connection to it) commits whatever has come in one
transaction (group commit). Several replicas need a shared store (PostgreSQL) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import select
import socket
import sqlite3
import shutil
import subprocess
import sys
import tempfile
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
from botkit.store import sqlite_process
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
#: not a statement: a turn's end, queued as one op (entry, session touch or None, turn row), which
#: `_group` writes as the entry's delete, the touch and the turn's insert
_CLOSE_TURN = "close turn"
_INSERT_TURN = (
    "INSERT INTO turns (session, thread, event_id, adapter, backend, user, question, answer, status, created_at,"
    " sources, score, error, message_ids, first_text_after, duration, edits, flags)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_SESSION_FIELDS = "id, thread, backend, session_id, created_at, last_active, turn_count"

_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000")
#: writes the event loop sends to the store's process at once: a loop iteration's writes
#: go in several batches, the first committed while the loop still runs the iteration's
#: turns (fewer, larger batches leave the store's process idle until the iteration ends;
#: smaller ones cost the loop a write to the pipe each)
_SEND_AT = 500
#: bytes the pipes to and from the store's process hold (the most an unprivileged process may ask)
_PIPE_SIZE = 1 << 20
#: seconds a close waits for the store's process to end once it has its last writes
_PROCESS_EXIT = 10.0


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
    touched: list[tuple] = []
    recorded: list[tuple] = []
    for sql, params in ops:
        if sql is _CLOSE_TURN:  # the entry is deleted, as below
            entry, touch, record = params
            if touch is not None:
                touched.append(touch)
            recorded.append(record)
            sql, params = _DELETE_JOURNAL, entry
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
    if touched:
        batch[_TOUCH_SESSION] = touched
    if recorded:
        batch[_INSERT_TURN] = recorded
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
    """What every connection opens, and whether it is a URI. SQLite's `unix-excl` VFS locks
    the file against other processes and keeps the WAL index on the heap, shared by the
    connections of the process that holds it (see StoreConfig.exclusive)."""
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
        self.exclusive = exclusive
        self._target = ("", False)  # what the connections open (`_target`), from `open`
        #: the folder of the file that stands for ":memory:", removed at close: the store's
        #: process and this one's loading connection must see one database
        self._scratch: str | None = None
        self.events_ttl = events_ttl
        self._db: aiosqlite.Connection | None = None
        self._seen = SeenIds(events_ttl)  # event ids claimed within the TTL: "certainly not", or "maybe"
        self._claiming: dict[str, float] = {}  # event ids claimed and not yet committed -> expiry
        self._claimed_at: deque[tuple[int, str]] = deque()  # (op number, event id) of `_claiming`
        # The active sessions used last, by thread (at most `cached_sessions`, least recently
        # used first); the others are read back when their thread speaks again, known by the
        # hash of their thread's key (a few dozen bytes each instead of a few kilobytes).
        self._sessions: OrderedDict[str, SessionRecord] = OrderedDict()
        self._evicted: set[int] = set()
        self.cached_sessions = cached_sessions
        self._next_session_id = 1
        # Writes queue in order in `_ops` and go to the store's process in batches; ops are
        # numbered as queued, and a durable write waits until they are committed through its number.
        self._ops: list[tuple[str, Any]] = []  # (SQL, parameters or the journal entry to encode)
        self._queued = 0  # ops queued so far
        self._sent = 0  # ops sent to the store's process so far
        self._committed = 0  # ops committed so far
        self._commits = 0  # transactions committed
        self._send_due = False  # a send of what has queued is scheduled
        #: seconds the store's process spent writing batches (bench/dispatch.py reports it per turn)
        self.commit_seconds = {"process": 0.0}
        self._waiters: deque[tuple[int, asyncio.Future[bool]]] = deque()  # by op number, ascending
        self._process: subprocess.Popen | None = None
        self._outbox = bytearray()  # frames for the store's process that its pipe has not taken yet
        self._writing_out = False  # the loop watches the pipe to write the rest of `_outbox`
        self._inbox = bytearray()  # what it sent that is not a whole frame yet
        self._answers: dict[int, asyncio.Queue[tuple]] = {}  # read -> what the store's process answered
        self._reads = itertools.count(1)
        self._lookups: tuple[Any, Any] | None = None  # the pipes of the one read the loop waits for in place
        self._ended: str | None = None  # why the store's process ended, when it did before a close
        self._journal: dict[str, list[JournalEntry]] = {}  # thread key -> its journaled turns, by seq
        self._recovered: list[ThreadKey] = []  # threads with turns journaled by an earlier process
        self._seq = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        #: seconds `close` waits for queued writes while the store cannot write
        self.close_timeout = 10.0

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Open, check and migrate the file, load what the hot path answers from memory, then
        hand the file to the store's process. A file that is not a sound botkit store fails
        here, with its path, and leaves nothing open."""
        path = self.path
        if path == ":memory:":
            self._scratch = tempfile.mkdtemp(prefix="botkit-memory-store-")
            path = os.path.join(self._scratch, "store.db")
        self._target = _target(path, self.exclusive)
        self._db = await aiosqlite.connect(self._target[0], uri=self._target[1], isolation_level=None)
        try:
            await self._load()
        except BaseException as exc:
            self._remove_scratch()
            raise self._unusable(exc) from exc
        finally:
            await self._db.close()
            self._db = None
        self._loop = asyncio.get_running_loop()
        self._closing = False
        try:
            await self._start_process()
        except BaseException:
            self._remove_scratch()
            raise

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _unusable(self, exc: BaseException) -> BaseException:
        """What to raise for `exc`, met opening the file."""
        if isinstance(exc, sqlite3.Error) and sqlite_process.is_lock(exc):
            return StoreUnusable(f"{self.path} is in use by another process (a running bot holds its store for"
                                 " itself: stop it first, or see store.exclusive)")
        if isinstance(exc, sqlite3.DatabaseError):
            return StoreUnusable(f"{self.path}: {exc}{_why_not_writable(self.path)}")
        return exc

    async def _start_process(self) -> None:
        """Start the store's process and wait until it has the file open."""
        assert self._loop is not None
        lookup_in, lookup_requests = os.pipe()
        lookup_answers, lookup_out = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-P", sqlite_process.__file__, str(lookup_in), str(lookup_out)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(lookup_in, lookup_out))
        except BaseException:
            os.close(lookup_requests)
            os.close(lookup_answers)
            raise
        finally:
            os.close(lookup_in)
            os.close(lookup_out)
        assert process.stdin is not None and process.stdout is not None
        self._lookups = (os.fdopen(lookup_requests, "wb"), os.fdopen(lookup_answers, "rb"))
        process.stdin.write(sqlite_process.frame((self._target[0], self._target[1], list(self._pragmas))))
        process.stdin.flush()
        opened = await asyncio.to_thread(sqlite_process.read_frame, process.stdout)
        if opened is None or opened[0] != "ready":
            await asyncio.to_thread(self._end_process, process)
            if opened is None:
                raise StoreUnusable(f"{self.path}: the store's process ended as it started (exit code"
                                    f" {process.returncode})")
            error = sqlite3.OperationalError(opened[2])
            error.sqlite_errorname = opened[1]  # type: ignore[attr-defined]
            raise self._unusable(error)
        self._process = process
        self._ended = None
        self._inbox.clear()
        for pipe in (process.stdin, process.stdout):
            os.set_blocking(pipe.fileno(), False)
            if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: room for a few batches (64 KiB otherwise)
                with contextlib.suppress(OSError):
                    fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self._loop.add_reader(process.stdout.fileno(), self._on_frames)

    def _end_process(self, process: subprocess.Popen, timeout: float = _PROCESS_EXIT, *, rest: bytes = b"") -> None:
        """Write `rest` to `process` as it reads, wait for it to end (killed past `timeout` in
        all), and close the pipes to it."""
        deadline = time.monotonic() + timeout
        unwritten = memoryview(rest)
        while unwritten and process.stdin is not None:
            fd = process.stdin.fileno()
            if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                break
            try:
                unwritten = unwritten[os.write(fd, unwritten):]
            except BlockingIOError:
                continue
            except OSError:  # (gone meanwhile)
                break
        for pipe in (process.stdin, *(self._lookups or ())):
            try:
                pipe.close()
            except OSError:
                pass
        self._lookups = None
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("store %s: its process did not end within %g s; killed", self.path, timeout)
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    async def _load(self) -> None:
        assert self._db is not None
        for pragma in self._pragmas:  # the busy timeout first: the process of a bot just stopped may be ending
            await self._db.execute(pragma)
        await self._db.execute("PRAGMA journal_mode=WAL")
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

    async def close(self) -> None:
        """Flush and close; while the store cannot write, give up after `close_timeout` seconds
        (what was committed stays: the journal has every turn whose delivery was acked)."""
        process = self._process
        if process is None:  # (or it ended by itself: `_process_gone` saw to it)
            self._remove_scratch()
            return
        give_up = False
        try:
            await asyncio.wait_for(self.flush(), self.close_timeout)
        except TimeoutError:
            log.error("store %s: %d writes not committed after %g s (%s); closing without them",
                      self.path, self._queued - self._committed, self.close_timeout, self.fault)
            give_up = True
        self._closing = True
        self._send(("close", give_up))
        rest = bytes(self._outbox)  # what the pipe has not taken yet: written as the process reads it
        self._stop_reading()
        await asyncio.to_thread(self._end_process, process, rest=rest)
        self._remove_scratch()

    async def flush(self) -> None:
        if self._committed < self._queued and self._process is not None:
            self._send_ops()
            await self._committed_through(self._queued)

    async def ping(self) -> bool:
        if self._process is None or self.fault is not None:
            return False
        try:
            return await asyncio.wait_for(self._fetch("SELECT 1 AS one", ()), 5.0) == [{"one": 1}]
        except Exception:
            return False

    # -- group commit -----------------------------------------------------------------
    #
    # Writes queue in `_ops` and go to the store's process in batches, one frame each, which
    # it commits in order, as many as have come in one transaction. A batch goes as soon as
    # `_SEND_AT` writes have queued, and what is left at the end of the loop iteration after
    # them: so the store's process commits the first batches of an iteration while the loop
    # still runs its turns, and the turns waiting for them go on in the next iteration.

    def _queue(self, sql: str, params: Any) -> None:
        """Queue a write (group-committed, write-behind)."""
        self._ops.append((sql, params))
        self._queued += 1
        if self._queued - self._sent >= _SEND_AT:
            self._send_ops()
        elif not self._send_due:
            self._send_due = True
            self._loop.call_soon(self._send_ops)  # type: ignore[union-attr]

    def _queue_durable(self, sql: str, params: Any) -> asyncio.Future[bool]:
        """Queue a write; what resolves (True) once it is committed."""
        self._queue(sql, params)
        return self._committed_through(self._queued)

    def _committed_through(self, op: int) -> asyncio.Future[bool]:
        assert self._loop is not None
        future = self._loop.create_future()
        if op <= self._committed:
            future.set_result(True)
        elif self._ended:
            future.set_exception(sqlite3.OperationalError(f"{self.path}: {self._ended}"))
        else:
            self._waiters.append((op, future))
        return future

    def _send_ops(self) -> None:
        """What has queued, to the store's process (journal entries encoded as they are now)."""
        self._send_due = False
        ops = self._ops
        if not ops or self._process is None:
            return
        self._ops = []
        self._sent = self._queued
        batch = _group(ops)
        self._send(("write", self._sent, [(sql, batch[sql]) for sql in _WRITE_ORDER if sql in batch]))

    def _send(self, message: tuple) -> None:
        """Send `message` to the store's process without waiting: what its pipe does not take
        now goes when it can, after what waits already."""
        if self._process is None:
            return
        data = sqlite_process.frame(message)
        if self._outbox:
            self._outbox += data
        else:
            self._write_out(data)  # the usual case: the pipe takes it all, with no copy

    def _write_out(self, data: bytes | None = None) -> None:
        """Write `data` (None: what waits in `_outbox`) to the store's process; the loop
        watches the pipe for as long as something waits."""
        process = self._process
        if process is None or process.stdin is None:
            return
        fd = process.stdin.fileno()
        try:
            written = os.write(fd, self._outbox if data is None else data)
        except BlockingIOError:
            written = 0
        except BrokenPipeError:  # it is gone: `_on_frames` says so
            self._outbox.clear()
            data, written = None, 0
        if data is None:
            del self._outbox[:written]
        elif written < len(data):
            self._outbox += memoryview(data)[written:]
        if bool(self._outbox) != self._writing_out:
            self._writing_out = not self._writing_out
            if self._writing_out:
                self._loop.add_writer(fd, self._write_out)  # type: ignore[union-attr]
            else:
                self._loop.remove_writer(fd)  # type: ignore[union-attr]

    def _on_frames(self) -> None:
        """What the store's process sent: commits, faults, log lines, answers to reads."""
        process = self._process
        if process is None or process.stdout is None:
            return
        try:
            data = os.read(process.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self._process_gone()
            return
        self._inbox += data
        for message in sqlite_process.frames(self._inbox):
            kind = message[0]
            if kind == "committed":
                self._commits += 1
                self.commit_seconds["process"] += message[2]
                self._now_committed(message[1])
            elif kind in ("rows", "count", "error"):
                answers = self._answers.get(message[1])
                if answers is not None:  # (none: a stream its reader stopped)
                    answers.put_nowait(message)
            elif kind == "fault":
                self._fault_changed(message[1])
            elif kind == "log":
                log.log(message[1], "store %s: %s", self.path, message[2])

    def _fault_changed(self, reason: str | None) -> None:
        if reason is not None:
            log.warning("store %s cannot write (%s); new deliveries are refused and the writes retried until it can",
                        self.path, reason)
        self.fault = reason

    def _process_gone(self) -> None:
        """The store's process ended: at a close, as asked; otherwise nothing more is committed
        (and what was not is not acked either), so the bot refuses deliveries until restarted."""
        process = self._process
        self._stop_reading()
        if process is None:
            return
        self._end_process(process, 1.0)  # it closed its end: it has ended, or is ending
        ended = f"the store's process ended (exit code {process.returncode})"
        self._ended = ended
        if not self._closing:
            self.fault = f"{ended}; the bot must be restarted"
            log.error("store %s: %s", self.path, self.fault)
        for request, answers in list(self._answers.items()):
            answers.put_nowait(("error", request, "", ended))
        waiters, self._waiters = self._waiters, deque()
        for _, future in waiters:  # what waits for a commit is told it will not come
            if not future.done():
                future.set_exception(sqlite3.OperationalError(f"{self.path}: {ended}"))

    def _stop_reading(self) -> None:
        process, self._process = self._process, None
        if process is None or self._loop is None:
            return
        if process.stdout is not None:
            self._loop.remove_reader(process.stdout.fileno())
        if self._writing_out and process.stdin is not None:
            self._loop.remove_writer(process.stdin.fileno())
        self._writing_out = False
        self._outbox.clear()

    def _now_committed(self, op: int) -> None:
        """Every op through `op` is committed."""
        self._committed = op
        claimed, claiming = self._claimed_at, self._claiming
        while claimed and claimed[0][0] <= op:  # committed claims: the database answers for them now
            claiming.pop(claimed.popleft()[1], None)
        if not claiming:  # a dict keeps the table of its largest size: a burst's would stay (4 MB at 100,000)
            self._claiming = {}
        waiters = self._waiters
        while waiters and waiters[0][0] <= op:
            future = waiters.popleft()[1]
            if not future.done():  # a waiter may have been cancelled, its future with it
                future.set_result(True)

    # -- reads (in the store's process) --------------------------------------------------------

    async def _answers_to(self, how: str, sql: str, params: Sequence[Any]) -> AsyncIterator[tuple]:
        """Send a read to the store's process; its answers, as they come."""
        if self._process is None:
            raise sqlite3.OperationalError(f"the store {self.path} is not open")
        request = next(self._reads)
        answers: asyncio.Queue[tuple] = asyncio.Queue()
        self._answers[request] = answers
        try:
            self._send(("read", request, how, sql, list(params)))
            while True:
                answer = await answers.get()
                if answer[0] == "error":
                    raise _read_error(answer[2], answer[3])
                yield answer
                if answer[0] == "count" or answer[4]:
                    return
        finally:
            del self._answers[request]

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows of a read, as committed now (without waiting for what is queued)."""
        found: list[dict[str, Any]] = []
        async for _, _, names, rows, _ in self._answers_to("rows", sql, params):
            found += (dict(zip(names, row)) for row in rows)
        return found

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
        """The committed expiry of `event_id`: the event loop waits for it in place (a round
        trip to the store's process, ~0.1 ms), rare enough not to be worth an await, which
        would let a later delivery of the same thread be admitted first."""
        if self._lookups is None:
            raise sqlite3.OperationalError(f"the store {self.path} is not open")
        requests, answers = self._lookups
        requests.write(sqlite_process.frame((event_id,)))
        requests.flush()
        answer = sqlite_process.read_frame(answers)
        if answer is None or len(answer) > 1:
            raise sqlite3.OperationalError(f"the store {self.path} could not look up an event id"
                                           f" ({answer[1] if answer else 'its process ended'})")
        return answer[0]

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
        rows = await self._rows(f"SELECT {_SESSION_FIELDS} FROM sessions WHERE thread = ? AND ended_at IS NULL",
                                (key,))  # (after its last save, which may still be queued)
        row = tuple(rows[0].values()) if rows else None
        if key in self._sessions:  # read back by another call meanwhile
            return self._sessions[key]
        if row is None:
            return None
        self._evicted.discard(hash(key))
        return _session(row, thread)

    async def _load_recent(self, session: int, n: int) -> list[tuple[str, str]]:
        rows = await self._rows(
            "SELECT question, answer FROM turns WHERE session = ? AND status = 'complete' ORDER BY id DESC LIMIT ?",
            (session, n))
        return [(row["question"], row["answer"]) for row in reversed(rows)]

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
        if answer is None or session is None:
            self._queue(_DELETE_JOURNAL, entry)
            return DONE
        touch = None
        if session.session_id == session.written_session_id:
            touch = (session.last_active, session.turn_count, session.id)
        else:  # the backend gave it a (new) id
            self._save(session, None)
        self._queue(_CLOSE_TURN, (entry, touch, turn_row(entry, session, answer, _json)))  # one op: a turn's end
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
        await self.flush()
        return await self._fetch(sql, params)

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        await self.flush()
        count = 0
        async for answer in self._answers_to("execute", sql, params):
            count = answer[2]
        return count

    async def _stream(self, sql: str, params: Sequence[Any]) -> AsyncIterator[dict[str, Any]]:
        await self.flush()
        async with contextlib.aclosing(self._answers_to("rows", sql, params)) as answers:
            async for _, _, names, rows, _ in answers:
                for row in rows:
                    yield dict(zip(names, row))

    async def _run(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> int:
        """One statement at a time, in autocommit: the group-commit writer owns transactions."""
        return sum([await self._execute(sql, params) for sql, params in statements])


def _read_error(name: str, message: str) -> sqlite3.Error:
    """A read's error in the store's process, raised here as sqlite3 would have."""
    error = (sqlite3.IntegrityError if name.startswith("SQLITE_CONSTRAINT") else sqlite3.OperationalError)(message)
    error.sqlite_errorname = name  # type: ignore[attr-defined]
    return error
