"""A loopback fake of Vectara's chat API v2 for tests (botkit's and plugin authors').

It speaks the documented framing (`event:<type>` / `data:<compact json>` / blank line,
`text/event-stream`; docs/specs/backends.md §1), keeps chats and turns so history calls
work, records every request, and can be scripted reply by reply: a stream of events
(with delays or a cut connection), raw bytes (e.g. a fixture file), a JSON body, or an
error status. Start it with `async with FakeVectara() as fake:` and point a backend's
`base_url` (and `token_url`, for OAuth2) at `fake.url`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientConnectionResetError, web

from botkit.testing import serve_loopback

DEFAULT_RESULTS: list[dict[str, Any]] = [
    {"text": "Robot Utility Models are trained on a diverse set of environments and objects.", "score": 0.88,
     "part_metadata": {"lang": "eng"}, "document_metadata": {"title": "Robot Utility Models",
                                                             "url": "https://example.org/rum.pdf"},
     "document_id": "rum-paper", "request_corpora_index": 0, "corpus_key": "robotics-papers"},
    {"text": "The policies reach a 90% success rate in unseen environments.", "score": 0.74,
     "part_metadata": {"lang": "eng", "page": 4}, "document_metadata": {"title": "RUM results"},
     "document_id": "rum-results", "request_corpora_index": 0, "corpus_key": "robotics-papers"},
]
DEFAULT_CHUNKS = ["Robot Utility Models are policies", " that work in new environments [", "1]",
                  ". They succeed 90% of the time [2]", "."]


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any


@dataclass
class Stream:
    """An SSE answer: payload dicts framed as Vectara does, or raw strings written as they are.

    A `{"type": "chat_info"}` payload without ids gets the fake's chat and turn ids.
    `delay` is slept before each event; after `cut_after` events the connection is dropped;
    with a `gate`, event number `gate_at` waits until the gate is set.
    """

    events: list[dict[str, Any] | str]
    delay: float = 0.0
    cut_after: int | None = None
    gate: asyncio.Event | None = None
    gate_at: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    """Bytes sent verbatim with `content_type` (a fixture file, malformed data)."""

    body: bytes | str
    content_type: str = "text/event-stream"
    status: int = 200


@dataclass
class Reply:
    """A JSON response with any status (an error body, a `ChatFullResponse`) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Scripted = Stream | Raw | Reply


def frame(payload: dict[str, Any]) -> bytes:
    """One event in Vectara's exact framing."""
    return f"event:{payload['type']}\ndata:{json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def error(status: int, *messages: str, **extra: Any) -> Reply:
    """An error response in Vectara's `Error` shape."""
    return Reply(status, {**extra, "messages": list(messages), "request_id": "0" * 32})


