"""The Events API end to end: signed requests to botkit's server, the real bolt/slack_sdk,
the real dispatcher and store, answers recorded by the fake Slack Web API."""

from __future__ import annotations

import time

from botkit.testing import running_bot
from botkit_plugins.slack.testing import BOT_ID, BOT_USER, block_actions, event_callback

from .conftest import TS, bot_config, mention, message, post_event, post_interaction

ANSWER = "To reset your password, open Settings and choose Reset [1]. Then sign in again."
SOURCES = [{"title": "Password help", "url": "https://docs.example.com/password"}]


async def test_mention_answers_in_thread_growing_by_updates(fake, tmp_path):
    config = bot_config(fake, backend={"answer": ANSWER, "chunks": 4, "delay": 0.02, "sources": SOURCES},
                        middlewares={"citations": {}})
    async with running_bot(config, tmp_path) as bot:
        status, _ = await post_event(bot.server.url, mention())
        assert status == 200
        await fake.wait_for(lambda f: any("Then sign in again." in c.get("text", "") for c in f.of("chat.update")))
        await bot.idle(5)
    post = fake.of("chat.postMessage")
    assert len(post) == 1
    assert post[0]["channel"] == "C1" and post[0]["thread_ts"] == TS
    updates = fake.of("chat.update")
    assert len(updates) >= 2 and all(u["ts"] == fake.responses("chat.postMessage")[0]["ts"] for u in updates)
    final = updates[-1]
    markdown = [b["text"] for b in final["blocks"] if b["type"] == "markdown"]
    assert markdown and "open Settings and choose Reset" in markdown[0] and markdown[0].endswith("Then sign in again.")
    context = " ".join(e["text"] for b in final["blocks"] if b["type"] == "context" for e in b["elements"])
    assert "https://docs.example.com/password" in context and "Password help" in context
    assert bot.backends["b"].calls == [(None, "how do I reset my password?")]


