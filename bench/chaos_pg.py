"""A throwaway PostgreSQL server for bench/chaos.py's replicas, like tests/store/conftest.py's.

The distribution's binaries (/usr/lib/postgresql/*/bin), a data directory in a temporary
folder, 127.0.0.1 on a free port, trust authentication (nothing but loopback reaches it),
durability off (the replicas' crashes are what is tested, not PostgreSQL's). PostgreSQL
refuses to run as root: as root it runs as `postgres`. Stopped and deleted on exit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "botkit"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A TCP port nothing listens on right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(slots=True)
class PgServer:
    bindir: Path
    port: int

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
                       check=True, capture_output=True, timeout=30)
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_server(max_connections: int = 500) -> Iterator[PgServer]:
    """Start a server, yield it, stop it and delete its files (also on errors)."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="botkit-chaos-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = base / "data"

    def run(*command: str) -> None:
        subprocess.run([*run_as, *command], check=True, capture_output=True, timeout=60)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
                   f" -c full_page_writes=off -c max_connections={max_connections}")
        run(str(bindir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", "30", "-l", str(base / "log"), "-o", options)
        try:
            yield PgServer(bindir, port)
        finally:
            run(str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w")
    finally:
        shutil.rmtree(base, ignore_errors=True)
