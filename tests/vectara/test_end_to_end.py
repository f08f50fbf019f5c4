"""The Vectara backend inside a real bot (dispatcher, store, renderer) and in `botkit ask` as a process."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import yaml

from botkit.plugins import hookimpl
from botkit.testing import running_bot
from botkit_plugins.vectara.backend import UNREACHABLE
from botkit_plugins.vectara.fake import Stream

from .conftest import API_KEY, settings


def bot_config(fake, **backend) -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"kb": {"type": "vectara", **settings(fake, **backend)}}}


class Answers:
    """Observes finished answers the way a middleware would."""

    def __init__(self) -> None:
        self.seen = []

    @hookimpl
    def botkit_answer_complete(self, answer) -> None:
        self.seen.append(answer)


ANSWER = "Robot Utility Models work zero-shot [1]. They succeed 90% of the time [2]."


async def test_a_thread_is_one_chat_and_follow_ups_go_to_its_turns(fake, tmp_path):
    fake.answer = ["Robot Utility Models work zero-shot [", "1]. They succeed 90% of the time [2]."]
    async with running_bot(bot_config(fake), tmp_path) as bot:
        answers = Answers()
        bot.plugins.add(answers, "answers", "test")
        adapter = bot.adapters["rec"]
        for question in ("What are Robot Utility Models?", "How well do they work?", "Where is the paper?"):
            assert await adapter.inject(question, thread="t1")
            await bot.idle(5)
        assert await adapter.inject("Unrelated question", thread="t2")
        await bot.idle(5)
        stored = await bot.store.active_session(adapter.thread("t1"), "kb")
        texts = adapter.texts()
    posts = fake.posts()
    chat_id = stored.session_id
    assert chat_id in fake.chats
    assert [p.path for p in posts[:3]] == ["/v2/chats", f"/v2/chats/{chat_id}/turns", f"/v2/chats/{chat_id}/turns"]
    assert [p.json["query"] for p in posts[:3]] == ["What are Robot Utility Models?", "How well do they work?",
                                                      "Where is the paper?"]
    assert posts[3].path == "/v2/chats"  # another thread, another chat
    assert len(fake.chats) == 2 and len(fake.turns[chat_id]) == 3
    assert all(p.headers["x-api-key"] == API_KEY for p in posts)
    assert sum(ANSWER in t for t in texts) == 4
    assert [a.status for a in answers.seen] == ["complete"] * 4
    assert all(a.score == 0.82 and [s.title for s in a.sources] == ["Robot Utility Models", "RUM results"]
               for a in answers.seen)
    assert {a.session_id for a in answers.seen[:3]} == {chat_id}


async def test_chunks_reach_the_renderer_as_they_stream(fake, tmp_path):
    gate = asyncio.Event()
    fake.script(Stream([{"type": "chat_info"}, {"type": "generation_chunk", "generation_chunk": "First part"},
                        {"type": "generation_chunk", "generation_chunk": ", second part."}, {"type": "end"}],
                       gate=gate, gate_at=2))
    async with running_bot(bot_config(fake), tmp_path) as bot:
        adapter = bot.adapters["rec"]
        await adapter.inject("q")
        await adapter.wait_for(lambda: any(t.startswith("First part") for t in adapter.texts()))
        assert not any("second part" in t for t in adapter.texts())
        gate.set()
        await bot.idle(5)
        assert adapter.texts()[-1].startswith("First part, second part.")


async def test_error_mid_stream_shows_partial_text_and_a_notice(fake, tmp_path):
    fake.script(Stream([{"type": "chat_info"}, {"type": "generation_chunk", "generation_chunk": "Half of it"},
                        {"type": "error", "messages": ["INTERNAL: generation failed"]}, {"type": "end"}]))
    async with running_bot(bot_config(fake), tmp_path) as bot:
        adapter = bot.adapters["rec"]
        await adapter.inject("q")
        await bot.idle(5)
        final = adapter.texts()[-1]
    assert "Half of it" in final
    assert "INTERNAL: generation failed" in final and "couldn't finish" in final


async def test_rejected_key_tells_the_user_and_logs_for_the_operator(fake, tmp_path, caplog):
    fake.api_key = "the-right-key-is-another"
    async with running_bot(bot_config(fake), tmp_path) as bot:
        adapter = bot.adapters["rec"]
        with caplog.at_level(logging.INFO):
            await adapter.inject("q")
            await bot.idle(5)
        final = adapter.texts()[-1]
    assert UNREACHABLE in final and API_KEY not in final
    assert "credentials were rejected (HTTP 401" in caplog.text and API_KEY not in caplog.text


async def test_botkit_ask_streams_an_answer_with_citations_as_a_process(fake, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"adapters": {"console": {}}, "backends": {
        "kb": {"type": "vectara", **settings(fake)}}}), encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "ask", "--raw", "-c", str(config), "What are Robot Utility Models?",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    stdout = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "".join(fake.answer) in stdout
    assert "[1] Robot Utility Models — https://example.org/rum.pdf" in stdout
    assert "[2] RUM results" in stdout
    assert fake.posts()[0].json["stream_response"] is True
    assert API_KEY not in stdout + err.decode()


async def test_citation_marker_split_across_chunks_is_linked_by_the_citations_middleware(fake, tmp_path):
    fake.answer = ["Robot Utility Models work zero-shot [", "1]. They succeed 90% of the time [2", "]."]
    config = {**bot_config(fake), "middlewares": {"citations": {}}}
    async with running_bot(config, tmp_path) as bot:
        adapter = bot.adapters["rec"]
        await adapter.inject("q")
        await bot.idle(5)
        final = adapter.texts()[-1]
    # both markers were recognised although each arrived in two pieces: [1] is linked, and the
    # footer lists the two cited sources
    assert "zero-shot [[1]](<https://example.org/rum.pdf>)." in final
    assert "- [1] [Robot Utility Models](<https://example.org/rum.pdf>)" in final
    assert "- [2] RUM results" in final
