"""Shared pieces: a loopback fake Discord and a running bot whose discord adapter uses it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botkit.bot import Bot
from botkit.testing import running_bot
from botkit_plugins.discord.testing import CHANNEL_ID, FORUM_ID, GUILD_ID, FakeDiscord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def adapter_config(fake: FakeDiscord, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "discord", "token": "discord-test-token", "api_url": fake.api_url, "gateway_url": fake.gateway_url,
        "help_channels": [int(CHANNEL_ID), int(FORUM_ID)], "guilds": [int(GUILD_ID)],
        "edit_interval": 0, "guild_ready_timeout": 0.05,
    }
    config.update(overrides)
    return config


def bot_config(fake: FakeDiscord, backend: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "adapters": {"discord": adapter_config(fake, **overrides)},
        "backends": {"b": {"type": "fake", **(backend or {})}},
        "middlewares": {"citations": {}},
    }


@pytest.fixture
def discord_bot(fake: FakeDiscord, tmp_path: Path) -> Any:
    """`async with discord_bot(backend={...}, sections={...}, **adapter_overrides) as bot:` a bot
    on the fake; `sections` are more top-level config sections (dispatch, schedule...)."""

    @contextlib.asynccontextmanager
    async def start(backend: dict[str, Any] | None = None, *, sections: dict[str, Any] | None = None,
                    **overrides: Any) -> AsyncIterator[Bot]:
        sections = dict(sections or {})
        # progress first, as most tests look at it; the deferred default has its own tests
        sections["dispatch"] = {"progress_delay": 0, **sections.get("dispatch", {})}
        async with running_bot({**bot_config(fake, backend, **overrides), **sections}, tmp_path) as bot:
            yield bot

    return start
