"""botkit's pytest plugin (entry point `pytest11`): fixtures for testing a botkit plugin.

Loaded by pytest wherever botkit is installed. Its fixtures are async, so they need
pytest-asyncio (`asyncio_mode = "auto"`, or `@pytest.mark.asyncio` on each test); without
it none is offered. botkit is imported only when a fixture is used.

- `botkit_bot`: `bot = await botkit_bot(config)` starts a bot from a dict shaped like the
  YAML, in `tmp_path` (relative paths start there), with `botkit.testing` loaded (the
  `fake` backend and the `recording` adapter); stopped after the test.
- `botkit_recording`: `rec = await botkit_recording(backends=..., middlewares=...)`, the
  `RecordingAdapter` of such a bot; `rec.inject(text)` plays the user, `rec.deliveries`
  hold every post and edit with its time, `rec.texts()` what the thread shows.
- `botkit_fake_backend`: `backend = await botkit_fake_backend(adapters=..., answer=...)`,
  the scripted `FakeBackend` of such a bot; `backend.calls` are the questions it was asked.
- `botkit_fakes`: `await botkit_fakes.start("slack")`, loopback fakes of the built-in
  platforms and backends (`botkit.testing.BUILT_IN_FAKES`), stopped after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - botkit's dev install has it
    pytest_asyncio = None

if TYPE_CHECKING:
    from botkit.bot import Bot
    from botkit.testing import FakeBackend, LoopbackFakes, RecordingAdapter

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def botkit_bot(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Bot]]]:
        """`await botkit_bot(config)`: a started bot for a config dict, stopped after the test."""
        from botkit.testing import running_bot

        async with contextlib.AsyncExitStack() as stack:

            async def start(config: dict[str, Any], *, directory: Path | None = None) -> Bot:
                """A started bot for `config`; its config file and store are in `directory`
                (default `tmp_path`; made if missing): one bot per directory."""
                directory = directory or tmp_path
                directory.mkdir(parents=True, exist_ok=True)
                return await stack.enter_async_context(running_bot(config, directory))

            yield start

    @pytest_asyncio.fixture
    async def botkit_recording(botkit_bot: Callable[..., Awaitable[Bot]]) -> Callable[..., Awaitable[RecordingAdapter]]:
        """`await botkit_recording(backends=..., middlewares=...)`: the recording adapter of a started bot."""

        async def start(*, backends: dict[str, Any] | None = None, middlewares: dict[str, Any] | None = None,
                        **recording: Any) -> RecordingAdapter:
            """The recording adapter `rec` (options: `botkit.testing.RecordingConfig`) of a started
            bot with `backends` (default: the `fake` one) and `middlewares`; `rec.bot` is the bot."""
            bot = await botkit_bot({"adapters": {"rec": {"type": "recording", **recording}},
                                    "backends": backends or {"fake": {"type": "fake"}},
                                    "middlewares": middlewares or {}})
            return bot.adapters["rec"]  # type: ignore[return-value]

        return start

    @pytest_asyncio.fixture
    async def botkit_fake_backend(botkit_bot: Callable[..., Awaitable[Bot]]) -> Callable[..., Awaitable[FakeBackend]]:
        """`await botkit_fake_backend(adapters=..., answer=...)`: the scripted backend of a started bot."""

        async def start(*, adapters: dict[str, Any], middlewares: dict[str, Any] | None = None,
                        **answer: Any) -> FakeBackend:
            """The scripted backend `fake` (options: `botkit.testing.FakeBackendConfig`) of a started
            bot with `adapters` and `middlewares`; `backend.bot` is the bot."""
            bot = await botkit_bot({"adapters": adapters, "backends": {"fake": {"type": "fake", **answer}},
                                    "middlewares": middlewares or {}})
            return bot.backends["fake"]  # type: ignore[return-value]

        return start

    @pytest_asyncio.fixture
    async def botkit_fakes() -> AsyncIterator[LoopbackFakes]:
        """`await botkit_fakes.start("slack")`: loopback fakes of built-in platforms and backends."""
        from botkit.testing import LoopbackFakes

        fakes = LoopbackFakes()
        try:
            yield fakes
        finally:
            await fakes.close()
