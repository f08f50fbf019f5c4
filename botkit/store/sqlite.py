"""The SQLite store: aiosqlite, WAL, versioned migrations, group-committed writes.

This store assumes it is the only process writing its file (one replica), which lets
it answer the per-message questions (was this event seen? which session does this
thread have?) from memory (loaded at open: the event ids within their TTL and the
active sessions, a few hundred bytes each; idle sessions are ended by the scheduler)
and write behind: every write is queued and a single writer
task commits whatever has queued in one transaction (group commit). Several replicas
need a shared store (PostgreSQL) instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection
from typing import Any

import aiosqlite

from botkit.events import ThreadKey
from botkit.store.base import InflightAnswer, SessionRecord, Store, TurnRecord

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
# An id claimed again after its expiry gets the new expiry.
_INSERT_EVENT = ("INSERT INTO events (event_id, expires_at) VALUES (?, ?)"
                 " ON CONFLICT(event_id) DO UPDATE SET expires_at = excluded.expires_at")
_UPSERT_INFLIGHT = "INSERT OR REPLACE INTO inflight (event_id, thread, adapter, messages, started_at) VALUES (?, ?, ?, ?, ?)"
_DELETE_INFLIGHT = "DELETE FROM inflight WHERE event_id = ?"
_INSERT_TURN = (
    "INSERT INTO turns (session, thread, event_id, adapter, backend, user, question, answer, status, sources,"
    " score, error, message_ids, first_text_after, duration, edits, flags, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

def _json(value: list | dict) -> str:
    """JSON for a column; empty values (most turns' flags) skip the encoder."""
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value)


_WRITE_ORDER = (_INSERT_EVENT, _UPSERT_SESSION, _UPSERT_INFLIGHT, _DELETE_INFLIGHT, _INSERT_TURN)


