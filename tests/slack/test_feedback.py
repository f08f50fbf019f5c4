"""Feedback on Slack answers, end to end: reactions and 👍/👎 buttons reach the feedback
middleware through `botkit_reaction` and land in the store."""

from __future__ import annotations

import asyncio
from typing import Any

from botkit import hookimpl
from botkit.events import ThreadKey
from botkit.testing import running_bot
from botkit_plugins.slack.testing import BOT_ID, BOT_USER, TEAM, block_actions, event_callback
from botkit_plugins.feedback.votes import Votes

from .conftest import TS, bot_config, mention, post_event, post_interaction

THREAD = ThreadKey("slack", TEAM, "C1", TS)


class Reactions:
    """Records every `botkit_reaction` call; runs after the feedback middleware (trylast),
    so when a call is seen here, the vote is in the store."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()

    @hookimpl(trylast=True)
    async def botkit_reaction(self, thread: ThreadKey, message_id: str, user: str, reaction: str,
                              comment: str | None) -> None:
        async with self._changed:
            self.calls.append({"thread": thread, "message_id": message_id, "user": user, "reaction": reaction})
            self._changed.notify_all()

    async def wait(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls) >= count), 5)


def reaction(user: str, name: str, ts: str, item_user: str | None, event_id: str) -> dict[str, Any]:
    item = {"type": "message", "channel": "C1", "ts": ts}
    event = {"type": "reaction_added", "user": user, "reaction": name, "item": item, "event_ts": "1700000099.000001"}
    if item_user is not None:
        event["item_user"] = item_user
    return event_callback(event, event_id)


def feedback_config(fake, **slack: Any) -> dict[str, Any]:
    return bot_config(fake, slack=slack, backend={"answer": "the answer"}, middlewares={"feedback": {}})


async def answer(bot, fake) -> str:
    """Ask in thread TS; the ts of the answer message."""
    await post_event(bot.server.url, mention())
    await fake.wait_for(lambda f: any(u["text"] == "the answer" for u in f.of("chat.update")))
    await bot.idle(5)
    return fake.responses("chat.postMessage")[0]["ts"]


def votes(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["user"], r["value"], r["event_id"]) for r in rows]


async def test_the_final_answer_carries_the_two_buttons_instead_of_the_prompt(fake, tmp_path):
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        await answer(bot, fake)
    final = fake.of("chat.update")[-1]
    [actions] = [b for b in final["blocks"] if b["type"] == "actions"]
    assert [(e["type"], e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("button", "botkit_feedback_up", "up"), ("button", "botkit_feedback_down", "down")]
    assert [e["text"]["text"] for e in actions["elements"]] == ["👍", "👎"]
    assert "helpful" not in str(final)  # the prompt's text is not shown
    assert not any(b["type"] == "actions" for u in fake.of("chat.update")[:-1] for b in u["blocks"])


async def test_a_thumbs_up_reaction_on_the_answer_lands_and_others_are_ignored(fake, tmp_path):
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        seen = Reactions()
        bot.plugins.add(seen, "test-reactions", "test")
        answer_ts = await answer(bot, fake)
        await post_event(bot.server.url, reaction(BOT_USER, "+1", answer_ts, BOT_USER, "EvR1"))  # the bot's own
        await post_event(bot.server.url, reaction("U2", "+1", TS, "U1", "EvR2"))  # on the question
        await post_event(bot.server.url, reaction("U2", "+1::skin-tone-2", answer_ts, BOT_USER, "EvR3"))
        await seen.wait(1)
        rows = await Votes(bot.store).list()
    assert seen.calls == [{"thread": THREAD, "message_id": answer_ts, "user": "U2", "reaction": "+1::skin-tone-2"}]
    assert votes(rows) == [("U2", "up", "Ev1")]
    assert fake.of("conversations.replies") == []  # known from memory, and item_user told the rest


async def test_a_thumbs_down_click_lands_and_asks_for_a_comment_in_the_thread(fake, tmp_path):
    async with running_bot(feedback_config(fake), tmp_path) as bot:
        seen = Reactions()
        bot.plugins.add(seen, "test-reactions", "test")
        answer_ts = await answer(bot, fake)
        click = block_actions("botkit_feedback_down", "down", channel="C1", message_ts=answer_ts, user="U3",
                              thread_ts=TS)
        assert await post_interaction(bot.server.url, click) == 200
        await seen.wait(1)
        await fake.wait_for("chat.postMessage", count=2)
        rows = await Votes(bot.store).list()
    assert seen.calls == [{"thread": THREAD, "message_id": answer_ts, "user": "U3", "reaction": "down"}]
    assert votes(rows) == [("U3", "down", "Ev1")]
    comment_request = fake.of("chat.postMessage")[1]
    assert comment_request["thread_ts"] == TS and "What was wrong" in comment_request["text"]


async def test_reaction_and_click_over_socket_mode(fake, tmp_path):
    async with running_bot(feedback_config(fake, app_token="xapp-test-token", signing_secret=None), tmp_path) as bot:
        seen = Reactions()
        bot.plugins.add(seen, "test-reactions", "test")
        await fake.push(mention(), "env-1")
        await fake.wait_for(lambda f: any(u["text"] == "the answer" for u in f.of("chat.update")))
        await bot.idle(5)
        answer_ts = fake.responses("chat.postMessage")[0]["ts"]
        await fake.push(reaction("U2", "thumbsup", answer_ts, BOT_USER, "EvR1"), "env-2")
        click = block_actions("botkit_feedback_down", "down", channel="C1", message_ts=answer_ts, user="U3",
                              thread_ts=TS)
        ack = await fake.push(click, "env-3", kind="interactive")
        await seen.wait(2)
        rows = await Votes(bot.store).list()
    assert ack["envelope_id"] == "env-3"
    assert sorted(votes(rows)) == [("U2", "up", "Ev1"), ("U3", "down", "Ev1")]


async def test_after_a_restart_the_thread_is_read_from_slack(fake, tmp_path):
    config = feedback_config(fake)
    async with running_bot(config, tmp_path) as bot:
        answer_ts = await answer(bot, fake)
    fake.replies[answer_ts] = [{"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": "the answer",
                                "ts": answer_ts, "thread_ts": TS}]
    fake.replies[TS] = [{"type": "message", "user": "U1", "text": "question", "ts": TS}]
    async with running_bot(config, tmp_path) as restarted:  # nothing in the adapter's memory
        seen = Reactions()
        restarted.plugins.add(seen, "test-reactions", "test")
        # without item_user, whose message it is comes from conversations.replies too
        await post_event(restarted.server.url, reaction("U2", "+1", TS, None, "EvR1"))
        await post_event(restarted.server.url, reaction("U2", "-1", answer_ts, None, "EvR2"))
        await seen.wait(1)
        await fake.wait_for("conversations.replies", count=2)
        # a click carries its message: the thread is read from it
        click = block_actions("botkit_feedback_up", "up", channel="C1", message_ts=answer_ts, user="U3",
                              thread_ts=TS)
        await post_interaction(restarted.server.url, click)
        await seen.wait(2)
        rows = await Votes(restarted.store).list()
    assert seen.calls == [{"thread": THREAD, "message_id": answer_ts, "user": "U2", "reaction": "-1"},
                          {"thread": THREAD, "message_id": answer_ts, "user": "U3", "reaction": "up"}]
    assert votes(rows) == [("U2", "down", "Ev1"), ("U3", "up", "Ev1")]
    assert sorted(p["ts"] for p in fake.of("conversations.replies")) == sorted([TS, answer_ts])


async def test_a_native_stream_ends_with_slacks_feedback_buttons_whose_clicks_and_reactions_land(fake, tmp_path):
    async with running_bot(feedback_config(fake, streaming="native"), tmp_path) as bot:
        seen = Reactions()
        bot.plugins.add(seen, "test-reactions", "test")
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.stopStream")
        await bot.idle(5)
        stream_ts = fake.responses("chat.startStream")[0]["ts"]
        await post_event(bot.server.url, reaction("U2", "+1", stream_ts, BOT_USER, "EvR1"))
        click = block_actions("botkit_feedback", "down", channel="C1", message_ts=stream_ts, user="U3",
                              thread_ts=TS, action_type="feedback_buttons")
        assert await post_interaction(bot.server.url, click) == 200
        await seen.wait(2)
        rows = await Votes(bot.store).list()
    [stop] = fake.of("chat.stopStream", ok=True)
    assert stop["blocks"] == [{"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": "botkit_feedback",
        "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "up",
                            "accessibility_label": "Helpful"},
        "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "down",
                            "accessibility_label": "Not helpful"}}]}]
    assert fake.of("chat.update") == []  # the stream carried the whole answer
    assert [c["reaction"] for c in seen.calls] == ["+1", "down"] and seen.calls[1]["message_id"] == stream_ts
    assert sorted(votes(rows)) == [("U2", "up", "Ev1"), ("U3", "down", "Ev1")]


async def test_a_stream_that_expires_mid_answer_ends_by_edits_with_the_buttons(fake, tmp_path):
    """Slack ends a long stream on its own (message_not_in_streaming_state, python-slack-sdk
    #1859): the rest of a long answer goes in by chat.update of the same message, once, and
    the feedback buttons still come and still count."""
    long_answer = " ".join(f"Sentence {n} of a long answer." for n in range(1, 121))
    config = bot_config(fake, slack={"streaming": "native"}, backend={"answer": long_answer, "chunks": 12},
                        middlewares={"feedback": {}})
    async with running_bot(config, tmp_path) as bot:
        seen = Reactions()
        bot.plugins.pm.register(seen, name="test-reactions")
        bot.backends["b"].midway = midway = asyncio.Event()  # the backend pauses after its first chunk
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.startStream")
        fake.expire_streams()  # ... long enough for Slack to end the stream
        midway.set()
        await fake.wait_for(lambda f: any(long_answer in u["text"] for u in f.of("chat.update")))
        await bot.idle(5)
        stream_ts = fake.responses("chat.startStream")[0]["ts"]
        final = fake.of("chat.update")[-1]
        [actions] = [b for b in final["blocks"] if b["type"] == "actions"]
        click = block_actions(actions["elements"][0]["action_id"], actions["elements"][0]["value"], channel="C1",
                              message_ts=stream_ts, user="U3", thread_ts=TS)
        assert await post_interaction(bot.server.url, click) == 200
        await seen.wait(1)
        rows = await Votes(bot.store).list()
    assert fake.responses("chat.appendStream")[0] == {"ok": False, "error": "message_not_in_streaming_state"}
    assert len(fake.of("chat.appendStream")) == 1  # no stream call after the expiry but the stop
    assert all(u["ts"] == stream_ts for u in fake.of("chat.update")) and fake.of("chat.postMessage") == []
    shown = "".join(b["text"] for b in final["blocks"] if b["type"] == "markdown")
    assert shown == long_answer  # nothing lost, nothing repeated
    [message] = [m for m in fake.history["C1"] if m["ts"] == stream_ts]
    assert message["text"] == final["text"] and "helpful" not in message["text"]
    assert votes(rows) == [("U3", "up", "Ev1")]


async def test_a_stream_that_expires_at_its_stop_still_ends_with_the_whole_answer_and_the_buttons(fake, tmp_path):
    fake.fail("chat.stopStream", "message_not_in_streaming_state")
    config = bot_config(fake, slack={"streaming": "native"}, backend={"answer": "All of it.", "chunks": 2},
                        middlewares={"feedback": {}})
    async with running_bot(config, tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.update")
        await bot.idle(5)
    stream_ts = fake.responses("chat.startStream")[0]["ts"]
    [update] = fake.of("chat.update")
    assert update["ts"] == stream_ts and update["blocks"][0] == {"type": "markdown", "text": "All of it."}
    assert [b["type"] for b in update["blocks"]] == ["markdown", "actions"]
