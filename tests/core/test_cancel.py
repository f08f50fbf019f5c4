"""`Dispatcher.cancel`: the asker gives up on an answer (Ctrl-C in the console)."""

from __future__ import annotations

import asyncio

from botkit.testing import running_bot

CONFIG = {"adapters": {"rec": {"type": "recording"}},
          "backends": {"b": {"type": "fake", "answer": "one two three four", "chunks": 4}},
          "dispatch": {"progress_delay": 0}}


async def test_a_cancelled_answer_keeps_its_text_and_the_thread_goes_on(tmp_path):
    async with running_bot(CONFIG, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        thread = rec.thread("t1")
        assert not bot.dispatcher.cancel(thread)  # nothing streams there
        backend.midway = asyncio.Event()  # the answer stops after its first chunk until set
        assert await rec.inject("first", thread="t1")
        await rec.wait_for(lambda: any(m.text for m in rec.messages.values()))
        shown = next(m.text for m in rec.messages.values() if m.text)
        assert bot.dispatcher.cancel(thread)
        await bot.idle(5)
        (message,) = rec.messages.values()
        assert message.final and message.text == shown and shown != "one two three four"
        assert "cancelled" in message.plain()
        backend.midway = None
        assert await rec.inject("second", thread="t1")
        await bot.idle(5)
        assert rec.messages[rec.order[-1]].text == "one two three four"
        session = await bot.store.active_session(thread, "b")
        turns = await bot.store.turns_of(session.id)
    assert [(t["status"], t["error"]) for t in turns] == [("interrupted", "cancelled"), ("complete", None)]
