"""The SQLite store's process: the one that holds the database file and every connection to it.

Why a process: committing a turn's rows costs about 17 µs of CPU, a quarter of a turn's,
and on the event loop that time is the whole bot's. A thread cannot take it off the loop:
`executemany` gives the GIL up for every row it steps and then waits up to the switch
interval to get it back while the loop is busy. A process commits on the machine's other
core, and the event loop does not wait for it: it sends a batch as soon as a few hundred
writes have queued, so most of a loop iteration's writes are committed by the time the
loop looks again (bench/dispatch.py: 1.2x the turns/s of committing on the loop).

The file is opened with SQLite's `unix-excl` VFS (see StoreConfig.exclusive), so no other
process can open it while this one runs, and reads go through here too. The bot's side,
`botkit.store.sqlite.SQLiteStore`, loads what it keeps in memory before it starts this
process, and from then on talks to it in frames (a 4-byte length, a pickled tuple):

    to this process (stdin)                   from it (stdout)
    (target, uri, pragmas): the first         ("ready",) | ("unusable", sqlite_errorname, message)
    ("write", through, statements)            ("committed", through, seconds)
    ("read", id, how, sql, params)            ("rows", id, names, rows, done) | ("count", id, n)
                                              | ("error", id, sqlite_errorname, message)
    ("close", give_up)                        ("fault", reason or None), ("log", level, message)

`through` numbers the writes: "committed" says every write through it is durable.
`statements` is [(sql, rows)] in the order they must run. A second pair of pipes carries
the one read the event loop waits for in place (an event id's stored expiry, rarely asked).

Writes that fail for a fault of the store (a full disk, a lock held by someone else, an
I/O error) are retried until they succeed, and the fault is reported while it lasts; a
row refused for itself (a bug) is dropped with an error and the rest written. This file
imports nothing of botkit, so the process starts in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections import deque
from typing import Any, BinaryIO

#: seconds between looks at whether to checkpoint
CHECKPOINT_TICK = 0.25
#: commits after which a checkpoint runs even while writes go on (the WAL stays small)
CHECKPOINT_COMMITS = 2_000
RETRY_FIRST, RETRY_MAX = 0.05, 2.0  # seconds between attempts to write while the store fails
#: the writer's busy timeout is short, so that a close is never stuck behind it; a lock held
#: elsewhere becomes a fault only once it has lasted this long
WRITER_BUSY_TIMEOUT_MS, LOCK_PATIENCE = 100, 5.0
#: rows a read sends per frame
READ_CHUNK = 1_000
#: errors of the store rather than of a row: retried until they are over (BUSY and LOCKED after
#: the busy timeout: another process holds the file)
FAULTS = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY",
                    "SQLITE_CANTOPEN", "SQLITE_NOMEM", "SQLITE_PROTOCOL", "SQLITE_CORRUPT", "SQLITE_NOTADB",
                    "SQLITE_PERM", "SQLITE_AUTH"})

_HEADER = struct.Struct("<I")

Statements = list[tuple[str, list[tuple]]]


def primary_code(exc: sqlite3.Error) -> str:
    """SQLITE_IOERR of SQLITE_IOERR_WRITE."""
    return "_".join(getattr(exc, "sqlite_errorname", "").split("_")[:2])


def is_fault(exc: sqlite3.Error) -> bool:
    return primary_code(exc) in FAULTS


def is_lock(exc: sqlite3.Error) -> bool:
    return primary_code(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED")


def frame(message: tuple) -> bytes:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> tuple | None:
    """The next message on `stream` (which blocks), or None at its end."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    payload = _read_exactly(stream, _HEADER.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            return None
        data += more
    return data


def frames(buffer: bytearray) -> list[tuple]:
    """The complete messages at the start of `buffer`, taken out of it."""
    messages = []
    start, end = 0, len(buffer)
    while end - start >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, start)
        if end - start - _HEADER.size < size:
            break
        start += _HEADER.size
        messages.append(pickle.loads(buffer[start:start + size]))
        start += size
    del buffer[:start]
    return messages


