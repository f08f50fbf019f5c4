"""Loopback fakes of HTTP chat APIs, for tests (botkit's and plugin authors').

`FakeServer` is an aiohttp app on 127.0.0.1 that records every request and can be told
to fail the next ones (status, body, `Retry-After`) or to replay raw stream bytes, e.g. a
captured fixture. `FakeOpenAI` speaks the OpenAI chat-completions streaming format.

    async with FakeOpenAI(answer="Hello there") as fake:
        config = {"type": "openai", "base_url": fake.url + "/v1", "model": "m"}
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from botkit.testing import serve_loopback


@dataclass(slots=True)
class Recorded:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None


@dataclass(slots=True)
class Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


async def send_stream(request: web.Request, parts: Iterable[str | bytes], *, content_type: str = "text/event-stream",
                      gate: asyncio.Event | None = None, pace: float = 0.0) -> web.StreamResponse:
    """Write `parts` as one streamed response, `pace` seconds apart; with `gate`, wait for
    it after the first part."""
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    await response.prepare(request)
    for n, part in enumerate(parts):
        if pace and n:
            await asyncio.sleep(pace)  # a model generating, token after token
        await response.write(part.encode() if isinstance(part, str) else part)
        if n == 0 and gate is not None:
            await gate.wait()
    await response.write_eof()
    return response


class FakeServer(ABC):
    """Records requests; `fail_next` and `streams` script what the next requests get."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        #: raw bodies replayed, in order, by the next streaming requests instead of generated ones
        self.streams: list[bytes] = []
        #: set to hold generated streams after their first event until the test releases them
        self.gate: asyncio.Event | None = None
        #: seconds between the parts of a generated stream
        self.pace = 0.0
        self.received = asyncio.Condition()
        self.app = web.Application(middlewares=[self._record])
        self.add_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Mount the API this fake speaks."""

    async def start(self) -> str:
        self._runner, port = await serve_loopback(self.app)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def fail_next(self, status: int, body: Any = None, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.failures.extend(Failure(status, body, headers) for _ in range(times))

    def calls(self, method: str, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    async def wait_requests(self, count: int, timeout: float = 5) -> None:
        async with self.received:
            await asyncio.wait_for(self.received.wait_for(lambda: len(self.requests) >= count), timeout)

    def replay(self) -> bytes | None:
        """The next scripted raw stream, if any."""
        return self.streams.pop(0) if self.streams else None

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        async with self.received:
            self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                          dict(request.headers), body))
            self.received.notify_all()
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure.body, (dict, list)):
                return web.json_response(failure.body, status=failure.status, headers=failure.headers)
            return web.Response(status=failure.status, text=failure.body or "", headers=failure.headers)
        return await handler(request)


def openai_chunk(delta: dict[str, Any], finish_reason: str | None = None, usage: dict[str, Any] | None = None,
                 model: str = "model") -> str:
    """One `data:` event of an OpenAI chat-completions stream."""
    chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
             "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    if usage is not None:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


def words(text: str, parts: int = 3) -> list[str]:
    """`text` cut into about `parts` pieces at spaces (each keeps its leading space)."""
    tokens = text.split(" ")
    size = max(1, -(-len(tokens) // parts))
    pieces = [" ".join(tokens[i:i + size]) for i in range(0, len(tokens), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


class FakeOpenAI(FakeServer):
    """`POST /v1/chat/completions` streaming `answer` in a few deltas, `[DONE]` last; what
    each request asked, content parts and all, is in `questions()`.

    With `reasoning`, reasoning_content deltas come first (as vLLM and DeepSeek send).
    """

    def __init__(self, answer: str = "Hello from the fake model.", *, reasoning: str = "",
                 api_key: str | None = None) -> None:
        self.answer = answer
        self.reasoning = reasoning
        self.api_key = api_key
        super().__init__()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.completions)

    def questions(self) -> list[str | list[dict[str, Any]]]:
        """The last user message of each completion request: its text, or its content parts
        (`{"type": "text", ...}`, `{"type": "image_url", "image_url": {"url": "data:..."}}`)."""
        return [[m for m in r.json["messages"] if m["role"] == "user"][-1]["content"]
                for r in self.calls("POST", "/chat/completions") if isinstance(r.json, dict)]

    async def completions(self, request: web.Request) -> web.StreamResponse:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, status=401)
        raw = self.replay()
        if raw is not None:
            return await send_stream(request, [raw])
        body = await request.json()
        parts = [openai_chunk({"role": "assistant", "content": ""})]
        parts += [openai_chunk({"reasoning_content": piece}) for piece in words(self.reasoning)] if self.reasoning else []
        parts += [openai_chunk({"content": piece}) for piece in words(self.answer)]
        parts.append(openai_chunk({}, finish_reason="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = sum(len(json.dumps(m["content"])) for m in body["messages"]) // 4
            completion = len(self.answer) // 4
            chunk = json.loads(openai_chunk({})[6:])
            chunk["choices"] = []
            chunk["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}
            parts.append(f"data: {json.dumps(chunk)}\n\n")
        parts.append("data: [DONE]\n\n")
        return await send_stream(request, parts, gate=self.gate, pace=self.pace)
