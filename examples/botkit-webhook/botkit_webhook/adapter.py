"""The `webhook` adapter: a chat platform that speaks signed JSON over HTTP.

The platform POSTs each message to `/webhook/<adapter name>` on botkit's server:

    {"conversation": "c-42", "message": "m-7", "user": "u-1", "text": "How long do refunds take?"}

(`user_name` may be added). botkit answers by POSTing to `callback_url`:

    {"action": "send", "conversation": "c-42", "reply_to": "m-7", "text": "...", "final": false}
        -> the platform answers {"message": "<its id for the new message>"}
    {"action": "edit", "conversation": "c-42", "message": "<that id>", "text": "...", "final": true}

Both directions carry `X-Webhook-Signature` (`botkit_webhook.signing`). A 429 from the
callback, with `Retry-After` in seconds, is waited out by botkit's renderer.
"""

import json
import logging

import httpx
from aiohttp import web
from pydantic import BaseModel, Field, SecretStr, ValidationError

from botkit import (Adapter, Capabilities, Inbound, Markup, MessageRef, Outgoing, RateLimited, Section, ThreadKey,
                    Unavailable, hookimpl)
from botkit.bot import Bot
from botkit.server import Server

from botkit_webhook.signing import HEADER, sign, verify

log = logging.getLogger("botkit_webhook")


class WebhookConfig(Section):
    #: the shared secret both sides sign with (never logged: a SecretStr)
    secret: SecretStr = Field(min_length=16)
    #: where answers are POSTed
    callback_url: str = Field(pattern=r"^https?://")
    #: false when the platform cannot change a posted message: each answer is sent once, complete
    can_edit: bool = True
    markup: Markup = Markup.PLAIN
    max_length: int = Field(4000, ge=100)
    #: seconds between two edits of a growing answer
    edit_interval: float = Field(1.0, ge=0)
    timeout: float = Field(10.0, gt=0)


class Message(BaseModel):
    """One message as the platform POSTs it."""

    conversation: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=200)
    user: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=20_000)
    user_name: str | None = None


class WebhookAdapter(Adapter):
    platform = "webhook"
    config: WebhookConfig

    def __init__(self, name: str, config: WebhookConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(max_length=config.max_length, edit_interval=config.edit_interval,
                                         markup=config.markup, can_edit=config.can_edit)
        self.path = f"/webhook/{name}"
        self.client: httpx.AsyncClient | None = None

    @hookimpl
    def botkit_routes(self, server: Server) -> None:
        server.add_route("POST", self.path, self.receive)

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.config.timeout)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    @property
    def ready(self) -> bool:
        return self.client is not None and not self.client.is_closed

    # -- receiving ------------------------------------------------------------------------

    async def receive(self, request: web.Request) -> web.Response:
        """Check the signature on the raw body, then parse, submit, and only then acknowledge."""
        body = await request.read()
        if not verify(self.config.secret.get_secret_value(), body, request.headers.get(HEADER)):
            return self.refuse(401, "no valid signature")
        try:
            message = Message.model_validate_json(body)
        except ValidationError as exc:
            return self.refuse(400, f"not a message ({exc.error_count()} problem(s))")
        inbound = Inbound(
            event_id=f"{self.name}:{message.conversation}:{message.message}",
            thread=ThreadKey(self.platform, self.name, message.conversation, "-"),
            user=message.user,
            text=message.text,
            adapter=self.name,
            user_name=message.user_name,
            is_direct=True,
            raw=message.model_dump(),
        )
        try:
            await self.bot.submit(inbound)
        except Unavailable:  # stopping, or the store cannot write: the platform should send it again
            return web.Response(status=503)
        return web.json_response({"ok": True}, status=202)

    def refuse(self, status: int, reason: str) -> web.Response:
        log.warning("webhook %s: refused a request with %d: %s", self.name, status, reason)
        return web.json_response({"error": reason}, status=status)

    # -- answering ------------------------------------------------------------------------

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        answered = reply_to.raw["message"] if reply_to is not None and reply_to.raw else None
        reply = await self.call({"action": "send", "conversation": thread.channel, "reply_to": answered,
                                 "text": message.plain(), "final": message.final})
        return MessageRef(thread, str(reply["message"]), {"conversation": thread.channel})

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        await self.call({"action": "edit", "conversation": ref.data["conversation"], "message": ref.message_id,
                         "text": message.plain(), "final": message.final})

    async def call(self, payload: dict) -> dict:
        """POST `payload` to the callback, signed; a 429 becomes `RateLimited`."""
        assert self.client is not None, "the adapter is not started"
        body = json.dumps(payload).encode()
        response = await self.client.post(self.config.callback_url, content=body, headers={
            "Content-Type": "application/json", HEADER: sign(self.config.secret.get_secret_value(), body)})
        if response.status_code == 429:
            raise RateLimited(retry_after(response.headers.get("Retry-After")))
        response.raise_for_status()
        return response.json() if response.content else {}


def retry_after(value: str | None) -> float:
    """Seconds to wait from a `Retry-After` header; 1 when it is missing or not a number."""
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0
