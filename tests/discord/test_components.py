"""Message components on Discord end to end: 👍/👎 and Sources buttons under final answers,
clicks as MESSAGE_COMPONENT interactions (votes recorded through `botkit_reaction`, sources
shown ephemerally), ephemeral /ask answers, and @everyone/@here never asking anything; the
real discord.py against the fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botkit.events import ThreadKey
from botkit.testing import running_bot
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, EPHEMERAL, GUILD_ID, USER_ID, FakeDiscord
from botkit_plugins.feedback.votes import Votes

from .conftest import bot_config
from .test_feedback import BACKEND, OTHER_USER, ask, watch

VOTE_UP, VOTE_DOWN, SOURCES = "botkit:vote:up", "botkit:vote:down", "botkit:sources"


def config(fake: FakeDiscord, **adapter: Any) -> dict[str, Any]:
    config = bot_config(fake, BACKEND, **adapter)
    config["middlewares"] = {"citations": {}, "feedback": {"comment_request": ""}}
    return config


def buttons(message: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(custom_id, label or emoji) of the buttons on a message the fake holds."""
    return [(b["custom_id"], b.get("label") or b["emoji"]["name"])
            for row in message["components"] for b in row["components"]]


async def click(fake: FakeDiscord, message_id: str, custom_id: str, user_id: str = USER_ID) -> dict[str, Any]:
    """Click a button; returns the bot's interaction response (callback body)."""
    interaction = fake.component(message_id, custom_id, user_id=user_id)
    await fake.dispatch("INTERACTION_CREATE", interaction)
    await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
    return fake.responses[interaction["id"]]


async def test_buttons_replace_reactions_and_footer_and_clicks_are_votes_and_sources(
        fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(config(fake), tmp_path) as bot:
        spy = watch(bot)
        question, answer = await ask(fake, bot, "no internet?")
        message = fake.messages[answer]
        assert buttons(message) == [(VOTE_UP, "👍"), (VOTE_DOWN, "👎"), (SOURCES, "Sources")]
        assert all(row["type"] == 1 and b["type"] == 2 for row in message["components"] for b in row["components"])
        assert message["content"] == "Plug the router in again [[1]](<https://docs.example.com/router>)."
        assert not fake.requests("PUT", "/reactions/")  # buttons, not reactions

        vote = await click(fake, answer, VOTE_UP)
        assert vote == {"type": 4, "data": {"content": "Thanks for the feedback!", "flags": EPHEMERAL,
                                            "allowed_mentions": {"parse": []}, "tts": False}}
        shown = await click(fake, answer, SOURCES, user_id=OTHER_USER)
        assert shown["type"] == 4 and shown["data"]["flags"] & EPHEMERAL
        assert "[Router guide](<https://docs.example.com/router>)" in shown["data"]["content"]
        # people's reactions still count, beside the buttons
        await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(answer, "👎", user_id=OTHER_USER))
        await spy.wait(2)
        feedback = await Votes(bot.store).list()

    thread = ThreadKey("discord", GUILD_ID, CHANNEL_ID, question["id"])
    assert [(s["thread"], s["message_id"], s["user"], s["reaction"]) for s in spy.seen] == [
        (thread, answer, USER_ID, "up"), (thread, answer, OTHER_USER, "👎")]
    assert sorted((f["user"], f["value"], f["event_id"]) for f in feedback) == [
        (USER_ID, "up", question["id"]), (OTHER_USER, "down", question["id"])]


async def test_sources_of_an_answer_posted_before_a_restart_come_from_the_store(
        fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(config(fake), tmp_path) as bot:
        _, answer = await ask(fake, bot, "still there?")
    async with running_bot(config(fake), tmp_path) as bot:
        spy = watch(bot)
        interaction = fake.component(answer, SOURCES)
        await fake.dispatch("INTERACTION_CREATE", interaction)
        shown = await fake.wait_for("PATCH", f"/{interaction['token']}/messages/@original")
        vote = await click(fake, answer, VOTE_DOWN)
        await spy.wait(1)
        feedback = await Votes(bot.store).list()

    assert fake.responses[interaction["id"]]["type"] == 5  # thinking, only for the clicker
    assert fake.responses[interaction["id"]]["data"]["flags"] & EPHEMERAL
    assert "[Router guide](<https://docs.example.com/router>)" in shown[-1].json["content"]
    assert vote["data"]["content"] == "Thanks for the feedback!"
    assert [f["value"] for f in feedback] == ["down"]


async def test_reactions_and_buttons_both_when_asked_and_no_buttons_without_the_middlewares(
        fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(config(fake, feedback="both"), tmp_path) as bot:
        _, both = await ask(fake, bot, "both?")
    assert fake.reactions[both] == ["👍", "👎"]
    assert [custom_id for custom_id, _ in buttons(fake.messages[both])] == [VOTE_UP, VOTE_DOWN, SOURCES]

    plain = bot_config(fake, {"answer": "No sources here."})
    plain["middlewares"] = {}
    async with running_bot(plain, tmp_path) as bot:
        _, answer = await ask(fake, bot, "plain?")
    assert fake.messages[answer]["components"] == [] and answer not in fake.reactions


async def test_ephemeral_ask_is_seen_only_by_the_asker(fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(config(fake, feedback="both"), tmp_path) as bot:
        interaction = fake.interaction("ask", {"question": "router?", "ephemeral": True})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
        await bot.idle(10)
        public = fake.interaction("ask", {"question": "router, publicly?"})
        await fake.dispatch("INTERACTION_CREATE", public)
        await fake.wait_for("POST", f"/interactions/{public['id']}/")
        await bot.idle(10)

    deferred = fake.responses[interaction["id"]]
    assert deferred["type"] == 5 and deferred["data"]["flags"] & EPHEMERAL
    answer = fake.messages[fake.originals[interaction["token"]]]
    assert answer["flags"] & EPHEMERAL and answer["content"].startswith("Plug the router in again")
    assert [custom_id for custom_id, _ in buttons(answer)] == [VOTE_UP, VOTE_DOWN, SOURCES]
    assert answer["id"] not in fake.reactions  # an ephemeral message takes no reactions
    # the option is off by default: the same command answers for everyone to see
    assert not fake.responses[public["id"]].get("data", {}).get("flags")
    assert not fake.messages[fake.originals[public["token"]]]["flags"]
    synced = fake.requests("PUT", f"/guilds/{GUILD_ID}/commands")[0].json
    options = next(c["options"] for c in synced if c["name"] == "ask")
    assert [(o["name"], o["type"], o.get("required", False)) for o in options] == [
        ("question", 3, True), ("ephemeral", 5, False)]


async def test_everyone_and_here_never_ask_unless_the_bot_is_mentioned(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Answered."}) as bot:
        # the help channel answers every message, but not these
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "@everyone the office is closed today",
                                                           mention_everyone=True))
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "@here anyone around?"))  # no permission
        asked = fake.message(CHANNEL_ID, f"@here <@{BOT_ID}> what are the opening hours?", mentions_bot=True,
                             mention_everyone=True)
        await fake.dispatch("MESSAGE_CREATE", asked)
        await fake.wait_until(lambda: bool(bot.backends["b"].calls))
        await bot.idle(10)
        [(_, text)] = bot.backends["b"].calls
        assert text.endswith("what are the opening hours?")
