"""5,000 threads asking at once (issue 13): every one is answered, none by a pool timeout,
and file descriptors stay far from the usual 1,024 limit. A thread costs no descriptor:
turns wait inside their slot for one of the backend's pooled connections, and the
streaming fake takes its time (paced chunks), so the pool is really contended."""

from __future__ import annotations

import asyncio
import os

from botkit.testing import running_bot
from botkit_plugins.openai.fake import FakeOpenAI

THREADS = 5_000


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_five_thousand_threads_are_answered_with_bounded_descriptors(tmp_path):
    async with FakeOpenAI(answer="Answered while many others wait.", api_key="sk-test") as fake:
        fake.pace = 0.005  # five chunks: ~20 ms a stream, with 20 connections for 64 turns in flight
        config = {"adapters": {"rec": {"type": "recording"}},
                  "backends": {"gpt": {"type": "openai", "base_url": fake.url + "/v1", "api_key": "sk-test",
                                       "model": "m"}}}
        async with running_bot(config, tmp_path) as bot:
            before = open_descriptors()
            peak = before
            rec = bot.adapters["rec"]
            for n in range(THREADS):
                assert await rec.inject(f"Question {n}?", thread=f"t{n}")
            waiting = asyncio.ensure_future(bot.idle(240))
            while not waiting.done():
                peak = max(peak, open_descriptors())
                await asyncio.wait([waiting], timeout=0.05)
            await waiting
            texts = rec.texts()
    assert texts.count("Answered while many others wait.") == THREADS, [t for t in texts if "many" not in t][:3]
    assert len(fake.calls("POST", "/chat/completions")) == THREADS
    assert peak - before < 100, (before, peak)
