"""A loopback fake of Slack for tests: the Web API, a Socket Mode websocket, signed events.

Point the real slack_sdk/slack-bolt at it (`api_url: fake.api_url`) and assert on
`fake.calls`. It speaks the wire format of docs/specs/platforms.md §4 and §7 (the
AI-app methods: native streams that expire, assistant thread status, suggested prompts and
titles, feedback buttons) and needs only aiohttp, so plugin authors can use it without
importing Slack's libraries:

    async with FakeSlack() as fake:
        ... configure the adapter with api_url=fake.api_url ...
        await fake.wait_for("chat.update")
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from botkit.testing import serve_loopback

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T111"
#: the bot token the fake's file host accepts (the tests' adapters are configured with it)
BOT_TOKEN = "xoxb-test-token"
_SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass(slots=True)
class Call:
    """One Web API call as the fake received it (query, form and JSON merged)."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def sign(body: str, secret: str, timestamp: int | None = None,
         content_type: str = "application/json") -> dict[str, str]:
    """The headers Slack sends with an Events API request: v0 HMAC-SHA256 of `v0:ts:body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": content_type}


def interaction_body(payload: dict[str, Any]) -> str:
    """How an interactive payload (block_actions...) is POSTed: a form with one `payload` field;
    sign it with `content_type="application/x-www-form-urlencoded"`."""
    return "payload=" + quote(json.dumps(payload))


def block_actions(action_id: str, value: str, *, channel: str, message_ts: str, user: str = "U1",
                  thread_ts: str | None = None, team_id: str = TEAM, action_type: str = "button") -> dict[str, Any]:
    """The `block_actions` payload of a click on a button of one of the bot's messages
    (`action_type` "feedback_buttons": one of Slack's native 👍/👎 under an AI answer)."""
    message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": message_ts, "text": ""}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return {
        "type": "block_actions", "api_app_id": "A111", "token": "legacy", "trigger_id": "1.2.3",
        "team": {"id": team_id, "domain": "fake"}, "user": {"id": user, "team_id": team_id},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel}, "message": message,
        "actions": [{"type": action_type, "action_id": action_id, "block_id": "b", "value": value,
                     "action_ts": str(time.time())}],
    }


def assistant_thread(kind: str, channel: str, thread_ts: str, *, user: str = "U1",
                     context_channel: str | None = "C1", team_id: str = TEAM) -> dict[str, Any]:
    """The inner event Slack sends when someone opens the assistant pane (`kind`
    "assistant_thread_started") or moves to another channel with it open
    ("assistant_thread_context_changed"); wrap it with `event_callback`."""
    context = {"channel_id": context_channel, "team_id": team_id, "enterprise_id": None} if context_channel else {}
    return {"type": kind, "assistant_thread": {"user_id": user, "context": context, "channel_id": channel,
                                               "thread_ts": thread_ts},
            "event_ts": str(time.time())}


def event_callback(event: dict[str, Any], event_id: str, team_id: str = TEAM) -> dict[str, Any]:
    """Wrap an inner event the way the Events API and Socket Mode deliver it."""
    return {
        "token": "legacy", "team_id": team_id, "api_app_id": "A111", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": team_id, "user_id": BOT_USER, "is_bot": True}],
    }


