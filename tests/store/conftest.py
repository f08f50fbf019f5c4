"""Fixtures for the store tests: a throwaway PostgreSQL server for the session, a fresh
database per test, and `store`, which runs a test against both stores (SQLite, PostgreSQL).

The server (`botkit.testing.postgres_server`) asks for a password over TCP, so the tests
prove the store passes the password it keeps apart from the DSN.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botkit.store import Store, open_store
from botkit.testing import PostgresServer, postgres_binaries, postgres_server
from botkit_plugins.feedback.votes import TABLES as FEEDBACK_TABLES

PASSWORD = "s3cret:p@ss/word"  # characters that must be percent-encoded in a URL


@pytest.fixture(scope="session")
def pg_server(tools) -> Iterator[PostgresServer]:  # noqa: ANN001 - tests/conftest.py's Tools
    if postgres_binaries() is None:
        tools.missing("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    with postgres_server(password=PASSWORD) as server:
        yield server


_numbers = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    return pg_server.create_database(f"botkit_test_{next(_numbers)}")


StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: on a SQLite file, on a PostgreSQL database."""
    return "sqlite:///store.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
async def open_test_store(store_url: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores on the test's database (call it again for a second replica or a restart),
    with the feedback plugin's tables (the store's tests of plugins' tables use them)."""
    url = store_url
    opened: list[Store] = []

    async def open_(**options: Any) -> Store:
        options.setdefault("tables", [FEEDBACK_TABLES])
        store = open_store(url, base_dir=tmp_path, **options)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(open_test_store: StoreFactory) -> Store:
    return await open_test_store()
