"""The one HTTP server adapters and plugins mount routes on (aiohttp, like slack-bolt,
discord.py and the Teams SDK already use).

It serves `/healthz` (the process is up) and `/readyz` (the store answers and every
adapter says it is connected). It starts only when something added a route, or when
`server.enabled` is true.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    def __init__(self, bot: Bot, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self._routes = 0
        self._runner: web.AppRunner | None = None
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)

    @property
    def has_routes(self) -> bool:
        return self._routes > 0

    @property
    def url(self) -> str:
        """Base URL once started (with the real port when configured as 0)."""
        return f"http://{self.host}:{self.port}"

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Mount `handler` for `method path`; call before the server starts."""
        if self._runner is not None:
            raise RuntimeError(f"cannot add {method} {path}: the HTTP server is already running")
        self.app.router.add_route(method, path, handler)
        self._routes += 1

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self._runner.addresses:  # the real port when configured as 0
            self.port = self._runner.addresses[0][1]
        log.info("HTTP server listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        store_ok = await self.bot.store.ping()
        adapters = {name: adapter.ready for name, adapter in self.bot.adapters.items()}
        ready = store_ok and all(adapters.values())
        body = {"ready": ready, "store": store_ok, "adapters": adapters}
        if self.bot.store.fault is not None:
            body["store_fault"] = self.bot.store.fault
        return web.json_response(body, status=200 if ready else 503)
