"""The webhook platform faked on 127.0.0.1: it takes botkit's signed callbacks and keeps
the conversation as a person would see it; `deliver` POSTs a signed message to the bot."""

import itertools
import json

import httpx
import pytest
from aiohttp import web

from botkit.testing import FakeServer
from botkit_webhook.signing import HEADER, sign, verify


class FakePlatform(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.secret = "a-shared-secret-of-some-length"
        self.shown: dict[str, str] = {}  # message id -> its text now
        self.bad_signatures = 0
        self._ids = itertools.count(1)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/callback", self.callback)

    async def callback(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self.secret, body, request.headers.get(HEADER)):
            self.bad_signatures += 1
            return web.Response(status=401)
        payload = json.loads(body)
        message_id = payload["message"] if payload["action"] == "edit" else f"p{next(self._ids)}"
        self.shown[message_id] = payload["text"]
        return web.json_response({"message": message_id})

    def actions(self) -> list[tuple[str, bool]]:
        """("send" | "edit", final) of every callback, in order."""
        return [(r.json["action"], r.json["final"]) for r in self.calls("POST", "/callback")]

    @staticmethod
    def message(text: str, *, conversation: str = "c-1", message_id: str = "m-1", user: str = "u-1") -> dict:
        """A message as the platform POSTs it."""
        return {"conversation": conversation, "message": message_id, "user": user, "text": text}

    def adapter(self, **options) -> dict:
        """The `adapters:` section of a bot whose `hook` adapter talks to this platform."""
        return {"hook": {"type": "webhook", "secret": self.secret, "callback_url": self.url + "/callback",
                         "edit_interval": 0, **options}}

    async def deliver(self, bot, payload: dict | bytes, *, secret: str | None = "") -> httpx.Response:
        """POST a message to the bot's `hook` endpoint as the platform does: signed with the
        shared secret, or with `secret` ("": the shared one; None: unsigned)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[HEADER] = sign(secret or self.secret, body)
        async with httpx.AsyncClient() as client:
            return await client.post(f"{bot.server.url}/webhook/hook", content=body, headers=headers)


@pytest.fixture
async def platform():
    async with FakePlatform() as fake:
        yield fake