class FakeSlack:
    """The fake server. `users` and `channels` feed users.info/conversations.info.

    `history` holds each channel's messages in posting order: what the bot posted
    (chat.postMessage and native streams, changed by chat.update) and what a test put there
    with `add_message`; conversations.replies and conversations.history read it, paginated.
    `replies` maps a ts to the messages conversations.replies returns for it instead.
    Files people share (`file()`) are served under /files-pri/ to requests carrying the
    bot token `BOT_TOKEN` as a Bearer header; without it the file host answers, as Slack's
    does, with its sign-in page (HTML, 200). `downloads` lists the file ids served.

    A native stream (chat.startStream) takes appends until it is stopped, or until it
    expires as Slack's do: `stream_ttl` seconds after it started, or when a test calls
    `expire_streams()`; after that appendStream and stopStream answer
    `message_not_in_streaming_state`. `statuses`, `prompts` and `titles` hold what the
    assistant.threads.* methods set, per (channel, thread_ts); a reply posted or streamed
    into a thread clears its status, as Slack does.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, str] = {"U1": "alice", "U2": "bob", BOT_USER: "botkit"}
        self.channels: dict[str, str] = {"C1": "general", "C2": "random"}
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.acks: list[dict[str, Any]] = []
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}  # file id -> (file object, content)
        self.downloads: list[str] = []
        self._file_ids = itertools.count(1)
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}
        self.prompts: dict[tuple[str, str], dict[str, Any]] = {}
        self.titles: dict[tuple[str, str], str] = {}
        #: seconds a native stream lives (Slack's expire after about 5 minutes); None: until stopped
        self.stream_ttl: float | None = None
        self._streams: dict[str, float] = {}  # ts of a message still streaming -> when it started
        self._scripted: dict[str, list[_Scripted]] = {}
        self._latency: dict[str, list[float]] = {}
        self._held: dict[str, asyncio.Event] = {}
        self.waiting: list[str] = []  # methods of calls held by `hold`, while they wait
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_open = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._file)
        self._runner, self.port = await serve_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- scripting ------------------------------------------------------------------------

    def answer(self, method: str, body: dict[str, Any], times: int = 1) -> None:
        """The next `times` calls of `method` answer `body` (HTTP 200), whatever they asked."""
        self._scripted.setdefault(method, []).extend(_Scripted(200, body) for _ in range(times))

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        self.answer(method, {"ok": False, "error": error}, times)

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 0) -> None:
        """The next `times` calls of `method` answer HTTP 429 with Retry-After."""
        self._scripted.setdefault(method, []).extend(
            _Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            for _ in range(times))

    def slow(self, method: str, *seconds: float) -> None:
        """The next calls of `method` answer after these latencies, one per call, in order."""
        self._latency.setdefault(method, []).extend(seconds)

    def hold(self, method: str) -> asyncio.Event:
        """Calls of `method` wait (listed in `waiting`) until the returned event is set."""
        return self._held.setdefault(method, asyncio.Event())

    def expire_streams(self) -> None:
        """Every native stream still open expires now (Slack's, after some minutes)."""
        self._streams.clear()

    def add_message(self, channel: str, text: str, *, ts: str | None = None, user: str = "U1",
                    thread_ts: str | None = None, **fields: Any) -> dict[str, Any]:
        """Put a message into `channel`'s history (a person's, unless `user`/`bot_id` say otherwise)."""
        message = {"type": "message", "user": user, "text": text, "ts": ts or self._next_ts(), **fields}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.history.setdefault(channel, []).append(message)
        return message

    def file(self, name: str, content: bytes, mimetype: str, *, size: int | None = None,
             **fields: Any) -> dict[str, Any]:
        """A file object as a `file_share` message's `files` carries it, served by the file host
        (`size`: what Slack says, by default the real one; `fields` override any key)."""
        file_id = f"F{next(self._file_ids):08d}"
        url = f"http://127.0.0.1:{self.port}/files-pri/{TEAM}-{file_id}/download/{quote(name)}"
        file = {"id": file_id, "created": int(time.time()), "timestamp": int(time.time()), "name": name,
                "title": name, "mimetype": mimetype, "filetype": name.rsplit(".", 1)[-1], "user": "U1",
                "mode": "hosted", "editable": False, "is_external": False, "external_type": "",
                "size": len(content) if size is None else size, "url_private": url.replace("/download", ""),
                "url_private_download": url, "permalink": f"https://fake.slack.com/files/U1/{file_id}/{name}",
                **fields}
        self.files[file_id] = (file, content)
        return file

    # -- assertions -------------------------------------------------------------------------

    def of(self, method: str, *, ok: bool = False) -> list[dict[str, Any]]:
        """The params of every call of `method`, in order (`ok`: only those that succeeded)."""
        return [c.params for c in self.calls if c.method == method and (not ok or c.response.get("ok"))]

    def responses(self, method: str) -> list[dict[str, Any]]:
        """What the fake answered to each call of `method`, in order."""
        return [c.response for c in self.calls if c.method == method]

    async def wait_for(self, method: str | Callable[[FakeSlack], bool], count: int = 1,
                       timeout: float = 5.0) -> None:
        """Wait until `method` was called `count` times (or a predicate on the fake holds)."""
        def done() -> bool:
            return method(self) if callable(method) else len(self.of(method)) >= count
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the Web API --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        call = Call(method, params, auth.removeprefix("Bearer ") or None)
        await self._delay(method)
        queue = self._scripted.get(method)
        scripted = queue.pop(0) if queue else _Scripted(200, self._answer(method, params))
        call.status, call.response = scripted.status, scripted.body
        self.calls.append(call)
        await self._notify()
        return web.json_response(scripted.body, status=scripted.status, headers=scripted.headers)

    async def _delay(self, method: str) -> None:
        latencies = self._latency.get(method)
        if latencies:
            await asyncio.sleep(latencies.pop(0))  # the remote API being slow, not a test waiting
        held = self._held.get(method)
        if held is not None and not held.is_set():
            self.waiting.append(method)
            await self._notify()
            try:
                await held.wait()
            finally:
                self.waiting.remove(method)

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        ok: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            return {**ok, "url": "https://x.slack.com/", "team": "T", "user": "botkit", "team_id": TEAM,
                    "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "chat.postMessage":
            message = self.add_message(p.get("channel", ""), p.get("text", ""), user=BOT_USER, bot_id=BOT_ID,
                                       thread_ts=p.get("thread_ts"), blocks=p.get("blocks") or [])
            self.statuses.pop((p.get("channel", ""), p.get("thread_ts") or ""), None)  # a reply clears it
            return {**ok, "channel": p.get("channel"), "ts": message["ts"], "message": message}
        if method == "chat.update":
            for message in self.history.get(p.get("channel", ""), []):
                if message["ts"] == p.get("ts"):
                    message.update(text=p.get("text", ""), blocks=p.get("blocks") or [])
            return {**ok, "channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text", "")}
        if method.startswith("chat.") and method.endswith("Stream"):
            return self._stream(method, p)
        if method.startswith("assistant.threads."):
            return self._assistant(method, p)
        if method == "users.info":
            user = p.get("user", "")
            if user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            name = self.users[user]
            return {**ok, "user": {"id": user, "name": name, "real_name": name.title(),
                                   "profile": {"display_name": name}}}
        if method == "conversations.info":
            channel = p.get("channel", "")
            if channel not in self.channels:
                return {"ok": False, "error": "channel_not_found"}
            return {**ok, "channel": {"id": channel, "name": self.channels[channel]}}
        if method == "conversations.replies":
            ts = p.get("ts", "")
            if ts in self.replies:
                return {**ok, "messages": self.replies[ts], "has_more": False, "response_metadata": {"next_cursor": ""}}
            messages = self.history.get(p.get("channel", ""), [])
            parent = [m for m in messages if m["ts"] == ts]
            thread = [m for m in messages if m.get("thread_ts") == ts and m["ts"] != ts and _in_range(m, p)]
            return self._page(parent + thread, p)
        if method == "conversations.history":
            top = [m for m in self.history.get(p.get("channel", ""), [])
                   if m.get("thread_ts", m["ts"]) == m["ts"] and _in_range(m, p)]
            return self._page(top[::-1], p)  # newest first
        if method == "files.info":
            found = self.files.get(p.get("file", ""))
            return {**ok, "file": found[0]} if found else {"ok": False, "error": "file_not_found"}
        if method == "apps.connections.open":
            return {**ok, "url": f"ws://127.0.0.1:{self.port}/link"}
        return ok

    def _stream(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        """chat.startStream / appendStream / stopStream on a message in `history`."""
        channel = p.get("channel")
        if not channel or len(p.get("markdown_text") or "") > 12_000:
            return {"ok": False, "error": "invalid_arguments"}
        if method == "chat.startStream":
            if not p.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            message = self.add_message(channel, p.get("markdown_text") or "", user=BOT_USER, bot_id=BOT_ID,
                                       thread_ts=p["thread_ts"], blocks=[])
            self._streams[message["ts"]] = time.monotonic()
            self.statuses.pop((channel, p["thread_ts"]), None)
            return {"ok": True, "channel": channel, "ts": message["ts"]}
        ts = p.get("ts", "")
        message = next((m for m in self.history.get(channel, []) if m["ts"] == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        started = self._streams.get(ts)
        if started is None or (self.stream_ttl is not None and time.monotonic() - started > self.stream_ttl):
            self._streams.pop(ts, None)
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if method == "chat.stopStream" and not _valid_blocks(p.get("blocks") or []):
            return {"ok": False, "error": "invalid_blocks"}
        message["text"] += p.get("markdown_text") or ""
        if method == "chat.stopStream":
            del self._streams[ts]
            message["blocks"] = p.get("blocks") or []
        return {"ok": True, "channel": channel, "ts": ts}

    def _assistant(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        """assistant.threads.setStatus / setSuggestedPrompts / setTitle."""
        where = (p.get("channel_id") or "", p.get("thread_ts") or "")
        if not all(where):
            return {"ok": False, "error": "invalid_arguments"}
        if method == "assistant.threads.setStatus":
            loading = p.get("loading_messages")
            if "status" not in p or (loading is not None and (not isinstance(loading, list) or len(loading) > 10)):
                return {"ok": False, "error": "invalid_arguments"}
            if p["status"]:
                self.statuses[where] = {"status": p["status"], "loading_messages": loading}
            else:
                self.statuses.pop(where, None)  # an empty status clears it
        elif method == "assistant.threads.setSuggestedPrompts":
            prompts = p.get("prompts")
            if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4 or not all(
                    isinstance(x, dict) and x.get("title") and x.get("message") for x in prompts):
                return {"ok": False, "error": "invalid_arguments"}
            self.prompts[where] = {"prompts": prompts, "title": p.get("title")}
        elif method == "assistant.threads.setTitle":
            if not p.get("title"):
                return {"ok": False, "error": "invalid_arguments"}
            self.titles[where] = p["title"]
        else:
            return {"ok": False, "error": "unknown_method"}
        return {"ok": True}

    @staticmethod
    def _page(messages: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
        """One page of `messages` as `limit` (default 100) and `cursor` (an offset here) ask."""
        start, limit = int(p.get("cursor") or 0), int(p.get("limit") or 100)
        more = start + limit < len(messages)
        return {"ok": True, "messages": messages[start:start + limit], "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    # -- files ----------------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["team_file"].removeprefix(f"{TEAM}-")
        if file_id not in self.files:
            return web.Response(status=404, text="file not found")
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.Response(text=_SIGN_IN_PAGE, content_type="text/html")  # Slack's answer: not an error
        file, content = self.files[file_id]
        self.downloads.append(file_id)
        await self._notify()
        return web.Response(body=content, content_type=file["mimetype"])

    # -- Socket Mode --------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping answers the SDK's pings
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "debug_info": {"host": "fake"}, "connection_info": {"app_id": "A111"}})
        self._socket_open.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(msg.data))
                    await self._notify()
        finally:
            self._sockets.remove(ws)
        return ws

    async def push(self, payload: dict[str, Any], envelope_id: str, retry_attempt: int = 0,
                   timeout: float = 5.0, kind: str = "events_api") -> dict[str, Any]:
        """Send an envelope over the open socket and return the client's ack; `kind`
        "interactive" carries a block_actions payload."""
        await asyncio.wait_for(self._socket_open.wait(), timeout)
        await self._sockets[-1].send_json({
            "envelope_id": envelope_id, "type": kind, "accepts_response_payload": kind == "interactive",
            "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else "",
            "payload": payload})
        await self.wait_for(lambda f: any(a.get("envelope_id") == envelope_id for a in f.acks), timeout=timeout)
        return next(a for a in self.acks if a.get("envelope_id") == envelope_id)


def _valid_blocks(blocks: Any) -> bool:
    """The checks Slack makes of a `context_actions` block of feedback buttons (§7): 1 to 5
    elements; each feedback_buttons element has a positive and a negative button, each with
    plain text and a value."""
    if not isinstance(blocks, list):
        return False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "context_actions":
            continue
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 5:
            return False
        for element in elements:
            if element.get("type") != "feedback_buttons":
                continue
            for key in ("positive_button", "negative_button"):
                button = element.get(key) or {}
                text = button.get("text") or {}
                if text.get("type") != "plain_text" or not text.get("text") or not isinstance(button.get("value"), str):
                    return False
    return True


def _in_range(message: dict[str, Any], p: dict[str, Any]) -> bool:
    """Whether `message` lies within the `oldest`/`latest` bounds of a conversations.* call."""
    ts, inclusive = Decimal(message["ts"]), str(p.get("inclusive", "")).lower() in ("1", "true")
    oldest, latest = p.get("oldest"), p.get("latest")
    if oldest and (ts < Decimal(oldest) or (ts == Decimal(oldest) and not inclusive)):
        return False
    return not latest or ts < Decimal(latest) or (ts == Decimal(latest) and inclusive)
