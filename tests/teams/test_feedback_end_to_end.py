"""Teams and the feedback middleware through the real bot: reactions, Adaptive Card buttons
(`feedback: card`) and Teams' own feedback loop (the default) become votes in the store."""

from __future__ import annotations

import httpx

from botkit.testing import running_bot
from botkit_plugins.feedback.votes import Votes

CHANNEL_THREAD = "19:chan@thread.tacv2;messageid=1699"


def _config(fake, **adapter):
    return {
        "adapters": {"teams": fake.adapter_config(**{"feedback": "card", **adapter})},
        "backends": {"kb": {"type": "fake", "answer": "Refunds take five days."}},
        "middlewares": {"feedback": {}},
    }


async def _post(bot, fake, activity) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(f"{bot.server.url}/api/messages", json=activity,
                                     headers={"Authorization": f"Bearer {fake.sign()}"})
    return response.status_code


async def _answer_id(bot, fake, question) -> str:
    """Ask, wait for the answer, return the id of the message whose card holds the buttons."""
    assert await _post(bot, fake, question) == 202
    await bot.idle(10)
    [(conversation, message_id)] = [key for key, body in fake.messages.items() if body.get("attachments")]
    actions = fake.messages[(conversation, message_id)]["attachments"][0]["content"]["actions"]
    # a fast answer is posted whole, before its id is known: a click's replyToId names the message
    assert [a["data"] for a in actions] == [{"botkit_feedback": "up"}, {"botkit_feedback": "down"}]
    return message_id


async def _votes(bot) -> list[tuple[str, str | None]]:
    return [(row["user"], row["value"]) for row in await Votes(bot.store).list()]


async def test_a_like_on_the_answer_is_a_vote_and_one_on_a_question_is_not(fake, tmp_path):
    async with running_bot(_config(fake), tmp_path) as bot:
        question = fake.activity("refunds?")
        answer = await _answer_id(bot, fake, question)
        assert await _post(bot, fake, fake.reaction(question["id"], "like", user="29:bob")) == 202
        assert await _votes(bot) == []
        assert await _post(bot, fake, fake.reaction(answer, "like")) == 202
        assert await _votes(bot) == [("aad-29:alice", "up")]
        assert len(bot.backends["kb"].calls) == 1


async def test_a_button_click_in_a_channel_thread_is_a_vote_not_a_turn(fake, tmp_path):
    async with running_bot(_config(fake, sources="card"), tmp_path) as bot:
        answer = await _answer_id(bot, fake, fake.activity("refunds?", kind="channel", conversation=CHANNEL_THREAD,
                                                           mention_bot=True))
        calls = len(fake.calls)
        click = fake.card_submit({"botkit_feedback": "down", "message_id": answer}, reply_to=answer,
                                 kind="channel", conversation=CHANNEL_THREAD)
        assert await _post(bot, fake, click) == 202
        await bot.idle(10)
        assert await _votes(bot) == [("aad-29:alice", "down")]
        assert len(bot.backends["kb"].calls) == 1  # no answer turn
    # the 👎 asks for a comment once, in the same thread (not a new one)
    [ask] = fake.calls[calls:]
    assert ask.method == "POST" and ask.conversation == CHANNEL_THREAD and not ask.creates
    assert "What was wrong" in ask.body["text"]
