"""The SQLite store when writing fails for a while (issue 13): nothing acked is lost, the
bot says it is not ready and refuses new deliveries meanwhile, and carries on by itself.

The fault here is real: another process holds the database's write lock, as a backup
tool or an operator's `sqlite3` shell would on a store opened with `exclusive: false` (an
exclusive store cannot be opened by anyone else), so the writer's commits fail with
SQLITE_BUSY after the busy timeout. (Disk full, in a separate process with a file-size
limit, is in bench/chaos.py's `diskfull` mode and tests/chaos.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from botkit import Unavailable
from botkit.store import open_store
from botkit.pipeline.dispatcher import FINAL_EDIT_MARGIN
from botkit.testing import child_processes, eventually, running_bot

CONFIG = {
    "adapters": {"rec": {"type": "recording"}},
    "backends": {"b": {"type": "fake", "answer": "Answer to {question}."}},
    "server": {"enabled": True, "host": "127.0.0.1", "port": 0},
}
SHARED = {**CONFIG, "store": {"url": "sqlite:///botkit-test.db", "exclusive": False}}  # others can open it


def turns_in_db(directory: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(directory / "botkit-test.db")) as db:
        return db.execute("SELECT event_id, status FROM turns ORDER BY id").fetchall()


async def readyz(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url + "/readyz") as resp:
        return resp.status, await resp.json()


async def test_a_store_locked_elsewhere_refuses_new_deliveries_loses_none_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="botkit")
    async with running_bot(SHARED, tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert await rec.inject("before the lock", event_id="E1")
        await bot.idle(5)
        assert (await readyz(bot.server.url))[0] == 200

        other = sqlite3.connect(tmp_path / "botkit-test.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, held by someone else
        # E2 arrives as the lock is taken: its journal write waits, so its delivery is not acked yet
        admitting = asyncio.create_task(rec.inject("during the lock", event_id="E2"))
        await eventually(lambda: bot.store.fault is not None, 15.0)  # the busy timeout ran out: the store says so
        assert "SQLITE_BUSY" in bot.store.fault
        assert not admitting.done()
        status, body = await readyz(bot.server.url)
        assert status == 503 and body["store"] is False and "SQLITE_BUSY" in body["store_fault"]
        assert not bot.accepting  # HTTP adapters answer 503 before reading the body
        with pytest.raises(Unavailable) as refused:  # a new delivery is refused: the platform sends it again
            await rec.inject("refused while locked", event_id="E3")
        assert refused.value.notice == bot.config.root.dispatch.unavailable_message

        other.execute("ROLLBACK")  # the lock is gone: what was queued is written, the bot carries on
        other.close()
        assert await asyncio.wait_for(admitting, 15)
        assert bot.store.fault is None and bot.accepting
        assert (await readyz(bot.server.url))[0] == 200
        assert await rec.inject("refused while locked", event_id="E3")  # the platform's redelivery
        await bot.idle(5)
        assert sorted(rec.texts()) == sorted(f"Answer to {q}." for q in
                                             ("before the lock", "during the lock", "refused while locked"))
    assert turns_in_db(tmp_path) == [("E1", "complete"), ("E2", "complete"), ("E3", "complete")]
    store_lines = [r.getMessage() for r in caplog.records if r.name == "botkit.store"]
    assert len(store_lines) == 2, store_lines  # once when it stopped writing, once when it wrote again
    assert "cannot write" in store_lines[0] and "writes again" in store_lines[1]
    assert not any(r.exc_info for r in caplog.records)


async def test_closing_while_the_store_cannot_write_gives_up_after_its_timeout(tmp_path, caplog):
    """SIGTERM must stop the bot even when the store never comes back; what was committed
    stays, and the log says how many writes were not."""
    async with running_bot(SHARED, tmp_path, grace=1) as bot:
        bot.store.close_timeout = 0.5
        rec = bot.adapters["rec"]
        assert await rec.inject("committed", event_id="E1")
        await bot.idle(5)
        await bot.store.flush()  # the turn's record is written behind: committed before the lock
        other = sqlite3.connect(tmp_path / "botkit-test.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        admitting = asyncio.create_task(rec.inject("never committed", event_id="E2"))
        await eventually(lambda: bot.store.fault is not None, 15.0)
        stopped = asyncio.get_running_loop().time()
    # the grace, the final edit's margin (its write-ahead cannot commit), the store's timeout, a second
    assert asyncio.get_running_loop().time() - stopped < 1 + FINAL_EDIT_MARGIN + 0.5 + 1
    admitting.cancel()
    other.execute("ROLLBACK")
    other.close()
    assert turns_in_db(tmp_path) == [("E1", "complete")]
    assert any("writes not committed" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def damaged_copy_of_a_store(path: Path) -> None:
    """A real store whose table pages were overwritten (a bad disk, a botched copy)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE padding (x)")
        db.executemany("INSERT INTO padding VALUES (?)", [("x" * 500,) for _ in range(200)])
        db.commit()
    data = bytearray(path.read_bytes())
    data[4096 * 3 + 100:4096 * 3 + 900] = b"\xff" * 800
    path.write_bytes(data)


