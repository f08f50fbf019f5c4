"""The store: the turn journal, processed event ids, thread leases, sessions and turns.

`open_store(url)` picks the implementation from the URL scheme; the dispatcher only
knows the `Store` interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from botkit.store.base import (HistoryStore, JournalEntry, SessionRecord, Store, StoreUnreachable, StoreUnusable,
                               TurnRecord, TurnStore)
from botkit.store.tables import PluginTables, Tables

if TYPE_CHECKING:
    from botkit.config import Config


def store_for(config: Config, tables: Sequence[PluginTables] = ()) -> Store:
    """The (unopened) store a deployment's config asks for, with the tables plugins keep
    in it (`Plugins.tables`)."""
    root = config.root
    events_hours = root.retention.events_hours or root.store.events_ttl_hours
    return open_store(root.store.url.get_secret_value(), base_dir=config.base_dir, events_ttl=events_hours * 3600,
                      lease_ttl=root.recovery.lease_ttl, synchronous=root.store.synchronous,
                      exclusive=root.store.exclusive, cached_sessions=root.store.cached_sessions, tables=tables)


def open_store(url: str, *, base_dir: Path | None = None, events_ttl: float = 48 * 3600,
               lease_ttl: float = 20.0, synchronous: str = "normal", exclusive: bool = True,
               cached_sessions: int = 10_000, tables: Sequence[PluginTables] = ()) -> Store:
    """The store for `url`: sqlite:///relative/path.db, sqlite:////abs/path.db, sqlite:///:memory:,
    or postgresql://user:password@host:port/database (shared by several replicas)."""
    if url.startswith("sqlite://"):
        from botkit.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        if path != ":memory:" and not Path(path).is_absolute() and base_dir is not None:
            path = str(base_dir / path)
        return SQLiteStore(path, events_ttl=events_ttl, synchronous=synchronous, exclusive=exclusive,
                           cached_sessions=cached_sessions, tables=tables)
    if url.startswith(("postgresql://", "postgres://")):
        from botkit.store.postgres import PostgresStore

        return PostgresStore(url, events_ttl=events_ttl, lease_ttl=lease_ttl, tables=tables)
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported store URL scheme {scheme!r} (supported: sqlite, postgresql)")


__all__ = ["HistoryStore", "JournalEntry", "PluginTables", "SessionRecord", "Store", "StoreUnreachable", "StoreUnusable",
           "Tables", "TurnRecord", "TurnStore", "open_store", "store_for"]
