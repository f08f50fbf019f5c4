"""The turn journal's demands on the Discord adapter: what it keeps of a question (ids, as
JSON) is enough to answer it after a restart, and it finds an answer message whose post
was never recorded. The real discord.py against the fake; the real bot where it runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from botkit.adapters import Outgoing
from botkit.events import Inbound, ThreadKey
from botkit.testing import running_bot
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, USER_ID, FakeDiscord

from .conftest import bot_config


class Journal:
    """Wraps `bot.submit`, keeping every question handed to it. While `answers` is false the
    process behaves as one that dies right after journaling: questions are accepted, none
    is answered. `recovered(n)` is the n-th as the core rebuilds it after the restart (its
    raw from `journal_raw`, through JSON)."""

    def __init__(self, bot: Any, *, answers: bool = False) -> None:
        self.adapter = bot.adapters["discord"]
        self.answers = answers
        self.inbound: list[Inbound] = []
        self._submit = bot.submit
        self._changed = asyncio.Condition()
        bot.submit = self

    async def __call__(self, inbound: Inbound) -> bool:
        async with self._changed:
            self.inbound.append(inbound)
            self._changed.notify_all()
        return await self._submit(inbound) if self.answers else True

    async def recovered(self, n: int = 0) -> Inbound:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.inbound) > n), 10)
        asked = self.inbound[n]
        return dataclasses.replace(asked, raw=json.loads(json.dumps(self.adapter.journal_raw(asked))))


def restarted(fake: FakeDiscord, tmp_path: Path, backend: dict[str, Any], name: str = "restarted", **overrides: Any):
    """A new process on the same Discord (its own store: nothing of the first one's memory)."""
    directory = tmp_path / name
    directory.mkdir()
    return running_bot(bot_config(fake, backend, **overrides), directory)


async def test_a_recovered_question_opens_its_thread_and_is_answered_there(fake: FakeDiscord, discord_bot,
                                                                            tmp_path: Path) -> None:
    async with discord_bot() as bot:
        journal = Journal(bot)
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> does this survive a restart?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        recovered = await journal.recovered()
    assert recovered.raw == {"kind": "message", "id": question["id"], "channel_id": CHANNEL_ID, "guild_id": GUILD_ID}
    assert not fake.requests("POST", "/threads")  # the first process never got to the turn

    async with restarted(fake, tmp_path, {"answer": "It does."}) as bot:
        assert await bot.submit(recovered)
        await bot.idle(10)
        assert bot.backends["b"].calls == [(None, "does this survive a restart?")]
    (opened,) = fake.requests("POST", "/threads")
    assert opened.path == f"/channels/{CHANNEL_ID}/messages/{question['id']}/threads"
    assert opened.json["name"] == "does this survive a restart?"
    (answer,) = fake.requests("POST", f"/channels/{question['id']}/messages")
    assert answer.json["content"] == "It does." and not answer.json.get("message_reference")


async def test_a_recovered_question_whose_thread_was_opened_is_answered_in_it(fake: FakeDiscord, discord_bot,
                                                                             tmp_path: Path) -> None:
    async with discord_bot({"answer": "First answer."}) as bot:
        journal = Journal(bot, answers=True)
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> first", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", f"/channels/{question['id']}/messages")
        await bot.idle(10)
        journal.answers = False  # from here on, the process dies right after journaling
        follow_up = fake.message(question["id"], "and a follow-up")  # in the thread: no mention needed
        await fake.dispatch("MESSAGE_CREATE", follow_up)
        recovered_question, recovered_follow_up = await journal.recovered(0), await journal.recovered(1)

    async with restarted(fake, tmp_path, {"answer": "Answered again."}) as bot:
        assert await bot.submit(recovered_question)  # say the first answer was never recorded
        assert await bot.submit(recovered_follow_up)
        await bot.idle(10)
    threads = fake.requests("POST", "/threads")
    assert len(threads) == 2 and len({c.path for c in threads}) == 1  # opened again: Discord says it exists
    answers = fake.requests("POST", f"/channels/{question['id']}/messages")
    assert [a.json["content"] for a in answers] == ["First answer.", "Answered again.", "Answered again."]
    assert str(answers[2].json["message_reference"]["message_id"]) == follow_up["id"]  # a reply, from ids alone


