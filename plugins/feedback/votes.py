"""Votes and comments on answers, in the feedback plugin's own table of the bot's store.

One row per person and turn (`event_id`): a later vote replaces the earlier one, a
comment is kept beside the vote. The table is the one botkit created before plugins had
tables of their own, so stores from then keep their feedback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botkit.store.tables import PluginTables

if TYPE_CHECKING:
    from botkit.store import Store

TABLES = PluginTables(
    "feedback",
    migrations=[
        """
        CREATE TABLE IF NOT EXISTS feedback (
            event_id TEXT NOT NULL,
            "user" TEXT NOT NULL,
            value TEXT,
            comment TEXT,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (event_id, "user")
        )
        """,
    ],
    turn_rows={"feedback": "event_id"},
)

_RECORD = ('INSERT INTO feedback (event_id, "user", value, comment, at) VALUES (?, ?, ?, ?, ?)'
           ' ON CONFLICT (event_id, "user") DO UPDATE SET value = COALESCE(excluded.value, feedback.value),'
           " comment = COALESCE(excluded.comment, feedback.comment), at = excluded.at")
_WITH_TURNS = ('SELECT f.at, f.event_id, t.thread, t.adapter, t.backend, f."user" AS "user", f.value, f.comment,'
               " t.question, t.answer, t.score FROM feedback f JOIN turns t ON t.event_id = f.event_id"
               " WHERE f.at >= ? ORDER BY f.at")
_BY_VALUE = "SELECT COALESCE(value, 'comment') AS value, COUNT(*) AS n FROM feedback"


class Votes:
    """The feedback table of one store."""

    def __init__(self, store: Store) -> None:
        self._tables = store.tables(TABLES.namespace)

    async def record(self, event_id: str, user: str, value: str | None, comment: str | None, at: float) -> None:
        """One person's feedback on a turn; None keeps what was stored (a later comment on a vote)."""
        await self._tables.execute(_RECORD, event_id, user, value, comment, at)

    async def list(self, since: float | None = None) -> list[dict[str, Any]]:
        """Feedback with its turn: at, event_id, thread, adapter, backend, user, value, comment,
        question, answer, score; oldest first."""
        return await self._tables.fetch(_WITH_TURNS, since or 0.0)

    async def on_turns(self, event_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Each turn's feedback (user, value, comment, at; oldest first), for the turns named."""
        found: dict[str, list[dict[str, Any]]] = {event_id: [] for event_id in event_ids}
        if event_ids:
            marks = ", ".join("?" * len(event_ids))
            for row in await self._tables.fetch(f'SELECT event_id, "user" AS "user", value, comment, at FROM feedback'
                                                f" WHERE event_id IN ({marks}) ORDER BY at", *event_ids):
                found[row.pop("event_id")].append(row)
        return found

    async def counts(self, *, since: float | None = None, limit: int | None = None) -> dict[str, int]:
        """Votes by value ("comment" for a comment without one): on every turn, or on the latest
        `limit` turns recorded since `since`."""
        if since is None and limit is None:
            rows = await self._tables.fetch(f"{_BY_VALUE} GROUP BY 1")
        else:
            window = "" if limit is None else f" ORDER BY created_at DESC LIMIT {int(limit)}"
            rows = await self._tables.fetch(f"{_BY_VALUE} WHERE event_id IN (SELECT event_id FROM turns"
                                            f" WHERE created_at >= ?{window}) GROUP BY 1", since or 0.0)
        return {row["value"]: row["n"] for row in rows}
