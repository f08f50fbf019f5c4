"""Session store: thread -> backend session, turns, processed event ids, answers in progress.

`open_store(url)` picks the implementation from the URL scheme; the dispatcher only
knows the `Store` interface.
"""

from __future__ import annotations

from pathlib import Path

from botkit.store.base import InflightAnswer, SessionRecord, Store, TurnRecord


def open_store(url: str, *, base_dir: Path | None = None, events_ttl: float = 48 * 3600) -> Store:
    """The store for `url`: sqlite:///relative/path.db, sqlite:////abs/path.db, sqlite:///:memory:,
    or postgresql://user:password@host:port/database (shared by several replicas)."""
    if url.startswith("sqlite://"):
        from botkit.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        if path != ":memory:" and not Path(path).is_absolute() and base_dir is not None:
            path = str(base_dir / path)
        return SQLiteStore(path, events_ttl=events_ttl)
    if url.startswith(("postgresql://", "postgres://")):
        from botkit.store.postgres import PostgresStore

        return PostgresStore(url, events_ttl=events_ttl)
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported store URL scheme {scheme!r} (supported: sqlite, postgresql)")


__all__ = ["InflightAnswer", "SessionRecord", "Store", "TurnRecord", "open_store"]
