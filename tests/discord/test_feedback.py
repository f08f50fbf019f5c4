"""Feedback on Discord end to end with `feedback: reactions`: 👍/👎 reactions under final
answers, people's reactions recorded by the feedback middleware, notes as subtext; the real
discord.py against the fake. (Buttons, the default, are in test_components.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botkit import hookimpl
from botkit.bot import Bot
from botkit.events import ThreadKey
from botkit.testing import running_bot
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, GUILD_ID, USER_ID, FakeDiscord
from botkit_plugins.feedback.votes import Votes

from .conftest import bot_config

OTHER_USER = "900000000000000011"
BACKEND = {"answer": "Plug the router in again [1].", "score": 0.2,
           "sources": [{"title": "Router guide", "url": "https://docs.example.com/router"}]}


def feedback_config(fake: FakeDiscord, **adapter: Any) -> dict[str, Any]:
    adapter = {"feedback": "reactions", "sources_button": False, **adapter}
    config = bot_config(fake, BACKEND, **adapter)
    config["middlewares"] = {"citations": {}, "fcs_warning": {}, "feedback": {}}
    return config


class Reactions:
    """Sees every `botkit_reaction` after the feedback middleware has handled it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    @hookimpl(trylast=True)
    def botkit_reaction(self, thread: ThreadKey, message_id: str, user: str, reaction: str) -> None:
        self.seen.append({"thread": thread, "message_id": message_id, "user": user, "reaction": reaction})
        self.changed.set()

    async def wait(self, count: int) -> None:
        while len(self.seen) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


def watch(bot: Bot) -> Reactions:
    spy = Reactions()
    bot.plugins.add(spy, "test:reactions", "test")
    return spy


async def ask(fake: FakeDiscord, bot: Bot, text: str) -> tuple[dict[str, Any], str]:
    """A question in the help channel; returns it and the id of the answer message."""
    question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> {text}", mentions_bot=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    await fake.wait_for("POST", f"/channels/{question['id']}/messages")  # a fast answer: no typing first
    await bot.idle(10)
    answers = [m["id"] for m in fake.messages.values() if m["channel_id"] == question["id"]]
    assert len(answers) == 1
    return question, answers[0]


async def test_answer_gets_subtext_warning_and_vote_reactions_and_a_vote_is_recorded(
        fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        spy = watch(bot)
        question, answer = await ask(fake, bot, "no internet?")
        thread = question["id"]

        content = fake.messages[answer]["content"]
        assert content.startswith("Plug the router in again")
        lines = content.splitlines()
        assert "-# ⚠️ Parts of this answer may not be supported by the sources. Please check them." in lines
        sources = [line for line in lines if "https://docs.example.com/router" in line]
        assert sources and not sources[0].startswith("-#")  # sources are normal text
        assert "Was this helpful" not in content  # the reactions replace the prompt
        assert fake.reactions[answer] == ["👍", "👎"]
        assert len(fake.requests("PUT", "/reactions/")) == 2

        # ignored: the bot's own reactions (Discord echoes them), reactions on the user's question
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(answer, "👍", user_id=BOT_ID))
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(thread, "👎", user_id=OTHER_USER,
                                                                  channel_id=CHANNEL_ID))
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(answer, "👍🏽"))  # events arrive in order
        await spy.wait(1)
        feedback = await Votes(bot.store).list()

    assert spy.seen == [{"thread": ThreadKey("discord", GUILD_ID, CHANNEL_ID, thread), "message_id": answer,
                         "user": USER_ID, "reaction": "👍🏽"}]
    assert [(f["user"], f["value"], f["event_id"]) for f in feedback] == [(USER_ID, "up", question["id"])]


async def test_vote_on_an_answer_posted_before_a_restart(fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        question, answer = await ask(fake, bot, "still there after a restart?")
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        spy = watch(bot)
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(answer, "👎", user_id=OTHER_USER))
        await spy.wait(1)
        feedback = await Votes(bot.store).list()

    assert spy.seen[0]["thread"] == ThreadKey("discord", GUILD_ID, CHANNEL_ID, question["id"])
    assert [(f["user"], f["value"]) for f in feedback] == [(OTHER_USER, "down")]


async def test_slash_command_answer_is_voted_on_under_the_interaction(fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        spy = watch(bot)
        interaction = fake.interaction("ask", {"question": "router?"})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
        await bot.idle(10)
        answer = fake.originals[interaction["token"]]
        assert fake.reactions[answer] == ["👍", "👎"]
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(answer, "👍"))
        await spy.wait(1)
        feedback = await Votes(bot.store).list()

    assert spy.seen[0]["message_id"] == interaction["id"]  # what the core recorded for the answer
    assert [(f["user"], f["value"], f["event_id"]) for f in feedback] == [(USER_ID, "up", interaction["id"])]


async def test_no_reactions_without_the_feedback_middleware(fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(bot_config(fake, BACKEND, feedback="reactions"), tmp_path) as bot:
        _, answer = await ask(fake, bot, "plain?")
    assert answer not in fake.reactions and not fake.requests("PUT", "/reactions/")


async def test_long_answer_with_notes_stays_within_2000_characters(fake: FakeDiscord, tmp_path: Path) -> None:
    long_text = " ".join(f"word{i:04d}" for i in range(400))  # 3,599 characters, split in two
    config = feedback_config(fake)
    config["backends"]["b"].update(answer=long_text + " [1]", chunks=2)
    config["middlewares"]["fcs_warning"] = {"text": "Check this answer carefully. " * 8}
    async with running_bot(config, tmp_path) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> long?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", f"/channels/{question['id']}/messages")
        await bot.idle(10)

    messages = [m for m in fake.messages.values() if m["channel_id"] == question["id"]]
    assert len(messages) >= 2
    assert all(0 < len(m["content"]) <= 2000 for m in messages)
    last = messages[-1]
    assert "-# Check this answer carefully." in last["content"]
    assert fake.reactions == {last["id"]: ["👍", "👎"]}  # under the final message only
