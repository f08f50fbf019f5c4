"""The local backend through the real bot: dispatcher, store, renderer, citations middleware."""

import re
from pathlib import Path

from botkit.testing import running_bot

CONFIG = {
    "adapters": {"rec": {"type": "recording", "markup": "plain"}},
    "backends": {"kb": {"type": "local"}},
    "middlewares": {"citations": {}},
}


async def test_slack_question_and_follow_up_through_the_bot(tmp_path: Path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert await rec.inject("How do I add a Slack adapter?", thread="t1")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
        assert final.final
        assert re.search(r"\[1\]", final.text) and "bot_token" in final.text
        footer = "\n".join(note.text for note in final.notes)
        assert "Sources" in footer and "Slack adapter" in footer
        assert len([c for c in rec.calls if c[1] == rec.order[-1]]) >= 2  # placeholder, then the answer



async def test_follow_up_in_a_thread_retrieves_with_the_threads_history(tmp_path: Path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        rec = bot.adapters["rec"]

        async def ask(text: str, thread: str) -> str:
            assert await rec.inject(text, thread=thread)
            await bot.idle(10)
            message = rec.messages[rec.order[-1]]
            return message.text + "\n" + "\n".join(note.text for note in message.notes)

        await ask("Tell me about the Discord adapter", "t1")
        follow_up = await ask("How do I configure it?", "t1")  # history comes from the store
        assert "help_channels" in follow_up and "Discord adapter" in follow_up
        elsewhere = await ask("How do I configure it?", "t2")  # same words, no history
        assert "help_channels" not in elsewhere


async def test_unanswerable_question_through_the_bot(tmp_path: Path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("What is the airspeed velocity of an unladen swallow?")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
        assert final.text.startswith("I couldn't find anything about that")
        assert not re.search(r"\[\d+\]", final.text) and not final.notes