class StoreProcess:
    def __init__(self, target: str, uri: bool, pragmas: list[str], out: BinaryIO) -> None:
        self.target, self.uri, self.pragmas = target, uri, pragmas
        self._out = out
        self._sending = threading.Lock()
        self._changed = threading.Condition()
        self._requests = -1  # the descriptor the bot's requests come on
        self._received = bytearray()  # of them, what is not a whole frame yet
        self._gone = False  # the bot closed its end (or ended)
        self._batches: list[tuple[int, Statements]] = []  # (through, statements) to write
        self._reads: deque[tuple] = deque()  # for the reader thread
        self._closing = False
        self._give_up_at = float("inf")  # closing: when the writer stops retrying a store that cannot write
        self._fault: str | None = None
        self.commits = 0

    # -- talking to the bot -----------------------------------------------------------------

    def send(self, message: tuple) -> None:
        data = frame(message)
        with self._sending:
            self._out.write(data)
            self._out.flush()

    def log(self, level: int, message: str) -> None:
        self.send(("log", level, message))

    def connect(self, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(self.target, uri=self.uri, isolation_level=None, check_same_thread=False)
        for pragma in self.pragmas:
            db.execute(pragma)
        if busy_timeout_ms is not None:
            db.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        return db

    def serve(self, requests: int, lookups: BinaryIO, answers: BinaryIO) -> None:
        """Open the connections, then commit what comes on `requests` until a close (or the
        bot's end). Reads and lookups have threads of their own; the writes are this thread's,
        so a batch is committed as soon as it has come, with no hand-off between threads."""
        try:
            writer_db = self.connect(WRITER_BUSY_TIMEOUT_MS)
            writer_db.execute("PRAGMA wal_autocheckpoint=0")  # the reader checkpoints: commits never wait on it
            reader_db = self.connect()
            lookup_db = self.connect()
            lookup_db.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            self.send(("unusable", getattr(exc, "sqlite_errorname", ""), str(exc)))
            return
        reader = threading.Thread(target=self._read_loop, args=(reader_db,), name="reader")
        looker = threading.Thread(target=self._lookup_loop, args=(lookup_db, lookups, answers), name="lookup")
        reader.start()
        looker.start()
        self._requests, self._received = requests, bytearray()
        self.send(("ready",))
        try:
            self._write_loop(writer_db)
        finally:
            writer_db.close()
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            reader.join()
            looker.join()  # (its pipe ends as the bot closes it, or is gone)

    def _receive(self, timeout: float | None) -> None:
        """Take what the bot sent within `timeout` seconds (None: until something comes)."""
        if self._gone:  # nothing more will come (the pipe's end reads as ready forever)
            time.sleep(timeout or 0)
            return
        if timeout is not None and not select.select([self._requests], [], [], timeout)[0]:
            return
        data = os.read(self._requests, 1 << 20)
        if not data:  # the bot is gone (killed?): write what came, giving up soon if the store fails
            self._gone = True
            if not self._closing:
                self._closing = True
                self._give_up_at = time.monotonic() + LOCK_PATIENCE
            return
        self._received += data
        for message in frames(self._received):
            kind = message[0]
            if kind == "write":
                self._batches.append((message[1], message[2]))
            elif kind == "read":
                with self._changed:
                    self._reads.append(message[1:])
                    self._changed.notify_all()
            elif kind == "close":
                self._closing = True
                if message[1]:
                    self._give_up_at = time.monotonic()

    # -- writing ----------------------------------------------------------------------------

    def _write_loop(self, db: sqlite3.Connection) -> None:
        """Commit whatever batches have come, in one transaction (group commit)."""
        while True:
            if not self._batches:
                if self._closing:
                    return
                self._receive(None)
                continue
            self._receive(0)  # and whatever else has come meanwhile
            taken = list(self._batches)
            self._batches.clear()
            started = time.perf_counter()
            try:
                committed = self._commit(db, [s for _, statements in taken for s in statements])
            except Exception as exc:  # a bug: say so (deliveries are refused) rather than hang
                self.log(logging.ERROR, f"the writer failed; the bot must be restarted ({exc!r})")
                self.send(("fault", f"the store writer failed: {exc!r}"))
                return
            if not committed:
                return  # closing with the store still failing: the bot reports what was not written
            self.commits += 1
            self.send(("committed", taken[-1][0], time.perf_counter() - started))
            del taken  # not kept alive until the next write

    def _commit(self, db: sqlite3.Connection, statements: Statements) -> bool:
        """Write `statements` in one transaction, however long the store takes to be writable
        again: nothing is dropped for a fault of the store's. False only when closing gave up.
        Between attempts it takes what the bot sends (more writes, reads, a close)."""
        delay = RETRY_FIRST
        since = time.monotonic()
        while True:
            try:
                write(db, statements)
            except sqlite3.Error as exc:
                if self._gave_up():
                    return False
                if not is_fault(exc):
                    rows = sum(len(rows) for _, rows in statements)
                    if rows == 1:
                        raise  # the row itself is refused (`_write_rows` drops it)
                    self.log(logging.ERROR, f"a write of {rows} rows failed ({exc}); writing them one by one")
                    return self._write_rows(db, statements)
                if not is_lock(exc) or time.monotonic() - since >= LOCK_PATIENCE:
                    self._failing(exc)
                retry_at = time.monotonic() + delay
                while not self._gave_up() and (wait := retry_at - time.monotonic()) > 0:
                    self._receive(wait)
                if self._gave_up():
                    return False
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self._fault is not None:
                self.log(logging.WARNING, f"writes again ({self._fault} is over)")
                self._fault = None
                self.send(("fault", None))
            return True

    def _gave_up(self) -> bool:
        return self._closing and time.monotonic() >= self._give_up_at

    def _failing(self, exc: sqlite3.Error) -> None:
        """Report the fault (deliveries are refused meanwhile), once per kind of fault."""
        reason = f"{getattr(exc, 'sqlite_errorname', 'SQLITE_ERROR')}: {exc}"
        if reason != self._fault:
            self._fault = reason
            self.send(("fault", reason))

    def _write_rows(self, db: sqlite3.Connection, statements: Statements) -> bool:
        """A batch one of whose rows is refused (a bug, not a fault of the store): every
        other row is written, each in its own transaction, faults retried as for a batch."""
        for sql, rows in statements:
            for row in rows:
                try:
                    if not self._commit(db, [(sql, [row])]):
                        return False
                except sqlite3.Error as exc:
                    self.log(logging.ERROR, f"a row was dropped ({exc}): {sql.split('(')[0].strip()}")
        return True

    # -- reading and checkpointing ------------------------------------------------------------

    def _read_loop(self, db: sqlite3.Connection) -> None:
        """Answer reads in order; while none comes, move the WAL into the database file when
        the writer is idle (nothing committed for a tick) or has committed many times since.

        A checkpoint syncs the database file, and commits that land meanwhile wait for the
        disk: on the writer's connection that wait would fall on whichever turn commits next.
        So it runs here (PASSIVE), beside the writer."""
        checkpointed = seen = 0
        failing = False  # logged once until a checkpoint succeeds again
        try:
            while True:
                with self._changed:
                    if not self._reads and not self._closing:
                        self._changed.wait(CHECKPOINT_TICK)
                    if not self._reads and self._closing:
                        return
                    read = self._reads.popleft() if self._reads else None
                if read is not None:
                    self._read(db, *read)
                    continue
                commits = self.commits
                idle, seen = commits == seen, commits
                if commits == checkpointed or not (idle or commits - checkpointed >= CHECKPOINT_COMMITS):
                    continue
                checkpointed = commits
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # the writer reports the store's faults; this is the same one
                    if not failing:
                        self.log(logging.WARNING, f"a checkpoint failed ({exc}); retried while commits go on")
                    failing = True
                else:
                    failing = False
        finally:
            db.close()

    def _read(self, db: sqlite3.Connection, request: int, how: str, sql: str, params: Any) -> None:
        try:
            cursor = db.execute(sql, params)
            if how == "execute":
                self.send(("count", request, cursor.rowcount))
                return
            names = [d[0] for d in cursor.description or ()]
            while True:
                rows = cursor.fetchmany(READ_CHUNK)
                done = len(rows) < READ_CHUNK
                self.send(("rows", request, names, rows, done))
                if done:
                    return
        except sqlite3.Error as exc:
            self.send(("error", request, getattr(exc, "sqlite_errorname", ""), str(exc)))

    def _lookup_loop(self, db: sqlite3.Connection, lookups: BinaryIO, answers: BinaryIO) -> None:
        """The stored expiry of an event id, for the bot's event loop, which waits for it."""
        try:
            while (message := read_frame(lookups)) is not None:
                try:
                    row = db.execute("SELECT expires_at FROM events WHERE event_id = ?", (message[0],)).fetchone()
                    answer: tuple = (row[0] if row else None,)
                except sqlite3.Error as exc:
                    answer = (None, str(exc))
                answers.write(frame(answer))
                answers.flush()
        except OSError:  # the bot is gone
            pass
        finally:
            db.close()


def write(db: sqlite3.Connection, statements: Statements) -> None:
    """One transaction, statement by statement in order; on failure nothing of it is written."""
    try:
        db.execute("BEGIN")
        for sql, rows in statements:
            db.executemany(sql, rows)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def main() -> None:
    """argv: the lookup channel's two descriptors (requests in, answers out); the first
    frame on stdin is (target, uri, pragmas). Signals for the bot (Ctrl-C in its terminal,
    a stop) are the bot's to act on: this process ends when the bot closes it, or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lookups = os.fdopen(int(sys.argv[1]), "rb")
    answers = os.fdopen(int(sys.argv[2]), "wb")
    requests = sys.stdin.buffer.raw  # read unbuffered from here on: frames are taken as they come
    opening = read_frame(requests)
    if opening is None:
        return
    target, uri, pragmas = opening
    StoreProcess(target, uri, pragmas, sys.stdout.buffer).serve(requests.fileno(), lookups, answers)


if __name__ == "__main__":
    main()