@pytest.mark.parametrize("damage", ["not a database", "damaged pages"])
def test_a_store_that_cannot_be_used_stops_the_start_in_one_line(tmp_path, damage):
    store = tmp_path / "store.db"
    if damage == "not a database":
        store.write_bytes(bytes(range(256)) * 20)
    else:
        damaged_copy_of_a_store(store)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\nSomething to index.\n")
    (tmp_path / "c.yaml").write_text('store: {url: "sqlite:///store.db"}\n'
                                     "backends: {kb: {type: local, paths: [./docs]}}\nadapters: {console: {}}\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", "c.yaml"], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 15  # not hung on a thread left open
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("botkit:")]
    assert len(errors) == 1 and "store.db" in errors[0], done.stderr
    assert ("file is not a database" if damage == "not a database" else "is damaged") in errors[0]
    assert "Traceback" not in done.stderr


#: a process writing to a store until its stdin closes: prints "ready" once it has written
WRITER = """
import asyncio, sys, threading
from botkit.store import open_store

async def main(path, exclusive):
    store = open_store("sqlite:///" + path, exclusive=exclusive)
    await store.open()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True).start()
    n = 0
    while not done.is_set():
        n += 1
        await store.claim_event(f"E{n}")
        await store.flush()
        if n == 50:
            print("ready", flush=True)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2] == "exclusive"))
"""


def writing_store(path: Path, mode: str) -> subprocess.Popen:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "ready\n"
    return writer


@pytest.mark.parametrize("mode", ["exclusive", "shared"])
def test_a_running_store_maps_no_shared_memory_that_can_kill_it(tmp_path, mode):
    """WAL's index is a mapped `-shm` file unless the store is exclusive: truncated under a
    running store (or on a disk gone read-only), touching it is SIGBUS for the store's
    process, which ends without a word of its own (the bot says it ended, and stops writing)."""
    path = tmp_path / "store.db"
    writer = writing_store(path, mode)
    shm = Path(f"{path}-shm")
    assert shm.exists() == (mode == "shared")
    if shm.exists():
        shm.write_bytes(b"")  # its store's process dies at its next commit, and the writer's flush fails
    else:
        writer.stdin.close()
    returncode = writer.wait(30)
    stderr = writer.stderr.read()
    if mode == "exclusive":
        assert returncode == 0, stderr
        assert not shm.exists()
    else:  # the hazard the exclusive store removes
        assert returncode == 1 and f"the store's process ended (exit code {-signal.SIGBUS})" in stderr, stderr


async def test_a_bot_killed_leaves_no_store_process_holding_its_file(tmp_path):
    """SIGKILL gives the bot no time to close its store: its store's process sees the pipe
    close, commits what it had, and ends, so the bot can start again at once."""
    path = tmp_path / "store.db"
    writer = writing_store(path, "exclusive")
    children = child_processes(writer.pid)
    writer.kill()
    writer.wait(30)
    started = time.monotonic()
    store = open_store(f"sqlite:///{path}")
    await store.open()  # not "in use by another process"
    try:
        assert await store.claim_event("after the kill")
    finally:
        await store.close()
    assert time.monotonic() - started < 5
    assert children and all(map(ended, children))


