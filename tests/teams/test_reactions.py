"""Reactions and feedback buttons: what the adapter renders, and what it reports through `botkit_reaction`."""

from __future__ import annotations

import pytest
from botkit_plugins.teams.testing import BOT_ID, TENANT

from botkit.adapters import Outgoing
from botkit.events import Note, ThreadKey

FEEDBACK = Note("Was this helpful? Reply 👍 or 👎.", kind="feedback")
SOURCES = Note("[1] Guide", kind="sources")
CHANNEL_THREAD = "19:chan@thread.tacv2;messageid=1699"


def _reactions(bot) -> list[tuple[ThreadKey, str, str, str, str | None]]:
    return [(kw["thread"], kw["message_id"], kw["user"], kw["reaction"], kw["comment"])
            for kw in bot.plugins.reactions]


def _buttons(activity: dict) -> list[tuple[str, dict]]:
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return [(a["title"], a["data"]) for a in attachment["content"]["actions"] if a["type"] == "Action.Submit"]


async def test_a_like_on_a_message_is_reported_in_the_messages_thread(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    assert await post(fake.activity("question")) == 202
    thread = bot.inbound[0].thread
    assert await post(fake.reaction("msg-7", "like", "heart")) == 202
    assert _reactions(bot) == [(thread, "msg-7", "aad-29:alice", "like", None),
                               (thread, "msg-7", "aad-29:alice", "heart", None)]
    assert all(kw["adapter"] is adapter for kw in bot.plugins.reactions)
    assert len(bot.inbound) == 1 and fake.calls == []  # neither a question nor an answer


async def test_channel_reactions_share_the_thread_of_its_messages(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    assert await post(fake.activity("question", kind="channel", conversation=CHANNEL_THREAD)) == 202
    assert await post(fake.reaction("msg-3", "like", kind="channel", conversation=CHANNEL_THREAD)) == 202
    # on a top-level post, the post reacted to is the thread's root
    assert await post(fake.reaction("1699", "like", kind="channel", conversation="19:chan@thread.tacv2")) == 202
    thread = bot.inbound[0].thread
    assert thread == ThreadKey("teams", TENANT, "19:chan@thread.tacv2", "1699")
    assert [r[:2] for r in _reactions(bot)] == [(thread, "msg-3"), (thread, "1699")]


async def test_removed_reactions_and_the_bots_own_are_ignored(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    assert await post(fake.reaction("msg-7", removed=("like",))) == 202
    assert await post(fake.reaction("msg-7", "like", user=BOT_ID)) == 202
    assert _reactions(bot) == []


async def test_unsigned_reactions_are_refused(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    assert await post(fake.reaction("msg-7", "like"), token=None) == 401
    assert await post(fake.card_submit({"botkit_feedback": "up", "message_id": "msg-7"}),
                      token=fake.sign(aud="someone-else")) == 401
    assert _reactions(bot) == []


async def test_a_feedback_click_is_a_reaction_not_a_question(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    assert await post(fake.card_submit({"botkit_feedback": "down", "message_id": "msg-7"}, reply_to="msg-9")) == 202
    # a card sent as a plain post never learned its id: the click says which message it is on
    assert await post(fake.card_submit({"botkit_feedback": "up"}, reply_to="msg-9")) == 202
    assert await post(fake.card_submit({"botkit_feedback": "up"})) == 202  # no message named: dropped
    thread = ThreadKey("teams", TENANT, "a:1personal", "")
    assert _reactions(bot) == [(thread, "msg-7", "aad-29:alice", "down", None),
                               (thread, "msg-9", "aad-29:alice", "up", None)]
    assert bot.inbound == [] and fake.calls == []


async def test_other_card_submits_are_not_votes(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    submit = fake.card_submit({"choice": "a"}, reply_to="msg-9")
    submit["text"] = "option a"
    assert await post(submit) == 202
    assert _reactions(bot) == [] and [i.text for i in bot.inbound] == ["option a"]


@pytest.mark.parametrize("sources", ["markdown", "card"])
async def test_feedback_note_becomes_buttons_naming_the_edited_message(fake, make_adapter, sources):
    adapter, bot, post = await make_adapter(sources=sources, feedback="card")
    assert await post(fake.activity("question", kind="groupChat")) == 202
    thread = bot.inbound[0].thread
    ref = await adapter.send(thread, Outgoing("", status="Searching…"), reply_to=bot.inbound[0])
    await adapter.edit(ref, Outgoing("Answer [1]", [SOURCES, FEEDBACK], final=True))
    shown = fake.messages[(fake.calls[-1].conversation, ref.message_id)]
    assert _buttons(shown) == [("👍", {"botkit_feedback": "up", "message_id": ref.message_id}),
                               ("👎", {"botkit_feedback": "down", "message_id": ref.message_id})]
    assert "helpful" not in shown["text"]  # the buttons replace the prompt
    card = shown["attachments"][0]["content"]
    if sources == "card":
        assert shown["text"] == "Answer [1]" and [b["text"] for b in card["body"]] == ["[1] Guide"]
    else:
        assert shown["text"] == "Answer [1]\n\n[1] Guide" and card["body"] == []


async def test_a_streamed_answer_ends_with_buttons_naming_the_stream(fake, make_adapter):
    adapter, bot, post = await make_adapter(feedback="card")
    assert await post(fake.activity("question")) == 202
    ref = await adapter.show_progress(bot.inbound[0])
    await adapter.edit(ref, Outgoing("Answer", [FEEDBACK], final=True))
    final = fake.calls[-1]
    assert final.streaminfo["streamType"] == "final"
    assert [data["message_id"] for _, data in _buttons(final.body)] == [ref.message_id] * 2


async def test_a_posted_answer_with_feedback_gets_buttons_without_an_id(fake, make_adapter):
    adapter, bot, post = await make_adapter(streaming=False, feedback="card")
    assert await post(fake.activity("question")) == 202
    await adapter.send(bot.inbound[0].thread, Outgoing("Answer", [FEEDBACK], final=True), reply_to=bot.inbound[0])
    assert _buttons(fake.calls[-1].body) == [("👍", {"botkit_feedback": "up"}), ("👎", {"botkit_feedback": "down"})]


async def test_without_feedback_there_is_no_card(fake, make_adapter):
    adapter, bot, post = await make_adapter(streaming=False)
    assert await post(fake.activity("question")) == 202
    await adapter.send(bot.inbound[0].thread, Outgoing("Answer", [SOURCES], final=True), reply_to=bot.inbound[0])
    body = fake.calls[-1].body
    assert {k: body[k] for k in body if k != "entities"} == {
        "type": "message", "text": "Answer\n\n[1] Guide", "textFormat": "markdown", "replyToId": bot.inbound[0].raw["id"]}
    assert [e["additionalType"] for e in body["entities"]] == [["AIGeneratedContent"]]  # the AI label only