class SQLiteStore(Store):
    def __init__(self, path: str, *, events_ttl: float = 48 * 3600) -> None:
        self.path = path
        self.events_ttl = events_ttl
        self._db: aiosqlite.Connection | None = None
        self._events: OrderedDict[str, float] = OrderedDict()  # event id -> expiry, oldest first
        self._sessions: dict[str, SessionRecord] = {}  # every active session, by thread
        self._next_session_id = 1
        self._pending: dict[str, list[tuple]] = {}  # SQL -> parameter rows
        # Answers in progress matter only if the process dies before they finish; most
        # finish before the writer runs, so their rows are never encoded or written.
        self._inflight: dict[str, tuple] = {}  # event id -> latest inflight row not yet written
        self._inflight_written: set[str] = set()  # event ids with a row in the table
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._migrate()
        now = time.time()
        async with self._db.execute("SELECT event_id, expires_at FROM events WHERE expires_at > ? ORDER BY expires_at",
                                    (now,)) as cur:
            async for event_id, expires in cur:
                self._events[event_id] = expires
        async with self._db.execute("SELECT event_id FROM inflight") as cur:
            self._inflight_written.update([row[0] async for row in cur])
        async with self._db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions") as cur:
            (max_id,) = await cur.fetchone()
        self._next_session_id = max_id + 1
        async with self._db.execute("SELECT id, thread, backend, session_id, created_at, last_active, turn_count"
                                    " FROM sessions WHERE ended_at IS NULL") as cur:
            async for row in cur:
                self._sessions[row[1]] = SessionRecord(row[0], ThreadKey.parse(row[1]), *row[2:])
        self._drained.set()
        self._writer = asyncio.create_task(self._write_loop(), name="botkit-store-writer")

    async def _migrate(self) -> None:
        assert self._db
        async with self._db.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()
        if version > len(MIGRATIONS):
            raise RuntimeError(f"{self.path}: schema version {version} is newer than this botkit knows")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            log.info("store %s migrated to schema version %d", self.path, number)

    async def close(self) -> None:
        if self._db is None:
            return
        await self.flush()
        self._closing = True
        self._wake.set()
        if self._writer:
            await self._writer
        await self._db.close()
        self._db = None

    async def flush(self) -> None:
        while self._pending or self._inflight or not self._drained.is_set():
            self._wake.set()
            await self._drained.wait()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            async with self._db.execute("SELECT 1") as cur:
                return (await cur.fetchone()) == (1,)
        except Exception:
            return False

    # -- group commit -----------------------------------------------------------------

    def _queue(self, sql: str, params: tuple) -> None:
        rows = self._pending.get(sql)
        if rows is None:
            self._pending[sql] = [params]
        else:
            rows.append(params)
        self._changed()

    def _changed(self) -> None:
        if self._drained.is_set():
            self._drained.clear()
            self._wake.set()

    async def _write_loop(self) -> None:
        """Commit everything queued so far in one transaction, statement kind by kind.

        The kinds run in `_WRITE_ORDER`, which is what makes grouping safe: a session
        row exists before the turns that reference it, and is created before it is ended.
        """
        assert self._db
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if self._inflight:
                batch[_UPSERT_INFLIGHT] = [(e, t, a, json.dumps(m), s) for e, t, a, m, s in self._inflight.values()]
                self._inflight_written.update(self._inflight)
                self._inflight = {}
            if batch:
                try:
                    await self._db.execute("BEGIN")
                    for sql in _WRITE_ORDER:
                        rows = batch.get(sql)
                        if rows:
                            await self._db.executemany(sql, rows)
                    await self._db.execute("COMMIT")
                except Exception:
                    log.exception("store write of %d rows failed; writing them one by one",
                                  sum(map(len, batch.values())))
                    await self._db.execute("ROLLBACK")
                    await self._write_one_by_one(batch)
            if not self._pending and not self._inflight:
                self._drained.set()
                if self._closing:
                    return
            else:
                self._wake.set()

    async def _write_one_by_one(self, batch: dict[str, list[tuple]]) -> None:
        """After a failed batch: keep every row that can be written, log the ones that cannot."""
        assert self._db
        for sql in _WRITE_ORDER:
            for row in batch.get(sql, ()):
                try:
                    await self._db.execute(sql, row)
                except Exception as exc:
                    log.error("store row dropped (%s): %s", exc, sql.split("(")[0].strip())

    # -- events ---------------------------------------------------------------------------

    async def claim_event(self, event_id: str) -> bool:
        now = time.time()
        events = self._events
        expiry = events.get(event_id)
        if expiry is not None and expiry > now:
            return False
        while events:  # drop expired ids from the front; expiries grow with insertion order
            oldest_id, oldest_expiry = next(iter(events.items()))
            if oldest_expiry > now:
                break
            del events[oldest_id]
        expires = now + self.events_ttl
        events[event_id] = expires
        self._queue(_INSERT_EVENT, (event_id, expires))
        return True

    # -- sessions -----------------------------------------------------------------------------

    async def active_session(self, thread: ThreadKey, backend: str, *, with_recent: int = 0) -> SessionRecord:
        key = str(thread)
        record = self._sessions.get(key)
        if record is not None and record.backend != backend:
            await self.end_session(thread)
            record = None
        if record is None:
            now = time.time()
            record = SessionRecord(self._next_session_id, thread, backend, None, now, now, 0, [])
            self._next_session_id += 1
            self._sessions[key] = record
            await self.save_session(record)
        if with_recent and record.recent is None:
            record.recent = await self._load_recent(record.id, with_recent)
        return record

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
        record = self._sessions.pop(str(thread), None)
        if record is not None:
            self._save(record, time.time())
        return record

    def _save(self, record: SessionRecord, ended_at: float | None) -> None:
        self._queue(_UPSERT_SESSION, (record.id, str(record.thread), record.backend, record.session_id,
                                      record.created_at, record.last_active, record.turn_count, ended_at))

    # -- turns and answers in progress ------------------------------------------------------

    async def answer_started(self, event_id: str, thread: ThreadKey, adapter: str,
                             messages: list[dict[str, Any]]) -> None:
        self._inflight[event_id] = (event_id, str(thread), adapter, messages, time.time())
        self._changed()

    def _answer_done(self, event_id: str) -> None:
        self._inflight.pop(event_id, None)
        if event_id in self._inflight_written:
            self._inflight_written.discard(event_id)
            self._queue(_DELETE_INFLIGHT, (event_id,))

    async def record_turn(self, turn: TurnRecord) -> None:
        self._answer_done(turn.event_id)
        self._queue(_INSERT_TURN, (
            turn.session, str(turn.thread), turn.event_id, turn.adapter, turn.backend, turn.user, turn.question,
            turn.answer, turn.status, _json(turn.sources), turn.score, turn.error, _json(turn.message_ids),
            turn.first_text_after, turn.duration, turn.edits, _json(turn.flags), turn.created_at))
        record = self._sessions.get(str(turn.thread))
        if record is not None and record.id == turn.session and record.recent is not None and turn.status == "complete":
            record.recent.append((turn.question, turn.answer))
            del record.recent[:-20]

    async def interrupted_answers(self) -> list[InflightAnswer]:
        assert self._db
        await self.flush()
        async with self._db.execute(
                "SELECT event_id, thread, adapter, messages, started_at FROM inflight ORDER BY started_at") as cur:
            rows = await cur.fetchall()
        return [InflightAnswer(r[0], ThreadKey.parse(r[1]), r[2], json.loads(r[3]), r[4]) for r in rows]

    async def forget_inflight(self, event_id: str) -> None:
        self._answer_done(event_id)

    async def prune(self, *, turns_before: float | None = None) -> int:
        assert self._db
        await self.flush()
        removed = 0
        async with self._db.execute("DELETE FROM events WHERE expires_at <= ?", (time.time(),)) as cur:
            removed += cur.rowcount
        if turns_before is not None:
            # one statement each, in autocommit: the group-commit writer owns transactions
            for sql in ("DELETE FROM feedback WHERE event_id IN (SELECT event_id FROM turns WHERE created_at < ?)",
                        "DELETE FROM turns WHERE created_at < ?",
                        "DELETE FROM sessions WHERE ended_at IS NOT NULL AND last_active < ?"
                        " AND NOT EXISTS (SELECT 1 FROM turns WHERE turns.session = sessions.id)"):
                async with self._db.execute(sql, (turns_before,)) as cur:
                    removed += cur.rowcount
        return removed

    # -- housekeeping and administration --------------------------------------------------------

    async def expire_idle(self, idle_before: float, *, busy: Collection[ThreadKey] = ()) -> list[SessionRecord]:
        idle = [r for r in self._sessions.values() if r.last_active < idle_before and r.thread not in busy]
        for record in idle:
            await self.end_session(record.thread)
        return idle

    async def count_sessions(self) -> int:
        return len(self._sessions)

    async def feedback_counts(self) -> dict[str, int]:
        assert self._db
        await self.flush()
        async with self._db.execute(
                "SELECT COALESCE(value, 'comment'), COUNT(*) FROM feedback GROUP BY 1") as cur:
            return {value: count for value, count in await cur.fetchall()}

    _SESSION_COLUMNS = ("SELECT s.id, s.thread, s.backend, s.session_id, s.created_at, s.last_active, s.turn_count,"
                        " s.ended_at, (SELECT adapter FROM turns t WHERE t.session = s.id ORDER BY t.id LIMIT 1)"
                        " AS adapter FROM sessions s")

    async def _sessions_where(self, where: str, params: tuple) -> AsyncIterator[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute(f"{self._SESSION_COLUMNS} {where}", params) as cur:
            names = [d[0] for d in cur.description]
            async for row in cur:
                yield dict(zip(names, row))

    async def list_sessions(self, *, adapter: str | None = None, channel: str | None = None,
                            since: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        clauses, params = ["s.last_active >= ?"], [since or 0.0]
        if adapter is not None:
            clauses.append("EXISTS (SELECT 1 FROM turns t WHERE t.session = s.id AND t.adapter = ?)")
            params.append(adapter)
        if channel is not None:  # narrowed in SQL, matched exactly on the parsed key below
            clauses.append("instr(s.thread, ?) > 0")
            params.append(f":{channel}:")
        found: list[dict[str, Any]] = []
        async for row in self._sessions_where(f"WHERE {' AND '.join(clauses)} ORDER BY s.last_active DESC, s.id DESC",
                                              tuple(params)):
            if channel is None or ThreadKey.parse(row["thread"]).channel == channel:
                found.append(row)
                if len(found) >= limit:
                    break
        return found

    async def find_sessions(self, ref: str) -> list[dict[str, Any]]:
        where, params = "WHERE s.thread = ? OR s.session_id = ?", (ref, ref)
        if ref.isdigit():
            where, params = where + " OR s.id = ?", params + (int(ref),)
        return [row async for row in self._sessions_where(where + " ORDER BY s.id", params)]

    async def delete_session(self, session: int) -> None:
        assert self._db
        for record in list(self._sessions.values()):
            if record.id == session:
                await self.end_session(record.thread)
        await self.flush()
        for sql in ("DELETE FROM feedback WHERE event_id IN (SELECT event_id FROM turns WHERE session = ?)",
                    "DELETE FROM turns WHERE session = ?", "DELETE FROM sessions WHERE id = ?"):
            await self._db.execute(sql, (session,))

    async def count_turns(self, *, since: float | None = None) -> int:
        assert self._db
        await self.flush()
        async with self._db.execute("SELECT COUNT(*) FROM turns WHERE created_at >= ?", (since or 0.0,)) as cur:
            (count,) = await cur.fetchone()
        return count

    async def iter_turns(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute(
                "SELECT t.*, s.session_id FROM turns t JOIN sessions s ON s.id = t.session"
                " WHERE t.created_at >= ? ORDER BY t.id", (since or 0.0,)) as cur:
            names = [d[0] for d in cur.description]
            async for row in cur:
                turn = dict(zip(names, row))
                for key in _JSON_COLUMNS:
                    turn[key] = json.loads(turn[key])
                yield turn

    # -- feedback ---------------------------------------------------------------------------------

    async def turn_for_message(self, thread: ThreadKey, message_id: str) -> TurnRecord | None:
        assert self._db
        await self.flush()
        async with self._db.execute(
            "SELECT * FROM turns WHERE thread = ? AND EXISTS"
            " (SELECT 1 FROM json_each(turns.message_ids) WHERE value = ?) ORDER BY id DESC LIMIT 1",
            (str(thread), message_id)) as cur:
            row = await cur.fetchone()
            names = [d[0] for d in cur.description]
        return _turn_record(dict(zip(names, row))) if row else None

    async def record_feedback(self, event_id: str, user: str, value: str | None, comment: str | None,
                              at: float) -> None:
        assert self._db
        await self.flush()
        await self._db.execute(
            "INSERT INTO feedback (event_id, user, value, comment, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(event_id, user) DO UPDATE SET value = COALESCE(excluded.value, value),"
            " comment = COALESCE(excluded.comment, comment), at = excluded.at",
            (event_id, user, value, comment, at))

    async def list_feedback(self, since: float | None = None) -> list[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute(
            "SELECT f.at, f.event_id, t.thread, t.adapter, t.backend, f.user, f.value, f.comment, t.question,"
            " t.answer, t.score FROM feedback f JOIN turns t ON t.event_id = f.event_id"
            " WHERE f.at >= ? ORDER BY f.at", (since or 0.0,)) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in await cur.fetchall()]

    # -- reading history (CLI, admin) ------------------------------------------------------------

    async def turns_of(self, session: int) -> list[dict[str, Any]]:
        assert self._db
        await self.flush()
        async with self._db.execute("SELECT * FROM turns WHERE session = ? ORDER BY id", (session,)) as cur:
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row)) for row in await cur.fetchall()]
        for row in rows:
            for key in _JSON_COLUMNS:
                row[key] = json.loads(row[key])
        return rows


_JSON_COLUMNS = ("sources", "message_ids", "flags")


def _turn_record(row: dict[str, Any]) -> TurnRecord:
    for key in _JSON_COLUMNS:
        row[key] = json.loads(row[key])
    return TurnRecord(row["session"], ThreadKey.parse(row["thread"]), row["event_id"], row["adapter"], row["backend"],
                      row["user"], row["question"], row["answer"], row["status"], row["created_at"], row["sources"],
                      row["score"], row["error"], row["message_ids"], row["first_text_after"], row["duration"],
                      row["edits"], row["flags"])

