"""A loopback fake of an OpenAI-compatible chat API, for tests (botkit's and plugin authors').

`FakeOpenAI` speaks the chat-completions streaming format on a `botkit.testing.FakeServer`
(which records requests, fails on demand and replays raw streams).

    async with FakeOpenAI(answer="Hello there") as fake:
        config = {"type": "openai", "base_url": fake.url + "/v1", "model": "m"}
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from botkit.testing import FakeServer, openai_chunk, send_stream, words


class FakeOpenAI(FakeServer):
    """`POST /v1/chat/completions` streaming `answer` in a few deltas, `[DONE]` last; what
    each request asked, content parts and all, is in `questions()`.

    With `reasoning`, reasoning_content deltas come first (as vLLM and DeepSeek send).
    `GET /v1/models` lists the `served` model ids; both refuse a key other than `api_key`.
    """

    def __init__(self, answer: str = "Hello from the fake model.", *, reasoning: str = "",
                 api_key: str | None = None, served: tuple[str, ...] = ("m",)) -> None:
        self.answer = answer
        self.served = served
        self.reasoning = reasoning
        self.api_key = api_key
        super().__init__()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.completions)
        router.add_get("/v1/models", self.models)

    def questions(self) -> list[str | list[dict[str, Any]]]:
        """The last user message of each completion request: its text, or its content parts
        (`{"type": "text", ...}`, `{"type": "image_url", "image_url": {"url": "data:..."}}`)."""
        return [[m for m in r.json["messages"] if m["role"] == "user"][-1]["content"]
                for r in self.calls("POST", "/chat/completions") if isinstance(r.json, dict)]

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, status=401)
        return None

    async def models(self, request: web.Request) -> web.Response:
        """`GET /v1/models`: the models served, to a client whose key is taken."""
        return self._refused(request) or web.json_response(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "fake"} for model in self.served]})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
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
