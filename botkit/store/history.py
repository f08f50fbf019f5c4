"""What SQLite and PostgreSQL stores share: history reads for people, retention, and the
tables plugins keep, in SQL both databases run.

Statements are written once, with `?` parameters; each store runs them through a few
primitives (`_rows`, `_execute`, `_stream`, `_run`) that see every write it has queued
and speak its driver's parameter style. What differs between the databases (JSON
functions, the turn path's batching) stays in each store.
"""

from __future__ import annotations

import json
import time
from contextlib import aclosing
from abc import abstractmethod
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any, ClassVar

from botkit.events import ThreadKey
from botkit.store.base import Store, StoreUnusable, TurnRecord
from botkit.store.tables import Dialect, PluginTables, Tables, turn_rows_deleted

_SESSIONS = ("SELECT s.id, s.thread, s.backend, s.session_id, s.created_at, s.last_active, s.turn_count,"
             " s.ended_at, (SELECT adapter FROM turns t WHERE t.session = s.id ORDER BY t.id LIMIT 1)"
             " AS adapter FROM sessions s")
_TURNS_WITH_SESSION_ID = "SELECT t.*, s.session_id FROM turns t JOIN sessions s ON s.id = t.session"
_LISTED_TURN = ("SELECT id, event_id, created_at, thread, adapter, backend, status, score, error,"
                " substr(question, 1, 300) AS question FROM turns")
#: the ended sessions retention removes once their turns are gone
_EMPTY_SESSIONS = ("DELETE FROM sessions WHERE ended_at IS NOT NULL AND last_active < ?"
                   " AND NOT EXISTS (SELECT 1 FROM turns WHERE turns.session = sessions.id)")
#: a namespace's tables now at a version (PostgreSQL; SQLite writes it into its migration script)
SET_PLUGIN_VERSION = ("INSERT INTO plugin_schema (namespace, version) VALUES (?, ?)"
                       " ON CONFLICT (namespace) DO UPDATE SET version = excluded.version")
_JSON_COLUMNS = ("sources", "message_ids", "flags")
_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