class FakeVectara:
    """The fake server. `answer` chunks and `search_results` shape the default reply."""

    def __init__(self, *, api_key: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, answer: list[str] | None = None,
                 search_results: list[dict[str, Any]] | None = None, fcs: float | None = 0.82) -> None:
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.answer = list(answer or DEFAULT_CHUNKS)
        self.search_results = list(search_results or DEFAULT_RESULTS)
        self.fcs = fcs
        #: the most chats one GET /v2/chats returns, whatever `limit` asks (to exercise page_key)
        self.page_size = 1000
        self.requests: list[Recorded] = []
        self.chats: dict[str, dict[str, Any]] = {}
        self.turns: dict[str, list[dict[str, Any]]] = {}
        self.tokens: set[str] = set()
        #: paths of streams the client hung up on before they were finished
        self.hangups: list[str] = []
        self.replies: deque[Scripted] = deque()
        self.overrides: dict[tuple[str, str], Scripted] = {}
        self.received = asyncio.Condition()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._override])
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_post("/v2/chats", self._chat)
        app.router.add_get("/v2/chats", self._list_chats)
        app.router.add_get("/v2/chats/{chat_id}", self._get_chat)
        app.router.add_delete("/v2/chats/{chat_id}", self._delete_chat)
        app.router.add_post("/v2/chats/{chat_id}/turns", self._chat)
        app.router.add_get("/v2/chats/{chat_id}/turns", self._list_turns)
        app.router.add_patch("/v2/chats/{chat_id}/turns/{turn_id}", self._patch_turn)
        self._runner, port = await serve_loopback(app)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeVectara:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, *replies: Scripted) -> None:
        """Answer the next chat/turn POSTs with these, in order (then the default answer)."""
        self.replies.extend(replies)

    def respond(self, method: str, path: str, reply: Reply | Raw) -> None:
        """Always answer `method path` (e.g. "GET", "/v2/chats") with `reply` instead of the fake's own."""
        self.overrides[(method.upper(), path)] = reply

    def posts(self) -> list[Recorded]:
        """The chat and turn requests received, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/v2/")]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Wait until `count` requests were recorded."""
        async with self.received:
            await asyncio.wait_for(self.received.wait_for(lambda: len(self.requests) >= count), timeout)

    def default_events(self, chat_id: str, turn_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [
            {"type": "search_results", "search_results": self.search_results},
            {"type": "chat_info", "chat_id": chat_id, "turn_id": turn_id},
            *({"type": "generation_chunk", "generation_chunk": c} for c in self.answer),
            {"type": "generation_end"},
        ]
        if self.fcs is not None:
            events.append({"type": "factual_consistency_score", "factual_consistency_score": self.fcs})
        return [*events, {"type": "end"}]

    # -- handlers ----------------------------------------------------------------------------

    @web.middleware
    async def _override(self, request: web.Request, handler: Any) -> web.StreamResponse:
        reply = self.overrides.get((request.method, request.path))
        if reply is None:
            return await handler(request)
        await self._record(request)
        return _raw_response(reply) if isinstance(reply, Raw) else _json_response(reply)

    async def _record(self, request: web.Request) -> Recorded:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        recorded = Recorded(request.method, request.path, dict(request.query),
                            {k.lower(): v for k, v in request.headers.items()}, body)
        async with self.received:
            self.requests.append(recorded)
            self.received.notify_all()
        return recorded

    def _unauthorized(self, recorded: Recorded) -> web.Response | None:
        key = recorded.headers.get("x-api-key")
        bearer = recorded.headers.get("authorization", "").removeprefix("Bearer ")
        if (self.api_key is not None and key == self.api_key) or bearer in self.tokens:
            return None
        if self.api_key is None and not self.client_id:
            return None
        return _json_response(error(401, "Invalid API key or token."))

    async def _token(self, request: web.Request) -> web.Response:
        await self._record(request)
        form = await request.post()
        if (form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"tok_{next(self._ids)}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if (denied := self._unauthorized(recorded)) is not None:
            return denied
        reply = self.replies.popleft() if self.replies else None
        if isinstance(reply, Reply) and reply.status >= 300:
            return _json_response(reply)
        if isinstance(reply, Raw):
            return _raw_response(reply)
        chat_id = request.match_info.get("chat_id")
        if chat_id is not None and chat_id not in self.chats:
            return _json_response(error(404, f"Chat {chat_id} not found.", id=chat_id))
        body = recorded.json if isinstance(recorded.json, dict) else {}
        chat_id, turn_id = self._new_turn(chat_id, body.get("query", ""))
        if isinstance(reply, Reply):
            return _json_response(reply)
        if reply is None and not body.get("stream_response"):
            return web.json_response(self._full_response(chat_id, turn_id))
        stream = reply or Stream(self.default_events(chat_id, turn_id))
        return await self._stream(request, stream, chat_id, turn_id)

    def _new_turn(self, chat_id: str | None, query: str) -> tuple[str, str]:
        n = next(self._ids)
        turn_id = f"trn_{n}"
        answer = "".join(self.answer)
        if chat_id is None:
            chat_id = f"cht_{n}"
            self.chats[chat_id] = {"id": chat_id, "first_query": query, "first_answer": answer,
                                   "enabled": True, "created_at": "2025-06-12T09:41:27.518Z"}
            self.turns[chat_id] = []
        self.turns[chat_id].append({"id": turn_id, "chat_id": chat_id, "query": query, "answer": answer,
                                    "enabled": True, "created_at": "2025-06-12T09:41:27.518Z"})
        return chat_id, turn_id

    def _full_response(self, chat_id: str, turn_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"chat_id": chat_id, "turn_id": turn_id, "answer": "".join(self.answer),
                               "response_language": "eng", "search_results": self.search_results}
        if self.fcs is not None:
            out["factual_consistency_score"] = self.fcs
        return out

    async def _stream(self, request: web.Request, stream: Stream, chat_id: str, turn_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **stream.headers})
        await response.prepare(request)
        try:
            for i, event in enumerate(stream.events):
                if stream.cut_after is not None and i >= stream.cut_after:
                    assert request.transport is not None
                    request.transport.abort()  # a dropped connection, not a clean end
                    return response
                if stream.gate is not None and i == stream.gate_at:
                    await stream.gate.wait()
                if stream.delay:
                    await asyncio.sleep(stream.delay)
                if isinstance(event, str):
                    await response.write(event.encode())
                    continue
                if event.get("type") == "chat_info" and "chat_id" not in event:
                    event = {**event, "chat_id": chat_id, "turn_id": turn_id}
                await response.write(frame(event))
            await response.write_eof()
        except (ConnectionError, ClientConnectionResetError):
            async with self.received:
                self.hangups.append(request.path)
                self.received.notify_all()
        return response

    async def _list_chats(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if (denied := self._unauthorized(recorded)) is not None:
            return denied
        limit = min(int(request.query.get("limit", "1000")), self.page_size)
        key = request.query.get("page_key")
        start = int(json.loads(base64.b64decode(key))["offset"]) if key else 0
        chats = list(self.chats.values())[start:start + limit]
        metadata = {}
        if start + limit < len(self.chats):
            metadata["page_key"] = base64.b64encode(json.dumps({"offset": start + limit}).encode()).decode()
        return web.json_response({"chats": chats, "metadata": metadata})

    def _known_chat(self, request: web.Request) -> str | web.Response:
        chat_id = request.match_info["chat_id"]
        if chat_id not in self.chats:
            return _json_response(error(404, f"Chat {chat_id} not found.", id=chat_id))
        return chat_id

    async def _get_chat(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        found = self._unauthorized(recorded) or self._known_chat(request)
        return found if isinstance(found, web.Response) else web.json_response(self.chats[found])

    async def _delete_chat(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        found = self._unauthorized(recorded) or self._known_chat(request)
        if isinstance(found, web.Response):
            return found
        del self.chats[found], self.turns[found]
        return web.Response(status=204)

    async def _list_turns(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        found = self._unauthorized(recorded) or self._known_chat(request)
        return found if isinstance(found, web.Response) else web.json_response({"turns": self.turns[found]})

    async def _patch_turn(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        found = self._unauthorized(recorded) or self._known_chat(request)
        if isinstance(found, web.Response):
            return found
        turns = self.turns[found]
        index = next((i for i, t in enumerate(turns) if t["id"] == request.match_info["turn_id"]), None)
        if index is None:
            return _json_response(error(404, "Turn not found.", id=request.match_info["turn_id"]))
        if (recorded.json or {}).get("enabled") is not False:
            return _json_response(error(400, "Enabling a turn is not implemented."))
        for turn in turns[index:]:
            turn["enabled"] = False
        return web.json_response(turns[index])


def _json_response(reply: Reply) -> web.Response:
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)


def _raw_response(reply: Raw) -> web.Response:
    body = reply.body.encode() if isinstance(reply.body, str) else reply.body
    return web.Response(body=body, status=reply.status, headers={"Content-Type": reply.content_type})
