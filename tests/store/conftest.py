"""Fixtures for the store tests: a throwaway PostgreSQL server for the session, a fresh
database per test, and `store`, which runs a test against both stores (SQLite, PostgreSQL).

The server is the distribution's (/usr/lib/postgresql/*/bin), initialised in a temporary
directory, listening on 127.0.0.1 (a free port) and on a unix socket in that directory. It
asks for a password over TCP (scram), so the tests prove the store passes the password it
keeps apart from the DSN. PostgreSQL refuses to run as root: as root it runs as `postgres`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from botkit.store import Store, open_store

USER = "botkit"
PASSWORD = "s3cret:p@ss/word"  # characters that must be percent-encoded in a URL


@dataclass
class PgServer:
    bindir: Path
    socket_dir: Path  # unix socket connections need no password (trust): for creating databases
    host: str
    port: int

    def create_database(self, name: str) -> None:
        subprocess.run([str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", USER,
                        name], check=True, capture_output=True, timeout=30)

    def url(self, database: str, *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="botkit-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, pwfile = base / "data", base / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if run_as:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    port = _free_port()

    def run(*command: str) -> None:
        subprocess.run([*run_as, *command], check=True, capture_output=True, timeout=60)

    run(str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
               " -c full_page_writes=off -c max_connections=200")
    run(str(bindir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "30", "-l", str(base / "log"), "-o", options)
    try:
        yield PgServer(bindir, base, "127.0.0.1", port)
    finally:
        run(str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w")
        shutil.rmtree(base, ignore_errors=True)


_numbers = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty database on the session's server."""
    name = f"botkit_test_{next(_numbers)}"
    pg_server.create_database(name)
    return pg_server.url(name)


StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: on a SQLite file, on a PostgreSQL database."""
    return "sqlite:///store.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
async def open_test_store(store_url: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores on the test's database (call it again for a second replica or a restart)."""
    url = store_url
    opened: list[Store] = []

    async def open_(**options: float) -> Store:
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
