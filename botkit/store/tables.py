"""Tables plugins keep in the bot's store, beside the core's, under their own names.

A plugin declares them (`botkit_register_tables`); the store creates and migrates them
when it opens, deletes their rows of a turn when the turn goes (retention, `botkit
sessions delete`), and hands the plugin a `Tables` to read and write them. The core's
own SQL never names them, so a plugin's schema is its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from botkit.store.history import SQLHistory

Dialect = Literal["sqlite", "postgresql"]
#: a migration: one SQL script for every database, or one per dialect
Migration = str | Mapping[Dialect, str]

_NAMESPACE = re.compile(r"[a-z][a-z0-9_]*")
_CREATED = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class PluginTables:
    """A plugin's tables: what `botkit_register_tables` registers.

    `migrations` run once each, in order, when the store opens (version kept per
    namespace); never edit one that was released, append another. Every table and index
    they create is named `namespace` or `namespace_*`. Write SQL both SQLite and
    PostgreSQL run (`?` parameters, TEXT, INTEGER, DOUBLE PRECISION, quoted "user"), or
    give a migration as {"sqlite": ..., "postgresql": ...}. `turn_rows` names the tables
    whose rows belong to a recorded turn, by the column holding its `event_id`: those
    rows are deleted with the turn.
    """

    namespace: str
    migrations: Sequence[Migration]
    turn_rows: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.namespace):
            raise ValueError(f"table namespace {self.namespace!r}: lower-case letters, digits and _")
        for name in {*self.created(), *self.turn_rows}:
            if name != self.namespace and not name.startswith(f"{self.namespace}_"):
                raise ValueError(f"table {name!r} is outside the namespace {self.namespace!r}"
                                 f" (name it {self.namespace} or {self.namespace}_…)")

    def created(self) -> set[str]:
        """The tables and indexes the migrations create."""
        scripts = [m for m in self.migrations if isinstance(m, str)]
        scripts += [s for m in self.migrations if not isinstance(m, str) for s in m.values()]
        return {name for script in scripts for name in _CREATED.findall(script)}

    def script(self, number: int, dialect: Dialect) -> str:
        """Migration `number` (1-based) as `dialect` runs it."""
        migration = self.migrations[number - 1]
        return migration if isinstance(migration, str) else migration[dialect]


def turn_rows_deleted(tables: Sequence[PluginTables], turns_where: str) -> list[str]:
    """Statements deleting the plugin rows of the turns `turns_where` selects (a condition
    on `turns`), to run before the turns themselves are deleted."""
    return [f"DELETE FROM {table} WHERE {column} IN (SELECT event_id FROM turns WHERE {turns_where})"
            for declared in tables for table, column in declared.turn_rows.items()]


class Tables:
    """A plugin's handle on its tables (`store.tables(namespace)`). Statements take `?`
    parameters on every database; reads see every write the store has queued. A plugin
    may also read the core's `turns` and `sessions` (columns as `HistoryStore.turns_of`
    returns them); it writes only its own tables."""

    def __init__(self, store: SQLHistory, namespace: str) -> None:
        self._store = store
        self.namespace = namespace

    @property
    def dialect(self) -> Dialect:
        return self._store.dialect

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement; the rows it changed."""
        return await self._store._execute(sql, params)

    async def fetch(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """The rows of one query, as dicts."""
        return await self._store._rows(sql, params)

    def __repr__(self) -> str:
        return f"Tables({self.namespace!r} in {self._store!r})"
