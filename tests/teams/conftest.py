"""Fixtures for the Teams tests: the loopback Bot Framework and an adapter wired to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aiohttp import web
from botkit_plugins.teams import TeamsConfig
from botkit_plugins.teams.testing import FakeBotFramework

from botkit.events import Inbound
from botkit.testing import serve_loopback


@pytest.fixture
async def fake():
    service = await FakeBotFramework().start()
    yield service
    await service.close()


class MiniServer:
    """Stands in for botkit's server: collects routes, serves them on loopback."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.url = ""

    def add_route(self, method: str, path: str, handler: Any) -> None:
        self.app.router.add_route(method, path, handler)

    async def start(self) -> None:
        self.runner, port = await serve_loopback(self.app)
        self.url = f"http://127.0.0.1:{port}"


class MiniPlugins:
    """Records the reactions an adapter reports (`Plugins.reaction`)."""

    def __init__(self) -> None:
        self.reactions: list[dict[str, Any]] = []

    async def reaction(self, **kwargs: Any) -> None:
        self.reactions.append(kwargs)


class MiniBot:
    """The part of `Bot` an adapter uses: a server to mount on, `submit`, `accepting` and
    `plugins.reaction`."""

    def __init__(self) -> None:
        self.server = MiniServer()
        self.plugins = MiniPlugins()
        self.inbound: list[Inbound] = []
        self.accepting = True

    async def submit(self, inbound: Inbound) -> bool:
        self.inbound.append(inbound)
        return True


@pytest.fixture
async def make_adapter(fake):
    """`await make_adapter(**config overrides)` -> (adapter, bot, post) with the endpoint running.

    `post(activity, token=...)` sends an activity to the adapter's endpoint and returns
    the HTTP status (token None: no Authorization header; default: a valid signature).
    """
    from botkit_plugins.teams.adapter import TeamsAdapter

    made = []

    async def make(**overrides: Any):
        data = fake.adapter_config(**overrides)
        data.pop("type")
        bot = MiniBot()
        adapter = TeamsAdapter("teams", TeamsConfig.model_validate(data), bot)
        adapter.botkit_routes(bot.server)
        await bot.server.start()
        await adapter.start()
        client = httpx.AsyncClient(timeout=5)
        made.append((adapter, bot, client))

        async def post(activity: dict, token: str | None = "valid") -> int:
            headers = {}
            if token == "valid":
                token = fake.sign()
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            response = await client.post(bot.server.url + adapter.config.path, json=activity, headers=headers)
            return response.status_code

        return adapter, bot, post

    yield make
    for adapter, bot, client in made:
        await client.aclose()
        await adapter.stop()
        await bot.server.runner.cleanup()