class SQLHistory(Store):
    """The parts of a SQL store written once for both databases."""

    dialect: ClassVar[Dialect]
    #: a condition true when the turn's `message_ids` (JSON) holds the parameter
    _HOLDS_MESSAGE: ClassVar[str]

    def __init__(self, tables: Sequence[PluginTables] = ()) -> None:
        self.plugin_tables = {declared.namespace: declared for declared in tables}

    # -- the primitives each store provides ------------------------------------------------------

    @abstractmethod
    async def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows of a query, as dicts, once every queued write is committed."""

    @abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement after every queued write; the rows it changed."""

    @abstractmethod
    def _stream(self, sql: str, params: Sequence[Any]) -> AsyncIterator[dict[str, Any]]:
        """The rows of a query, as dicts, without holding them all."""

    @abstractmethod
    async def _run(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> int:
        """Run statements that delete what belongs together; the rows they changed."""

    def _decoded(self, turn: dict[str, Any]) -> dict[str, Any]:
        """A turn row with its JSON columns as values (a driver that decodes them leaves it)."""
        for key in _JSON_COLUMNS:
            if isinstance(turn[key], str):
                turn[key] = json.loads(turn[key])
        return turn

    # -- plugins' tables --------------------------------------------------------------------------

    def tables(self, namespace: str) -> Tables:
        """The handle on a plugin's tables (see `botkit.store.tables`)."""
        if namespace not in self.plugin_tables:
            raise LookupError(f"no plugin registered tables named {namespace!r} in this store"
                              f" (registered: {', '.join(sorted(self.plugin_tables)) or 'none'})")
        return Tables(self, namespace)

    def _plugin_migrations(self, version_of: dict[str, int]) -> list[tuple[PluginTables, int, str]]:
        """(tables, number, script) still to run, given each namespace's recorded version."""
        due = []
        for declared in self.plugin_tables.values():
            version = version_of.get(declared.namespace, 0)
            if version > len(declared.migrations):
                raise StoreUnusable(f"{self!r}: the tables of {declared.namespace!r} are at version {version},"
                                    " newer than the installed plugin knows")
            due += [(declared, n, declared.script(n, self.dialect))
                    for n in range(version + 1, len(declared.migrations) + 1)]
        return due

    # -- retention and deletion -------------------------------------------------------------------

    async def prune(self, *, turns_before: float | None = None) -> int:
        statements: list[tuple[str, Sequence[Any]]] = [("DELETE FROM events WHERE expires_at <= ?", (time.time(),))]
        if turns_before is not None:
            statements += [(sql, (turns_before,)) for sql in (
                *turn_rows_deleted(list(self.plugin_tables.values()), "created_at < ?"),
                "DELETE FROM turns WHERE created_at < ?", _EMPTY_SESSIONS)]
        return await self._run(statements)

    async def delete_session(self, session: int) -> None:
        await self._run([(sql, (session,)) for sql in (
            *turn_rows_deleted(list(self.plugin_tables.values()), "session = ?"),
            "DELETE FROM turns WHERE session = ?", "DELETE FROM sessions WHERE id = ?")])

    # -- reading history ----------------------------------------------------------------------

    async def turn_for_message(self, thread: ThreadKey, message_id: str) -> TurnRecord | None:
        rows = await self._rows(f"SELECT * FROM turns WHERE thread = ? AND {self._HOLDS_MESSAGE}"
                                " ORDER BY id DESC LIMIT 1", (thread.key, message_id))
        if not rows:
            return None
        row = self._decoded(rows[0])
        row["thread"] = thread
        return TurnRecord(**{name: row[name] for name in TurnRecord.__slots__})

    async def list_sessions(self, *, adapter: str | None = None, channel: str | None = None,
                            since: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        clauses, params = ["s.last_active >= ?"], [since or 0.0]
        if adapter is not None:
            clauses.append("EXISTS (SELECT 1 FROM turns t WHERE t.session = s.id AND t.adapter = ?)")
            params.append(adapter)
        if channel is not None:  # narrowed in SQL, matched exactly on the parsed key below
            clauses.append("s.thread LIKE ? ESCAPE '\\'")
            params.append(f"%:{channel.translate(_LIKE_ESCAPES)}:%")
        found: list[dict[str, Any]] = []
        async with aclosing(self._stream(f"{_SESSIONS} WHERE {' AND '.join(clauses)}"
                                         " ORDER BY s.last_active DESC, s.id DESC", params)) as rows:
            async for row in rows:
                if channel is None or ThreadKey.parse(row["thread"]).channel == channel:
                    found.append(row)
                    if len(found) >= limit:
                        break
        return found

    async def find_sessions(self, ref: str) -> list[dict[str, Any]]:
        number = int(ref) if ref.isdigit() and int(ref) < 2 ** 63 else None
        return await self._rows(f"{_SESSIONS} WHERE s.thread = ? OR s.session_id = ? OR s.id = ? ORDER BY s.id",
                                (ref, ref, number))

    async def turns_of(self, session: int) -> list[dict[str, Any]]:
        return [self._decoded(row) for row in await self._rows("SELECT * FROM turns WHERE session = ? ORDER BY id",
                                                               (session,))]

    async def count_turns(self, *, since: float | None = None) -> int:
        rows = await self._rows("SELECT COUNT(*) AS n FROM turns WHERE created_at >= ?", (since or 0.0,))
        return rows[0]["n"]

    async def iter_turns(self, *, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        async for row in self._stream(f"{_TURNS_WITH_SESSION_ID} WHERE t.created_at >= ? ORDER BY t.id",
                                      (since or 0.0,)):
            yield self._decoded(row)

    async def thread_turns(self, thread: ThreadKey, *, limit: int) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT * FROM turns WHERE thread = ? ORDER BY id DESC LIMIT ?", (thread.key, limit))
        return [self._decoded(row) for row in reversed(rows)]

    async def turn_figures(self, *, since: float, limit: int) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT id, event_id, created_at, adapter, backend, status, first_text_after, duration, score,"
            " CAST(sources AS TEXT) <> '[]' AS cited FROM turns WHERE created_at >= ?"
            " ORDER BY created_at DESC LIMIT ?", (since, limit))
        for row in rows:
            row["cited"] = bool(row["cited"])
        return rows

    async def recent_turns(self, *, limit: int, before: int | None = None,
                           ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        if ids is not None:
            wanted = sorted({int(i) for i in ids if 0 < int(i) < 2 ** 63}, reverse=True)[:limit]
            if not wanted:
                return []
            marks = ", ".join("?" * len(wanted))
            return await self._rows(f"{_LISTED_TURN} WHERE id IN ({marks}) ORDER BY id DESC", wanted)
        if before is not None:
            return await self._rows(f"{_LISTED_TURN} WHERE id < ? ORDER BY id DESC LIMIT ?", (before, limit))
        return await self._rows(f"{_LISTED_TURN} ORDER BY id DESC LIMIT ?", (limit,))

    async def turn_by_id(self, turn_id: int) -> dict[str, Any] | None:
        if not 0 < turn_id < 2 ** 63:
            return None
        rows = await self._rows(f"{_TURNS_WITH_SESSION_ID} WHERE t.id = ?", (turn_id,))
        return self._decoded(rows[0]) if rows else None


def numbered(sql: str) -> str:
    """`sql` with PostgreSQL's $1, $2, ... for its `?` parameters (outside quoted text)."""
    out, n, quote = [], 0, ""
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(char)
    return "".join(out)


__all__ = ["SET_PLUGIN_VERSION", "SQLHistory", "numbered"]
