"""RAGFlow through the real bot (recording adapter, store, renderer) and through `botkit ask`."""

from __future__ import annotations

import asyncio
import sys

from botkit.testing import running_bot, write_config
from botkit_plugins.ragflow.fake import FakeRagflow

CHAT = "b1f2f15691f911ef81180242ac120003"


def deployment(fake: FakeRagflow, **backend) -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"robots": {"type": "ragflow", "base_url": fake.url, "api_key": "ragflow-test-key",
                                    "chat_id": CHAT, "retry": {"attempts": 1}, **backend}}}


async def test_thread_turns_reset_and_failure_through_the_bot(tmp_path):
    async with FakeRagflow() as fake:
        fake.add_chat("robots", CHAT)
        async with running_bot(deployment(fake), tmp_path) as bot:
            rec = bot.adapters["rec"]
            await rec.inject("What are Robot Utility Models?")
            await bot.idle(5)
            await rec.inject("How well do they work?")
            await bot.idle(5)
            [session_id] = list(fake.sessions)
            asks = fake.calls("POST", "/completions")
            assert [a.json["session_id"] for a in asks] == [session_id, session_id]
            assert len(fake.calls("POST", "/sessions")) == 1
            last = rec.texts()[-1]
            assert "without further data or training [1]" in last and "[2]" in last and "ID:" not in last

            await rec.inject("reset")
            await bot.idle(5)
            assert fake.calls("DELETE")[0].json == {"ids": [session_id]} and not fake.sessions

            fake.streams.append(b'data:{"code": 500, "message": "LLM timed out", "data": {"answer": '
                                b'"**ERROR**: LLM timed out", "reference": []}}\n\ndata:{"code": 0, "data": true}\n\n')
            await rec.inject("Again?", thread="t2")
            await bot.idle(5)
            assert "LLM timed out" in rec.texts()[-1]


async def test_botkit_ask_process(tmp_path):
    async with FakeRagflow(generation="incremental", markers="hash") as fake:
        fake.add_chat("robots", CHAT)
        path = write_config(deployment(fake), tmp_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "ask", "--raw", "-c", str(path), "What are Robot Utility Models?",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert "without further data or training [1]." in text and "environments [2]." in text
    assert "[1] robot_utility_models.pdf" in text and "##" not in text
