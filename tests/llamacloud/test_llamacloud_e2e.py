"""LlamaCloud through the real bot (progress never in the answer) and through `botkit ask`."""

from __future__ import annotations

import asyncio
import sys

from botkit.testing import running_bot, write_config
from botkit_plugins.llamacloud.fake import ANSWER, FakeLlamaCloud


def deployment(fake: FakeLlamaCloud) -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"reports": {"type": "llamacloud", "base_url": fake.url, "api_key": "llx-test-key",
                                     "index_ids": ["idx-abc123"]}}}


async def test_thread_maps_to_one_session_and_progress_stays_out(tmp_path):
    async with FakeLlamaCloud(thinking="Secret chain of thought.") as fake:
        async with running_bot(deployment(fake), tmp_path) as bot:
            rec = bot.adapters["rec"]
            await rec.inject("What were the main findings in Q3?")
            await bot.idle(5)
            await rec.inject("And the risks?")
            await bot.idle(5)
            await rec.inject("x" * 1200, thread="t2")
            await bot.idle(5)
            [session_id] = [sid for sid in fake.sessions if len(fake.sessions[sid]["events"])]
            paths = {r.path for r in fake.calls("POST", "/messages/stream")}
            assert paths == {f"/api/v1/chat/{session_id}/messages/stream"}
            assert len(fake.calls("POST", "/messages/stream")) == 2
            answers = [m for m in rec.calls if m[0] in ("send", "edit")]
            assert all("Secret chain" not in m[2].text for m in answers)
            assert rec.texts()[:2] == [ANSWER, ANSWER]
            assert "1200 characters" in rec.texts()[-1]


async def test_botkit_ask_process(tmp_path):
    async with FakeLlamaCloud() as fake:
        path = write_config(deployment(fake), tmp_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "ask", "--raw", "-c", str(path), "What were the main findings in Q3?",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert ANSWER in out.decode() and "[1] q3_report.pdf" in out.decode()
    assert "Search the bound indexes" not in out.decode()
