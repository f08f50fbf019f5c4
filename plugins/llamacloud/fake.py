"""A loopback fake of LlamaCloud's index chat API, for tests.

Sessions (`/api/v1/chat`, paged lists, summary, detail, delete) and the message
stream, with FastAPI-style errors. The stream's framing is configurable because the
real one is undocumented: `event_names` (`event: delta|message` lines or none),
`space` after the colon, `crlf` line ends. `streams` replays raw bytes instead.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from botkit.testing import FakeServer, send_stream, words

ANSWER = "Q3 revenue grew 12% year over year, driven by enterprise subscriptions (q3_report.pdf, p. 2)."
RESULTS = [{"file_id": "dfl-1b2c3d", "file_name": "q3_report.pdf", "page_range_start": 2, "page_range_end": 2,
            "score": 0.81, "content": "Q3 revenue grew 12% year over year, driven by enterprise subscriptions."}]
_DELTAS = {"text_delta", "thinking_delta"}


class FakeLlamaCloud(FakeServer):
    def __init__(self, api_key: str = "llx-test-key", *, answer: str = ANSWER,
                 results: list[dict[str, Any]] | None = None, thinking: str = "Search the bound indexes first.",
                 event_names: bool = True, space: bool = True, crlf: bool = False, page_size_cap: int = 100) -> None:
        self.api_key = api_key
        self.answer = answer
        self.results = RESULTS if results is None else results
        self.thinking = thinking
        self.event_names, self.space, self.crlf = event_names, space, crlf
        self.page_size_cap = page_size_cap
        self.sessions: dict[str, dict[str, Any]] = {}
        #: index ids the next turn reports as skipped (and fails on, if require_all_indexes)
        self.skip: list[str] = []
        super().__init__()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/v1/chat", self.create)
        router.add_get("/api/v1/chat", self.list)
        router.add_get("/api/v1/chat/{sid}", self.retrieve)
        router.add_get("/api/v1/chat/{sid}/summary", self.summary)
        router.add_delete("/api/v1/chat/{sid}", self.delete)
        router.add_post("/api/v1/chat/{sid}/messages/stream", self.stream)

    def add_session(self, index_ids: list[str] | None = None) -> str:
        sid = f"ses-{uuid.uuid4().hex[:16]}"
        self.sessions[sid] = {"session_id": sid, "last_updated_at": "2026-04-22T12:33:02.118730",
                              "shared_access": "read_only", "generated_title": None, "index_ids": index_ids,
                              "job_metadata": None, "events": []}
        return sid

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"detail": "Invalid API key"}, status=401)
        return None

    def _session(self, request: web.Request) -> dict[str, Any] | web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        session = self.sessions.get(request.match_info["sid"])
        return session if session is not None else web.json_response({"detail": "Session not found"}, status=404)

    @staticmethod
    def _summary(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k != "events"}

    async def create(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = await request.json()
        sid = self.add_session(body.get("index_ids"))
        return web.json_response(self._summary(self.sessions[sid]), status=201)

    async def list(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        size = min(int(request.query.get("page_size", 50)), self.page_size_cap)
        start = int(request.query.get("page_token") or 0)
        items = [self._summary(s) for s in self.sessions.values()][start:start + size]
        more = start + size < len(self.sessions)
        return web.json_response({"items": items, "next_page_token": str(start + size) if more else None})

    async def retrieve(self, request: web.Request) -> web.Response:
        session = self._session(request)
        return session if isinstance(session, web.Response) else web.json_response(session)

    async def summary(self, request: web.Request) -> web.Response:
        session = self._session(request)
        return session if isinstance(session, web.Response) else web.json_response(self._summary(session))

    async def delete(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        del self.sessions[session["session_id"]]
        return web.Response(status=204)

    def frame(self, event: dict[str, Any]) -> str:
        sep = ": " if self.space else ":"
        end = "\r\n" if self.crlf else "\n"
        lines = [f"event{sep}{'delta' if event['type'] in _DELTAS else 'message'}"] if self.event_names else []
        lines.append(f"data{sep}{json.dumps(event, separators=(',', ':'))}")
        return end.join(lines) + end + end

    async def stream(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        body = await request.json()
        prompt, index_ids = body.get("prompt"), body.get("index_ids")
        if not isinstance(prompt, str) or len(prompt) > 1000:
            return web.json_response({"detail": [{"type": "string_too_long", "loc": ["body", "prompt"],
                                                  "msg": "String should have at most 1000 characters",
                                                  "ctx": {"max_length": 1000}}]}, status=422)
        if not index_ids:
            return web.json_response({"detail": [{"type": "too_short", "loc": ["body", "index_ids"],
                                                  "msg": "List should have at least 1 item after validation"}]},
                                     status=422)
        raw = self.replay()
        if raw is not None:
            return await send_stream(request, [raw])
        events: list[dict[str, Any]] = [{"type": "user_input", "content": prompt}]
        if self.skip and body.get("require_all_indexes"):
            events.append({"type": "stop", "usage": {"total_input_tokens": 0, "total_output_tokens": 0, "turns": 0,
                                                      "duration_ms": 812.0},
                           "is_error": True, "error": f"Index {self.skip[0]} could not be queried",
                           "skipped_index_ids": self.skip})
        else:
            if self.thinking:
                events += [{"type": "thinking_delta", "content": piece} for piece in words(self.thinking, 2)]
                events.append({"type": "thinking", "content": self.thinking})
            events += [{"type": "tool_call", "arguments": {"index_id": index_ids[0], "query": prompt[:60],
                                                           "top_k": 5}, "call_id": "call_01", "name": "retrieve"},
                       {"type": "tool_result", "call_id": "call_01", "name": "retrieve",
                        "result": {"results": self.results}, "image_attachment": None}]
            events += [{"type": "text_delta", "content": piece} for piece in words(self.answer)]
            events += [{"type": "text", "content": self.answer},
                       {"type": "stop", "usage": {"total_input_tokens": 5123, "total_output_tokens": 214,
                                                  "turns": 2, "duration_ms": 6234.5},
                        "is_error": False, "error": None, "skipped_index_ids": self.skip}]
        session["events"] += events
        session["job_metadata"] = {"turns": sum(e["type"] == "user_input" for e in session["events"])}
        return await send_stream(request, [self.frame(e) for e in events], gate=self.gate)