async def test_followup_in_thread_continues_the_session_without_mention(fake, tmp_path):
    async with running_bot(bot_config(fake, backend={"answer": "Answer {turn}"}), tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for(lambda f: any(c.get("text") == "Answer 1" for c in f.of("chat.update")))
        await bot.idle(5)
        followup = message("and on mobile?", kind="message", ts="1690000000.000200", thread_ts=TS,
                           channel_type="channel")
        await post_event(bot.server.url, event_callback(followup, "Ev2"))
        await fake.wait_for(lambda f: any(c.get("text") == "Answer 2" for c in f.of("chat.update")))
        await bot.idle(5)
    calls = bot.backends["b"].calls
    assert calls == [(None, "how do I reset my password?"), ("fake-session-1", "and on mobile?")]
    assert [p["thread_ts"] for p in fake.of("chat.postMessage")] == [TS, TS]


async def test_message_in_a_thread_the_bot_is_not_in_is_ignored(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        stray = message("just chatting", kind="message", ts="1690000000.000300", thread_ts="1690000000.000001",
                        channel_type="channel")
        await post_event(bot.server.url, event_callback(stray, "Ev9"))
        await fake.wait_for("conversations.replies")
        await post_event(bot.server.url, mention(event_id="Ev10"))
        await fake.wait_for("chat.postMessage")
        await bot.idle(5)
    assert fake.of("conversations.replies")[0]["ts"] == "1690000000.000001"
    assert [c[1] for c in bot.backends["b"].calls] == ["how do I reset my password?"]


async def test_followup_found_by_reading_the_thread_after_a_restart(fake, tmp_path):
    fake.replies["1690000000.000001"] = [{"type": "message", "user": "U1", "text": "q", "ts": "1690000000.000001"},
                                         {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": "a",
                                          "ts": "1690000000.000002"}]
    async with running_bot(bot_config(fake), tmp_path) as bot:
        followup = message("more please", kind="message", ts="1690000000.000300", thread_ts="1690000000.000001",
                           channel_type="channel")
        await post_event(bot.server.url, event_callback(followup, "Ev3"))
        await fake.wait_for("chat.postMessage")
        await bot.idle(5)
    assert fake.of("chat.postMessage")[0]["thread_ts"] == "1690000000.000001"
    assert bot.backends["b"].calls == [(None, "more please")]


async def test_direct_message_is_answered_in_its_thread(fake, tmp_path):
    async with running_bot(bot_config(fake, backend={"answer": "Hi {question}"}), tmp_path) as bot:
        dm = message("hello there", kind="message", channel="D1", channel_type="im")
        await post_event(bot.server.url, event_callback(dm, "Ev4"))
        await fake.wait_for(lambda f: any(c.get("text") == "Hi hello there" for c in f.of("chat.update")))
        await bot.idle(5)
    post = fake.of("chat.postMessage")
    assert post[0]["channel"] == "D1" and post[0]["thread_ts"] == TS


async def test_dm_conversation_mode_keeps_one_session_and_posts_top_level(fake, tmp_path):
    config = bot_config(fake, slack={"dm_sessions": "conversation"}, backend={"answer": "A{turn}"})
    async with running_bot(config, tmp_path) as bot:
        for n, ts in enumerate(("1690000000.000100", "1690000000.000500"), start=1):
            dm = message(f"q{n}", kind="message", channel="D1", channel_type="im", ts=ts)
            await post_event(bot.server.url, event_callback(dm, f"EvD{n}"))
            await fake.wait_for(lambda f, n=n: any(c.get("text") == f"A{n}" for c in f.of("chat.update")))
            await bot.idle(5)
    assert [c[0] for c in bot.backends["b"].calls] == [None, "fake-session-1"]
    assert all("thread_ts" not in p for p in fake.of("chat.postMessage"))


async def test_retried_delivery_is_answered_once(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        assert (await post_event(bot.server.url, mention()))[0] == 200
        await fake.wait_for("chat.postMessage")
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        assert (await post_event(bot.server.url, mention(), headers=retry))[0] == 200
        await post_event(bot.server.url, mention(event_id="Ev2", ts="1690000000.000900"))
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert [p["thread_ts"] for p in fake.of("chat.postMessage")] == [TS, "1690000000.000900"]
    assert len(bot.backends["b"].calls) == 2


async def test_forged_and_stale_signatures_get_401_and_no_answer(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        forged = await post_event(bot.server.url, mention(), secret="not-the-secret")
        stale = await post_event(bot.server.url, mention(event_id="Ev2"), timestamp=int(time.time()) - 600)
        assert forged[0] == 401 and stale[0] == 401
        challenge = await post_event(bot.server.url, {"type": "url_verification", "challenge": "abc"})
        assert challenge == (200, '{"challenge": "abc"}')
        await bot.idle(5)
    assert fake.of("chat.postMessage") == [] and bot.backends["b"].calls == []


async def test_own_and_other_bots_messages_are_ignored_unless_allowed(fake, tmp_path):
    async with running_bot(bot_config(fake, slack={"allow_bots": ["BFRIEND"]}), tmp_path) as bot:
        own = message(f"<@{BOT_USER}> echo", kind="message", user=BOT_USER, bot_id=BOT_ID, channel="D1",
                      channel_type="im")
        other = message(f"<@{BOT_USER}> from a bot", user="U9", bot_id="BOTHER", ts="1690000000.000200")
        other_dm = message("bot dm", kind="message", subtype="bot_message", bot_id="BOTHER", channel="D2",
                           channel_type="im", ts="1690000000.000250")
        edited = message("edited", kind="message", subtype="message_changed", channel="D1", channel_type="im")
        friend = message(f"<@{BOT_USER}> from a friend", user="U8", bot_id="BFRIEND", ts="1690000000.000300")
        friend_dm = message("friend dm", kind="message", subtype="bot_message", bot_id="BFRIEND", channel="D3",
                            channel_type="im", ts="1690000000.000400")
        for n, event in enumerate((own, other, other_dm, edited, friend, friend_dm)):
            await post_event(bot.server.url, event_callback(event, f"EvB{n}"))
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert sorted(c[1] for c in bot.backends["b"].calls) == ["friend dm", "from a friend"]


async def test_mentions_are_stripped_and_resolved(fake, tmp_path):
    text = f"<@{BOT_USER}> ask <@U2> about <#C2> and <#C9|ops> &amp; <https://x.example/a|this page>"
    async with running_bot(bot_config(fake), tmp_path) as bot:
        await post_event(bot.server.url, mention(text))
        await fake.wait_for("chat.postMessage")
        await bot.idle(5)
    assert bot.backends["b"].calls[0][1] == "ask @bob about #random and #ops & this page (https://x.example/a)"


async def test_429_on_update_delays_but_the_final_text_lands(fake, tmp_path):
    fake.rate_limit("chat.update", times=2, retry_after=0)
    async with running_bot(bot_config(fake, backend={"answer": "The whole answer."}), tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for(lambda f: any(c.get("text") == "The whole answer." for c in f.of("chat.update", ok=True)))
        await bot.idle(5)
    statuses = [c.status for c in fake.calls if c.method == "chat.update"]
    assert statuses[:2] == [429, 429] and statuses[-1] == 200


async def test_slack_sdk_absorbs_a_429_when_retries_are_on(fake, tmp_path):
    fake.rate_limit("chat.postMessage", times=1, retry_after=0)
    async with running_bot(bot_config(fake, slack={"rate_limit_retries": 1}), tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert [c.status for c in fake.calls if c.method == "chat.postMessage"] == [429, 200]


async def test_answer_over_the_limit_continues_in_a_second_message(fake, tmp_path):
    answer = " ".join(f"Sentence number {n} explains one more detail." for n in range(12))
    config = bot_config(fake, slack={"max_length": 200, "progress": "none"}, backend={"answer": answer})
    async with running_bot(config, tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    final = {}
    for method in ("chat.postMessage", "chat.update"):
        for params, resp in zip(fake.of(method), fake.responses(method)):
            final[resp["ts"]] = params["blocks"][0]["text"]
    assert len(final) >= 2 and all(len(t) <= 200 for t in final.values())
    assert " ".join(t.strip() for t in final.values()) == answer


async def test_reaction_progress_is_added_then_removed(fake, tmp_path):
    async with running_bot(bot_config(fake, slack={"progress": "reaction"}), tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for("reactions.remove")
        await bot.idle(5)
    added, removed = fake.of("reactions.add"), fake.of("reactions.remove")
    assert added == removed == [{"channel": "C1", "timestamp": TS, "name": "eyes"}]
    assert fake.calls.index(next(c for c in fake.calls if c.method == "reactions.remove")) < \
        fake.calls.index(next(c for c in fake.calls if c.method == "chat.postMessage"))


async def test_assistant_status_progress(fake, tmp_path):
    async with running_bot(bot_config(fake, slack={"progress": "status"}), tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.postMessage")
        await bot.idle(5)
    # the status while the answer is prepared, cleared once it is delivered
    assert fake.of("assistant.threads.setStatus") == [{"channel_id": "C1", "thread_ts": TS, "status": "is thinking…"},
                                                      {"channel_id": "C1", "thread_ts": TS, "status": ""}]
    assert fake.statuses == {}


async def test_block_actions_reach_listeners_plugins_register_on_the_bolt_app(fake, tmp_path):
    pressed: list[str] = []
    async with running_bot(bot_config(fake), tmp_path) as bot:
        app = bot.adapters["slack"].app

        @app.action("feedback_up")
        async def on_up(ack, body):
            pressed.append(body["user"]["id"])
            await ack()

        status = await post_interaction(bot.server.url, block_actions("feedback_up", "up", channel="C1",
                                                                      message_ts=TS))
        assert status == 200
    assert pressed == ["U1"]


async def test_a_post_answered_without_its_ts_is_not_edited_later_with_an_empty_one(fake, tmp_path):
    """Slack says ok but gives no ts: that post is a failure to retry, never a message ref
    whose edits would go to ts "" (the placeholder is posted again, the answer edits that)."""
    async with running_bot(bot_config(fake, backend={"answer": "Fine."}), tmp_path) as bot:
        fake.answer("chat.postMessage", {"ok": True, "channel": "C1"})
        assert (await post_event(bot.server.url, mention()))[0] == 200
        await fake.wait_for(lambda f: any("Fine." in c.get("text", "") for c in f.of("chat.update") + f.of("chat.postMessage")))
        await bot.idle(5)
    assert all(update["ts"] for update in fake.of("chat.update"))


async def test_an_answer_slack_refuses_for_good_is_not_tried_again(fake, tmp_path, caplog):
    """The bot was removed from the channel: one attempt and one line, no retries with tracebacks."""
    fake.fail("chat.postMessage", "not_in_channel", times=10)
    config = bot_config(fake, backend={"answer": "Nobody will read this."}, dispatch={"progress_delay": 60})
    async with running_bot(config, tmp_path) as bot:
        status, _ = await post_event(bot.server.url, mention())
        assert status == 200
        await bot.idle(5)
        (turn,) = [t async for t in bot.store.iter_turns()]
    assert len(fake.of("chat.postMessage")) == 1
    refused = [r for r in caplog.records if r.name == "botkit.render"]
    assert [r.levelname for r in refused] == ["WARNING"] and not refused[0].exc_info
    assert "not_in_channel" in refused[0].getMessage()
    assert turn["flags"] == {"undelivered": True}