def ended(pid: int) -> bool:
    """Gone, or a zombie (whoever adopted it has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_another_process_is_told_the_store_is_in_use_by_the_bot(tmp_path):
    (tmp_path / "c.yaml").write_text('store: {url: "sqlite:///store.db"}\n')
    writer = writing_store(tmp_path / "store.db", "exclusive")
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "botkit.cli", "sessions", "list", "-c", "c.yaml"],
                              cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert time.monotonic() - started < 15
    finally:
        writer.stdin.close()
        assert writer.wait(30) == 0
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("botkit: store.db is in use by another process (a running bot"
                                                   " holds its store for itself: stop it first"), done.stderr


def mount(*argv: str) -> None:
    """Run mount (or umount); skip the test where this machine does not allow it."""
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        if argv[0] == "mount" and "remount" not in argv:
            pytest.skip(f"cannot mount here (root and CAP_SYS_ADMIN are needed): {exc}")
        raise


def test_a_store_on_a_read_only_file_system_stops_the_start_in_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mount("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder))
    try:
        (folder / "docs").mkdir()
        (folder / "docs" / "a.md").write_text("# A\nSomething to index.\n")
        (folder / "c.yaml").write_text('store: {url: "sqlite:///store.db"}\n'
                                       "backends: {kb: {type: local, paths: [./docs]}}\nadapters: {console: {}}\n")
        first = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", "c.yaml"], cwd=folder,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and (folder / "store.db").exists(), first.stderr
        mount("mount", "-o", "remount,ro", str(folder))
        done = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", "c.yaml"], cwd=folder,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    finally:
        mount("umount", "-l", str(folder))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"botkit: the store could not start: store.db: unable to open database file ({folder} is on a read-only"
        " file system)"], done.stderr


@pytest.fixture
def disk_that_fails(tmp_path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """An ext4 file system whose device fails on demand: its image lives on a small tmpfs that
    `fail()` fills, so the next writes of the loop device fail and ext4 turns itself read-only
    (errors=remount-ro), as a failing disk or a full volume under a VM does. Needs root (mount)."""
    outer, inner = tmp_path / "device", tmp_path / "disk"
    outer.mkdir()
    inner.mkdir()

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    mount("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(outer))
    try:
        image = outer / "image"
        run("truncate", "-s", "128M", str(image))
        run("mkfs.ext4", "-q", "-F", str(image))
        mount("mount", "-o", "loop,errors=remount-ro", str(image), str(inner))
        try:
            def fail() -> None:
                free = os.statvfs(outer).f_bavail * os.statvfs(outer).f_frsize
                run("fallocate", "-l", str(free), str(outer / "filler"))

            yield inner, fail
        finally:
            mount("umount", "-l", str(inner))
    finally:
        mount("umount", "-l", str(outer))


async def test_a_disk_failing_under_the_bot_is_a_store_fault_not_a_crash(disk_that_fails, tmp_path, caplog):
    disk, fail = disk_that_fails
    caplog.set_level(logging.WARNING, logger="botkit")
    config = {**CONFIG, "store": {"url": f"sqlite:///{disk / 'store.db'}"}}
    async with running_bot(config, tmp_path) as bot:
        bot.store.close_timeout = 1.0
        rec = bot.adapters["rec"]
        assert await rec.inject("before the failure", event_id="E1")
        await bot.idle(5)
        fail()
        # the writes that follow reach the failing device (checkpoints sync it) until one fails
        async def settled(task: asyncio.Task) -> None:
            """Until `task` is done or the store has failed (a write it waits for may never commit)."""
            while not task.done() and bot.store.fault is None:
                await asyncio.wait([task], timeout=0.05)

        n = 0
        async with asyncio.timeout(60):
            while bot.store.fault is None:
                n += 1
                admitting = asyncio.create_task(rec.inject(f"while failing {n}", event_id=f"F{n}"))
                await settled(admitting)
                if admitting.done() and admitting.exception() is None:
                    answering = asyncio.create_task(bot.idle())
                    await settled(answering)
                    answering.cancel()
        assert bot.store.fault is not None and not bot.accepting
        status, body = await readyz(bot.server.url)
        assert status == 503 and body["store_fault"]
        with pytest.raises(Unavailable):  # new deliveries are refused: the platform sends them again
            await rec.inject("refused", event_id="R1")
        admitting.cancel()  # if its journal write is still waiting, it was not acked: the platform sends it again
    store_lines = [r.getMessage() for r in caplog.records if r.name == "botkit.store"]
    assert any("cannot write" in line for line in store_lines), store_lines