async def test_a_recovered_ask_is_answered_as_a_message_in_its_channel(fake: FakeDiscord, discord_bot,
                                                                       tmp_path: Path) -> None:
    async with discord_bot() as bot:
        journal = Journal(bot)
        interaction = fake.interaction("ask", {"question": "still there?"})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        recovered = await journal.recovered()
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")  # deferred, then the process died
    assert recovered.raw == {"kind": "command", "id": interaction["id"], "channel_id": CHANNEL_ID,
                             "guild_id": GUILD_ID}

    async with restarted(fake, tmp_path, {"answer": "Yes, as a message."}) as bot:
        assert await bot.submit(recovered)
        await bot.idle(10)
    posted = [c for c in fake.requests("POST") if c.path == f"/channels/{CHANNEL_ID}/messages"]
    assert [c.json["content"] for c in posted] == ["Yes, as a message."]
    assert not fake.requests("PATCH", "/webhooks/") and not fake.requests("POST", "/webhooks/")


async def test_find_orphan_finds_the_bot_message_after_the_question(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot(create_threads=False) as bot:
        journal = Journal(bot)
        adapter = bot.adapters["discord"]
        channel = ThreadKey("discord", GUILD_ID, OTHER_CHANNEL_ID, OTHER_CHANNEL_ID)
        placeholder = Outgoing("", status=adapter.progress_text)
        earlier = await adapter.send(channel, placeholder)  # left by an earlier turn
        await fake.dispatch("MESSAGE_CREATE", fake.message(OTHER_CHANNEL_ID, f"<@{BOT_ID}> where?", mentions_bot=True))
        recovered = await journal.recovered()
        assert recovered.thread == channel
        assert await adapter.find_orphan(recovered, placeholder) is None  # nothing posted for it yet

        typed = fake.message(OTHER_CHANNEL_ID, fake.messages[earlier.message_id]["content"])  # a person, same text
        await fake.dispatch("MESSAGE_CREATE", typed)
        posted = await adapter.send(channel, placeholder, reply_to=recovered)
        await adapter.send(channel, placeholder)  # a later one
        found = await adapter.find_orphan(recovered, placeholder)
        assert found is not None and found.message_id == posted.message_id != earlier.message_id
        assert found.data == posted.data
        await adapter.edit(found, Outgoing("Here.", final=True))
        assert await adapter.find_orphan(recovered, Outgoing("something else")) is None
    assert fake.messages[posted.message_id]["content"] == "Here."
    (history, *_) = fake.requests("GET", f"/channels/{OTHER_CHANNEL_ID}/messages")
    assert history.query["after"] == recovered.event_id


async def test_find_orphan_when_the_answer_thread_was_never_opened(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot() as bot:
        journal = Journal(bot)
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "a question in the help channel"))
        recovered = await journal.recovered()
        adapter = bot.adapters["discord"]
        found = await adapter.find_orphan(recovered, Outgoing("", status=adapter.progress_text))
    assert found is None
    assert fake.requests("GET", f"/channels/{recovered.event_id}/messages")  # it looked where the thread would be


async def test_a_recovered_ephemeral_ask_is_answered_in_a_direct_message(fake: FakeDiscord, discord_bot,
                                                                         tmp_path: Path) -> None:
    async with discord_bot() as bot:
        journal = Journal(bot)
        interaction = fake.interaction("ask", {"question": "my salary band?", "ephemeral": True})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        recovered = await journal.recovered()
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
    assert recovered.raw["ephemeral"] is True

    async with restarted(fake, tmp_path, {"answer": "Only for you."}) as bot:
        assert await bot.submit(recovered)
        await bot.idle(10)
    (opened,) = fake.requests("POST", "/users/@me/channels")
    assert opened.json == {"recipient_id": int(USER_ID)}
    answers = [m for m in fake.messages.values() if m["content"] == "Only for you."]
    assert len(answers) == 1 and answers[0]["channel_id"] not in (CHANNEL_ID, OTHER_CHANNEL_ID)
