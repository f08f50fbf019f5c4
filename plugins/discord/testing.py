"""A loopback fake of Discord for tests: REST under /api/v10 and a gateway websocket.

It speaks the wire format of docs/specs/platforms.md §2 and §4 closely enough for
the real discord.py to log in, connect, receive dispatches and make its REST calls, and
it records every REST call so tests assert on what the bot sent. It needs only aiohttp,
so plugin authors can use it without importing discord.py:

    async with FakeDiscord() as fake:
        ... configure the adapter with api_url=fake.api_url, gateway_url=fake.gateway_url ...
        await fake.ready.wait()
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL, "hi <@BOT>", mentions_bot=True))
        call = await fake.wait_for("PATCH", "/channels/")
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import WSMsgType, web

from botkit.testing import serve_loopback

BOT_ID = "900000000000000001"
APP_ID = "900000000000000002"
OWNER_ID = "900000000000000003"
USER_ID = "900000000000000010"
GUILD_ID = "800000000000000001"
CHANNEL_ID = "800000000000000002"
FORUM_ID = "800000000000000003"
OTHER_CHANNEL_ID = "800000000000000004"
#: the key the fake CDN signs attachment URLs with (Discord's `hm` parameter)
_CDN_KEY = b"fake-cdn-signing-key"
#: interaction response flag: only the user who interacted sees the message
EPHEMERAL = 64


@dataclass(slots=True)
class Call:
    """One REST request as the fake received it: `path` is relative to /api/v10."""

    method: str
    path: str
    json: Any
    query: dict[str, str]


@dataclass(slots=True)
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass(slots=True)
class _Shard:
    ws: web.WebSocketResponse
    identified: asyncio.Event = field(default_factory=asyncio.Event)


def _user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "username": name, "discriminator": "0", "global_name": name,
            "avatar": None, "bot": bot}


def _thread(thread_id: str, parent_id: str, owner_id: str, name: str, archive: int = 1440) -> dict[str, Any]:
    return {"id": thread_id, "type": 11, "guild_id": GUILD_ID, "parent_id": parent_id, "owner_id": owner_id,
            "name": name, "message_count": 0, "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
            "thread_metadata": {"archived": False, "locked": False, "archive_timestamp": _now(),
                                "auto_archive_duration": archive}}


def _sign(path: str) -> str:
    return hmac.new(_CDN_KEY, path.encode(), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly application/json (no charset)
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})


class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1, recording REST calls in `calls`.

    The guild has a text channel `CHANNEL_ID`, a second one `OTHER_CHANNEL_ID` and a
    forum `FORUM_ID`. Dispatches are logged with their sequence numbers; `reconnect()`
    makes the client RESUME and can redeliver the last events as Discord may.
    `messages` are the bot's (posted or edited over REST), `delivered` the people's
    (dispatched as MESSAGE_CREATE); a channel's history (`GET /channels/{id}/messages`)
    lists both. `responses` are the interaction callbacks the bot made (interaction id ->
    body); ephemeral messages (flags 64) are in `messages` with those flags. Files people
    attach (`attachment()`) are served by a CDN under /cdn/ from signed URLs, as Discord's
    are: a URL without its valid signature gets 404; `downloads` counts what was fetched.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.identify: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.messages: dict[str, dict[str, Any]] = {}
        self.delivered: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.originals: dict[str, str] = {}  # interaction token -> id of its original response
        self.reactions: dict[str, list[str]] = {}  # message id -> emojis the bot has on it, in order
        self.responses: dict[str, dict[str, Any]] = {}  # interaction id -> the bot's callback body
        self.files: dict[str, bytes] = {}  # attachment id -> content, served by the CDN
        self.downloads: list[str] = []  # attachment ids fetched from the CDN with a valid signature
        self._token_channels: dict[str, str] = {}  # interaction token -> its channel
        self._ephemeral_tokens: set[str] = set()  # interactions whose response is ephemeral
        self._dms: dict[str, str] = {}  # user id -> the bot's DM channel with them
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._seq = 0
        self._log: list[tuple[int, str, Any]] = []
        self._failures: list[_Failure] = []
        self._shard: _Shard | None = None
        self._replay = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gw", self._gateway)
        app.router.add_get("/cdn/attachments/{channel}/{id}/{name}", self._cdn)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner, self.port = await serve_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._shard is not None:
            await self._shard.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gw"

    # -- scripting ------------------------------------------------------------------------------

    def new_id(self) -> str:
        return str(next(self._ids))

    def fail(self, method: str, path_regex: str, *, status: int = 429, retry_after: float = 0.5,
             via: bool = True, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` matching requests with an error (by default Discord's 429)."""
        body: dict[str, Any] = ({"message": "You are being rate limited.", "retry_after": retry_after,
                                 "global": False} if status == 429 else {"message": "error", "code": 0})
        extra = {"Via": "1.1 google"} if via else {}
        self._failures.append(_Failure(method, re.compile(path_regex), status, body,
                                       {**extra, **(headers or {})}, times))

    def message(self, channel_id: str, content: str, *, guild_id: str | None = GUILD_ID,
                author_id: str = USER_ID, mentions_bot: bool = False, message_id: str | None = None,
                author_bot: bool = False, attachments: list[dict[str, Any]] | None = None,
                mention_everyone: bool = False) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a user (`guild_id=None`: a DM); `attachments` made
        by `attachment()`; `mention_everyone` as Discord sets it for @everyone and @here."""
        data: dict[str, Any] = {
            "id": message_id or self.new_id(), "type": 0, "content": content, "channel_id": channel_id,
            "author": _user(author_id, f"user{author_id[-2:]}", bot=author_bot),
            "mentions": [_user(BOT_ID, "botkit", bot=True)] if mentions_bot else [],
            "mention_roles": [], "mention_everyone": mention_everyone, "attachments": attachments or [],
            "embeds": [],
            "timestamp": _now(), "edited_timestamp": None, "tts": False, "pinned": False, "flags": 0,
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
            data["member"] = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
        return data

    def interaction(self, name: str, options: dict[str, str | bool] | None = None, *,
                    channel_id: str = CHANNEL_ID, channel_type: int = 0, parent_id: str | None = None,
                    guild_id: str | None = GUILD_ID, interaction_id: str | None = None) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for the slash command `name` (type 2); option values
        are strings (type 3) or booleans (type 5)."""
        command_id = next((c["id"] for cmds in self.commands.values() for c in cmds if c["name"] == name), "1")
        return self._interaction(2, {"id": command_id, "name": name, "type": 1, "options": [
            {"name": k, "type": 5 if isinstance(v, bool) else 3, "value": v} for k, v in (options or {}).items()]},
            channel_id=channel_id, channel_type=channel_type, parent_id=parent_id, guild_id=guild_id,
            interaction_id=interaction_id)

    def component(self, message_id: str, custom_id: str, *, user_id: str = USER_ID,
                  guild_id: str | None = GUILD_ID) -> dict[str, Any]:
        """An INTERACTION_CREATE payload (type 3, MESSAGE_COMPONENT): `user_id` clicked the
        button `custom_id` on the bot's message `message_id` (as the fake holds it)."""
        message = self.messages[message_id]
        channel_id = message["channel_id"]
        thread = self.threads.get(channel_id)
        data = self._interaction(3, {"custom_id": custom_id, "component_type": 2}, channel_id=channel_id,
                                 channel_type=11 if thread else 0, parent_id=thread["parent_id"] if thread else None,
                                 guild_id=guild_id, user_id=user_id)
        data["message"] = message
        return data

    def _interaction(self, kind: int, payload: dict[str, Any], *, channel_id: str, channel_type: int,
                     parent_id: str | None, guild_id: str | None, interaction_id: str | None = None,
                     user_id: str = USER_ID) -> dict[str, Any]:
        channel: dict[str, Any] = {"id": channel_id, "type": channel_type, "name": "help", "position": 0,
                                   "permission_overwrites": [], "flags": 0}
        if parent_id is not None:
            channel["parent_id"] = parent_id
            channel["thread_metadata"] = {"archived": False, "auto_archive_duration": 1440,
                                          "archive_timestamp": _now(), "locked": False}
        token = "itoken" + self.new_id()
        self._token_channels[token] = channel_id
        data: dict[str, Any] = {
            "id": interaction_id or self.new_id(), "application_id": APP_ID, "type": kind, "token": token,
            "version": 1, "attachment_size_limit": 8_388_608, "channel_id": channel_id, "channel": channel,
            "app_permissions": "0", "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {},
            "context": 0 if guild_id else 1, "data": payload,
        }
        user = _user(user_id, f"user{user_id[-2:]}")
        if guild_id is not None:
            data["guild_id"] = guild_id
            data["guild_locale"] = "en-US"
            data["member"] = {"user": user, "roles": [], "flags": 0, "permissions": "0", "joined_at": _now(),
                              "deaf": False, "mute": False}
        else:
            data["user"] = user
        return data

    def reaction(self, message_id: str, emoji: str, *, user_id: str = USER_ID, channel_id: str | None = None,
                 guild_id: str | None = GUILD_ID, author_id: str | None = None) -> dict[str, Any]:
        """A MESSAGE_REACTION_ADD payload: `user_id` added the unicode `emoji` to a message.
        A message the bot posted here is found with its channel and author; for others give
        `channel_id` (and `author_id`, by default the user)."""
        posted = self.messages.get(message_id)
        data: dict[str, Any] = {
            "user_id": user_id, "message_id": message_id, "emoji": {"id": None, "name": emoji},
            "channel_id": channel_id or (posted["channel_id"] if posted else CHANNEL_ID),
            "message_author_id": author_id or (posted["author"]["id"] if posted else USER_ID),
            "burst": False, "burst_colors": [], "type": 0,
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
        return data

    def attachment(self, filename: str, content: bytes, content_type: str | None = None, *,
                   channel_id: str = CHANNEL_ID, size: int | None = None) -> dict[str, Any]:
        """An attachment object for `message(attachments=[...])`: the file is on the fake CDN,
        at a signed URL as Discord's are (`size`: what the message claims, by default the real one)."""
        attachment_id = self.new_id()
        self.files[attachment_id] = content
        path = f"/cdn/attachments/{channel_id}/{attachment_id}/{filename}"
        data: dict[str, Any] = {"id": attachment_id, "filename": filename,
                                "size": len(content) if size is None else size,
                                "url": f"http://127.0.0.1:{self.port}{path}?ex=ffffffff&is=00000000&hm={_sign(path)}&",
                                "proxy_url": f"http://127.0.0.1:{self.port}{path}"}
        if content_type is not None:
            data["content_type"] = content_type
        return data

    async def forum_post(self, content: str, *, forum_id: str = FORUM_ID) -> dict[str, Any]:
        """A user opens a forum post: THREAD_CREATE, then its first message (same id)."""
        thread_id = self.new_id()
        await self.dispatch("THREAD_CREATE", {**_thread(thread_id, forum_id, USER_ID, content[:50]),
                                              "newly_created": True})
        message = self.message(thread_id, content, message_id=thread_id)
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def dispatch(self, event: str, data: Any) -> int:
        """Send a gateway dispatch (op 0) with the next sequence number; returns it."""
        self._seq += 1
        self._log.append((self._seq, event, data))
        if event == "MESSAGE_CREATE":
            self.delivered[data["id"]] = data
        if self._shard is not None and not self._shard.ws.closed:
            await self._shard.ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))
        return self._seq

    async def reconnect(self, *, redeliver: int = 0) -> None:
        """Ask the client to reconnect (op 7); on its RESUME, replay events after its sequence
        plus the last `redeliver` ones it already had (a redelivery, as after a lost ack)."""
        assert self._shard is not None, "no gateway connection"
        self._replay = redeliver
        await self._shard.ws.send_str(json.dumps({"op": 7, "d": None}))

    def requests(self, method: str | None = None, contains: str = "") -> list[Call]:
        return [c for c in self.calls if (method is None or c.method == method) and contains in c.path]

    async def wait_for(self, method: str, contains: str = "", count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until at least `count` matching REST calls were made; return them all."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.requests(method, contains)) >= count), timeout)
        return self.requests(method, contains)

    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds; re-checked after every REST call and gateway RESUME."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    # -- gateway ---------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        shard = self._shard = _Shard(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            payload = json.loads(msg.data)
            op = payload.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                self.identify.append(payload["d"])
                await self._identify(shard, payload["d"].get("shard"))
            elif op == 6:
                await self._resume(ws, payload["d"].get("seq") or 0)
                async with self._changed:
                    self.resumes.append(payload["d"])
                    self._changed.notify_all()
        return ws

    async def _identify(self, shard: _Shard, shard_info: list[int] | None) -> None:
        ready: dict[str, Any] = {"shard": shard_info} if shard_info else {}
        await self.dispatch("READY", {**ready,
            "v": 10, "user": _user(BOT_ID, "botkit", bot=True), "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
            "application": {"id": APP_ID, "flags": 0}, "private_channels": [], "relationships": [],
        })
        channel = {"type": 0, "position": 0, "permission_overwrites": [], "flags": 0}
        await self.dispatch("GUILD_CREATE", {
            "id": GUILD_ID, "name": "Fake guild", "unavailable": False, "member_count": 2, "owner_id": OWNER_ID,
            "channels": [{**channel, "id": CHANNEL_ID, "name": "help"},
                         {**channel, "id": OTHER_CHANNEL_ID, "name": "general", "position": 1},
                         {**channel, "id": FORUM_ID, "name": "questions", "type": 15, "position": 2,
                          "available_tags": []}],
            "threads": list(self.threads.values()),  # the active threads, as Discord sends them
            "roles": [], "members": [], "emojis": [], "stickers": [], "features": [],
        })
        shard.identified.set()
        self.ready.set()

    async def _resume(self, ws: web.WebSocketResponse, seq: int) -> None:
        replay = [entry for entry in self._log if entry[0] > seq - self._replay]
        self._replay = 0
        for s, event, data in replay:
            await ws.send_str(json.dumps({"op": 0, "t": event, "s": s, "d": data}))
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}}))

    # -- CDN ---------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """An attachment, for a URL carrying its signature; without it Discord's CDN says 404."""
        attachment_id = request.match_info["id"]
        content = self.files.get(attachment_id)
        if content is None or not hmac.compare_digest(request.query.get("hm", ""), _sign(request.path)):
            return web.Response(status=404, text="This content is no longer available.")
        async with self._changed:
            self.downloads.append(attachment_id)
            self._changed.notify_all()
        return web.Response(body=content, content_type="application/octet-stream")

    # -- REST --------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw and request.content_type == "application/json" else raw.decode()
        async with self._changed:
            self.calls.append(Call(request.method, path, body, dict(request.query)))
            self._changed.notify_all()
        for failure in self._failures:
            if failure.times > 0 and failure.method == request.method and failure.pattern.search(path):
                failure.times -= 1
                return _json(failure.body, failure.status, failure.headers)
        return await self._answer(request.method, path, body, dict(request.query))

    async def _answer(self, method: str, path: str, body: Any, query: dict[str, str]) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/users/@me":
            return _json(_user(BOT_ID, "botkit", bot=True))
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json({"id": APP_ID, "name": "botkit", "description": "", "icon": None, "bot_public": True,
                          "bot_require_code_grant": False, "owner": _user(OWNER_ID, "owner"),
                          "verify_key": "00", "flags": 0})
        if method == "POST" and path == "/users/@me/channels":  # a DM channel with `recipient_id`
            recipient = str(body["recipient_id"])
            channel_id = self._dms.setdefault(recipient, self.new_id())
            return _json({"id": channel_id, "type": 1, "last_message_id": None, "flags": 0,
                          "recipients": [_user(recipient, f"user{recipient[-2:]}")]})
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.gateway_url, "shards": 1,
                          "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                                  "max_concurrency": 1}})
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            scope = parts[3] if len(parts) == 5 else "global"
            self.commands[scope] = [{**cmd, "id": self.new_id(), "application_id": APP_ID, "version": "1",
                                     "type": cmd.get("type", 1), "description": cmd.get("description", "")}
                                    for cmd in body]
            return _json(self.commands[scope])
        if parts[0] == "channels":
            if method == "GET" and parts[2:] == ["messages"]:
                return self._history(parts[1], query)
            return await self._channel(method, parts[1], parts[2:], body)
        if method == "POST" and parts[0] == "interactions":
            return self._callback(parts[1], parts[2], body)
        if parts[0] == "webhooks":
            return self._webhook(method, parts[2], parts[3:], body)
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _channel(self, method: str, channel_id: str, rest: list[str], body: Any) -> web.StreamResponse:
        if method == "POST" and rest == ["typing"]:
            return web.Response(status=204)
        if method == "POST" and rest == ["messages"]:
            return _json(self._store_message(channel_id, self.new_id(), body))
        if method == "PATCH" and len(rest) == 2 and rest[0] == "messages":
            return _json(self._store_message(channel_id, rest[1], body))
        if method == "PUT" and len(rest) == 5 and (rest[0], rest[2], rest[4]) == ("messages", "reactions", "@me"):
            if rest[1] not in self.messages:
                return _json({"message": "Unknown Message", "code": 10008}, 404)
            emojis = self.reactions.setdefault(rest[1], [])
            if rest[3] not in emojis:
                emojis.append(rest[3])
            return web.Response(status=204)
        if method == "POST" and len(rest) == 3 and rest[2] == "threads":
            return await self._create_thread(channel_id, rest[1], body)
        return _json({"message": "Unknown Channel", "code": 10003}, 404)

    async def _create_thread(self, channel_id: str, message_id: str, body: dict[str, Any]) -> web.Response:
        if message_id in self.threads:
            return _json({"message": "A thread has already been created for this message", "code": 160004}, 400)
        thread = self.threads[message_id] = _thread(message_id, channel_id, BOT_ID, body["name"],
                                                    body.get("auto_archive_duration", 1440))
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    def _history(self, channel_id: str, query: dict[str, str]) -> web.Response:
        """A page of the channel's messages, newest first as Discord sends them: the `limit`
        (default 50) right after `after`, right before `before`, or the latest."""
        messages = sorted((m for m in [*self.delivered.values(), *self.messages.values()]
                           if m["channel_id"] == channel_id), key=lambda m: int(m["id"]))
        if not messages and channel_id not in {CHANNEL_ID, OTHER_CHANNEL_ID, FORUM_ID, *self.threads}:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        limit = int(query.get("limit", 50))
        if "after" in query:
            page = [m for m in messages if int(m["id"]) > int(query["after"])][:limit]
        elif "before" in query:
            page = [m for m in messages if int(m["id"]) < int(query["before"])][-limit:]
        else:
            page = messages[-limit:]
        return _json(page[::-1])

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> web.Response:
        """An interaction response: 4 a message (flags 64: ephemeral), 5 deferred ("thinking…",
        its later original response ephemeral with flags 64), 6 a deferred update, 7 an update."""
        self.responses[interaction_id] = body
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        if ephemeral:
            self._ephemeral_tokens.add(token)
        answer: dict[str, Any] = {"interaction": {
            "id": interaction_id, "type": 2, "response_message_loading": body["type"] == 5,
            "response_message_ephemeral": ephemeral}}
        if body["type"] == 4:
            message_id = self.originals.setdefault(token, self.new_id())
            message = self._store_message(self._token_channels.get(token, CHANNEL_ID), message_id, data,
                                          ephemeral=ephemeral)
            answer["resource"] = {"type": 4, "message": message}
        return _json(answer)

    def _webhook(self, method: str, token: str, rest: list[str], body: Any) -> web.Response:
        channel_id = self._token_channels.get(token, CHANNEL_ID)
        ephemeral = token in self._ephemeral_tokens
        if method == "POST" and not rest:
            flags = int((body or {}).get("flags") or 0) if isinstance(body, dict) else 0
            return _json(self._store_message(channel_id, self.new_id(), body, ephemeral=bool(flags & EPHEMERAL)))
        if method == "PATCH" and len(rest) == 2 and rest[0] == "messages":
            message_id = self.originals.setdefault(token, self.new_id()) if rest[1] == "@original" else rest[1]
            return _json(self._store_message(channel_id, message_id, body,
                                             ephemeral=ephemeral if rest[1] == "@original" else False))
        return _json({"message": "Unknown Webhook", "code": 10015}, 404)

    def _store_message(self, channel_id: str, message_id: str, body: Any, *, ephemeral: bool = False
                       ) -> dict[str, Any]:
        body = body if isinstance(body, dict) else {}
        previous = self.messages.get(message_id, {})
        flags = previous.get("flags", EPHEMERAL if ephemeral else 0)
        message = {"id": message_id, "channel_id": previous.get("channel_id", channel_id), "type": 0,
                   "author": _user(BOT_ID, "botkit", bot=True), "content": body.get("content", previous.get("content", "")),
                   "timestamp": previous.get("timestamp", _now()), "edited_timestamp": _now() if previous else None,
                   "mentions": [], "mention_roles": [], "mention_everyone": False, "attachments": [], "embeds": [],
                   "components": body.get("components", previous.get("components", [])),
                   "tts": False, "pinned": False, "flags": flags}
        self.messages[message_id] = message
        return message
