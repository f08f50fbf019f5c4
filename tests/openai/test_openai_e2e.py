"""The OpenAI-compatible backend through the real bot (history from the store) and `botkit ask`."""

from __future__ import annotations

import asyncio
import sys

from botkit.testing import running_bot, write_config
from botkit_plugins.openai.fake import FakeOpenAI


def deployment(fake: FakeOpenAI) -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"gpt": {"type": "openai", "base_url": fake.url + "/v1", "api_key": "sk-test",
                                 "model": "m1", "system_prompt": "Be brief.", "max_history_turns": 4}}}


async def test_second_turn_sends_the_threads_history(tmp_path):
    async with FakeOpenAI(answer="First answer.", api_key="sk-test") as fake:
        async with running_bot(deployment(fake), tmp_path) as bot:
            rec = bot.adapters["rec"]
            await rec.inject("First question?")
            await bot.idle(5)
            fake.answer = "Second answer."
            await rec.inject("Second question?")
            await bot.idle(5)
            await rec.inject("Unrelated?", thread="t2")
            await bot.idle(5)
            assert rec.texts() == ["First answer.", "Second answer.", "Second answer."]
    first, second, other = (r.json["messages"] for r in fake.calls("POST", "/chat/completions"))
    assert first == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "First question?"}]
    assert second == [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "First question?"},
                      {"role": "assistant", "content": "First answer."},
                      {"role": "user", "content": "Second question?"}]
    assert other[1:] == [{"role": "user", "content": "Unrelated?"}]


async def test_botkit_ask_process(tmp_path):
    async with FakeOpenAI(answer="Streamed over loopback.", api_key="sk-test") as fake:
        path = write_config(deployment(fake), tmp_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "ask", "-c", str(path), "Hello?",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "Streamed over loopback."
    assert fake.requests[0].json["messages"][-1] == {"role": "user", "content": "Hello?"}


async def test_a_turn_waits_for_a_pooled_connection_instead_of_timing_out(tmp_path):
    """More turns in flight than the backend's connections: the others wait inside their
    slot for one to come free, however long the streams ahead take (bounded by the turn's
    own deadline), rather than fail after the client's timeout."""
    async with FakeOpenAI(answer="one two three four five six seven eight", api_key="sk-test") as fake:
        fake.pace = 0.15  # each answer streams for ~1.5 s, more than the 0.5 s timeout, never silent that long
        config = deployment(fake)
        config["backends"]["gpt"] |= {"max_connections": 1, "timeout": 0.5}
        async with running_bot(config, tmp_path) as bot:
            rec = bot.adapters["rec"]
            await asyncio.gather(rec.inject("first?", thread="t1"), rec.inject("second?", thread="t2"))
            await bot.idle(10)
            assert rec.texts() == ["one two three four five six seven eight"] * 2
