"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from botkit import http


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs the CLI in this process sets up logging (`log: {level: ERROR}` raises
    the root logger's level, and its handler writes to that test's captured stderr): later
    tests must still see the WARNINGs they look for, and nothing may log to a closed stream."""
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    levels = [(logger, logger.level) for logger in loggers if isinstance(logger, logging.Logger)]
    handlers = list(root.handlers)
    yield
    for logger, level in levels:
        logger.setLevel(level)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


class LoopThread:
    """An event loop on a thread of its own, for synchronous code (a hypothesis test) that
    drives a bot running on it example after example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 30):  # noqa: ANN001, ANN201 (any coroutine, its result)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    running = LoopThread()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def delays(monkeypatch):
    """The waits `botkit.http.Transport` would sleep between retries, recorded instead."""
    recorded: list[float] = []

    async def record(delay):
        recorded.append(delay)

    monkeypatch.setattr(http, "sleep", record)
    return recorded


# -- real third-party software the suite runs against (installed by .ci/run or the test setup) --


class Spawned:
    """A helper process (a server) whose output is read line by line, so a test waits for the
    line saying it is up instead of sleeping."""

    def __init__(self, command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.command = command
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern`; fails with the output if the process
        exits or `timeout` passes first."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for m in map(regex.search, self.lines) if m), None)

        with self._changed:
            self._changed.wait_for(lambda: found() or not self._reader.is_alive(), timeout)
            match = found()
        if match is None:
            status = "still running" if self._reader.is_alive() else f"exit status {self.process.wait(20)}"
            raise AssertionError(f"{self.command[0]} did not print {pattern!r} within {timeout} s "
                                 f"({status}):\n{self.output[-4000:]}")
        return match

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
        self._reader.join(20)


class Tools:
    """What tests against real third-party software share: where installed tools are cached,
    what to do when one is missing, and the helper processes they start."""

    def __init__(self) -> None:
        base = os.environ.get("BOTKIT_TEST_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        #: kept between runs, so a tool the test setup installs is installed once
        self.cache = Path(base) / "botkit-tests"
        self.started: list[Spawned] = []

    @staticmethod
    def missing(reason: str) -> NoReturn:
        """A tool a test needs is absent: skipped on a developer's machine, a failure in CI, where
        .ci/run installs every such tool, so that CI never passes by not running the test."""
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI must not skip this)")
        pytest.skip(reason)

    def spawn(self, command: list[str], **kwargs) -> Spawned:
        """Start a helper process; it is stopped at the end of the session at the latest."""
        self.started.append(Spawned(command, **kwargs))
        return self.started[-1]


@pytest.fixture(scope="session")
def tools() -> Iterator[Tools]:
    helper = Tools()
    yield helper
    for process in reversed(helper.started):
        process.stop()


@pytest.fixture
async def browser(tools):
    """Headless Debian Chromium driven by Playwright (`botkit.testing.chromium`): a fresh
    browser per test; missing Chromium or Playwright skips locally and fails in CI."""
    from botkit.testing import CHROMIUM, chromium

    if not CHROMIUM.exists():
        tools.missing("Chromium is needed for the browser tests (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        tools.missing("Playwright for Python is needed (pip install -e '.[dev]')")
    async with chromium() as launched:
        yield launched
