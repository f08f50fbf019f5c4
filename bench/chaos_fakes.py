"""The backend side of bench/chaos.py: a slow OpenAI-compatible fake that notes who asked what.

It runs in the chaos tool's process, not the bot's, so killing the bot leaves it (and what
it recorded) alone. Answers are a pure function of the question, so the tool can tell a
complete answer on screen from a partial one; latencies are random (seeded) and long
enough that a kill usually lands while answers are streaming.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from botkit.testing import openai_chunk
from botkit_plugins.openai.fake import FakeOpenAI

#: prefix of every bot process' backend API key; the rest names the process (p0, r2, ...)
API_KEY_PREFIX = "sk-chaos-"


def answer_parts(question: str) -> list[str]:
    """The chunks the backend streams for `question`: 3-7 parts, fixed by the question."""
    count = 3 + zlib.crc32(question.encode()) % 5
    return [f"Answer to {question}:"] + [f" part {n} of {count}." for n in range(1, count + 1)]


def answer_for(question: str) -> str:
    """The complete answer to `question`, as it should read on screen in the end."""
    return "".join(answer_parts(question))


@dataclass(slots=True)
class Ask:
    """One chat-completions request: the question (last user message) and the process asking."""

    question: str
    process: str
    finished: bool = False


class ChaosBackend(FakeOpenAI):
    """Streams `answer_for(question)` with a random wait before the first chunk and between
    chunks; records every request in `asks` and how many streams each process has open."""

    def __init__(self, rng: random.Random, *, first_chunk: tuple[float, float] = (0.05, 0.4),
                 between_chunks: tuple[float, float] = (0.02, 0.2)) -> None:
        super().__init__()
        self.rng = rng
        self.first_chunk = first_chunk
        self.between_chunks = between_chunks
        self.asks: list[Ask] = []
        self.streaming: Counter[str] = Counter()

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        question = body["messages"][-1]["content"]
        process = request.headers.get("Authorization", "").removeprefix("Bearer ").removeprefix(API_KEY_PREFIX)
        ask = Ask(question, process)
        self.asks.append(ask)
        self.streaming[process] += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            await response.write(openai_chunk({"role": "assistant", "content": ""}).encode())
            for n, part in enumerate(answer_parts(question)):
                await asyncio.sleep(self.rng.uniform(*(self.between_chunks if n else self.first_chunk)))
                await response.write(openai_chunk({"content": part}).encode())
            await response.write(openai_chunk({}, finish_reason="stop").encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            ask.finished = True
        except ConnectionResetError:
            pass  # the bot process was killed mid-answer: that is the point of the exercise
        finally:
            self.streaming[process] -= 1
        return response
