"""Native streaming (start/append/stop, fallback to edits) and Socket Mode, end to end."""

from __future__ import annotations

from botkit.testing import running_bot
from botkit_plugins.slack.testing import event_callback

from .conftest import TS, bot_config, mention, message, post_event

ANSWER = "First part of the answer. Second part follows here. Third and last part [1]."
SOURCES = [{"title": "Guide", "url": "https://docs.example.com/guide"}]


def streamed_text(fake) -> str:
    parts = [p.get("markdown_text", "") for p in fake.of("chat.startStream")]
    return "".join(parts + [p["markdown_text"] for p in fake.of("chat.appendStream", ok=True)])


async def test_native_stream_start_append_stop(fake, tmp_path):
    config = bot_config(fake, slack={"streaming": "native"},
                        backend={"answer": ANSWER, "chunks": 5, "delay": 0.02, "sources": SOURCES},
                        middlewares={"citations": {}})
    async with running_bot(config, tmp_path) as bot:
        assert bot.adapters["slack"].capabilities.native_streaming
        await post_event(bot.server.url, mention())
        await fake.wait_for("chat.stopStream")
        await bot.idle(5)
    start = fake.of("chat.startStream")
    assert len(start) == 1
    assert {k: start[0][k] for k in ("channel", "thread_ts", "recipient_team_id", "recipient_user_id")} == \
        {"channel": "C1", "thread_ts": TS, "recipient_team_id": "T111", "recipient_user_id": "U1"}
    stream_ts = fake.responses("chat.startStream")[0]["ts"]
    assert len(fake.of("chat.appendStream")) >= 2
    assert all(p["ts"] == stream_ts and p["channel"] == "C1" for p in fake.of("chat.appendStream"))
    assert streamed_text(fake) == ANSWER.replace("[1]", "[[1]](https://docs.example.com/guide)")
    stop = fake.of("chat.stopStream")
    assert len(stop) == 1 and stop[0]["ts"] == stream_ts
    assert "https://docs.example.com/guide" in stop[0]["blocks"][0]["elements"][0]["text"]
    assert fake.of("chat.postMessage") == [] and fake.of("chat.update") == []


async def test_failed_append_falls_back_to_edits_without_losing_or_repeating(fake, tmp_path):
    fake.fail("chat.appendStream", "message_not_in_streaming_state")
    config = bot_config(fake, slack={"streaming": "native"}, backend={"answer": ANSWER, "chunks": 5, "delay": 0.02})
    async with running_bot(config, tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for(lambda f: any(ANSWER in u["text"] for u in f.of("chat.update")))
        await bot.idle(5)
    stream_ts = fake.responses("chat.startStream")[0]["ts"]
    updates = fake.of("chat.update")
    assert all(u["ts"] == stream_ts for u in updates)
    assert updates[-1]["blocks"][0]["text"] == ANSWER  # the whole answer, once
    assert len(fake.of("chat.appendStream")) == 1  # no more stream calls after the failure
    assert fake.of("chat.postMessage") == []


async def test_stream_unavailable_answers_by_post_and_update(fake, tmp_path):
    fake.fail("chat.startStream", "unknown_method")
    config = bot_config(fake, slack={"streaming": "native"}, backend={"answer": "Plain answer."})
    async with running_bot(config, tmp_path) as bot:
        await post_event(bot.server.url, mention())
        await fake.wait_for(lambda f: any(u["text"] == "Plain answer." for u in f.of("chat.update")))
        await post_event(bot.server.url, mention(event_id="Ev2", ts="1690000000.000700"))
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert len(fake.of("chat.startStream")) == 1  # not tried again once the method is known missing
    assert [p["thread_ts"] for p in fake.of("chat.postMessage")] == [TS, "1690000000.000700"]


async def test_socket_mode_envelope_ack_answer(fake, tmp_path):
    config = bot_config(fake, slack={"app_token": "xapp-test-token", "signing_secret": None},
                        backend={"answer": "Over the socket."})
    async with running_bot(config, tmp_path) as bot:
        adapter = bot.adapters["slack"]
        assert "/slack/events" not in {r.resource.canonical for r in bot.server.app.router.routes()}
        ack = await fake.push(mention(), "env-1")
        assert ack == {"envelope_id": "env-1"}
        await fake.wait_for(lambda f: any(u["text"] == "Over the socket." for u in f.of("chat.update")))
        assert adapter.ready
        retry_ack = await fake.push(mention(), "env-2", retry_attempt=1)
        assert retry_ack == {"envelope_id": "env-2"}
        dm = message("in a dm", kind="message", channel="D1", channel_type="im", ts="1690000000.000800")
        await fake.push(event_callback(dm, "Ev3"), "env-3")
        await fake.wait_for("chat.postMessage", count=2)
        await bot.idle(5)
    assert [c.token for c in fake.calls if c.method == "apps.connections.open"] == ["xapp-test-token"]
    assert [p["channel"] for p in fake.of("chat.postMessage")] == ["C1", "D1"]
    assert bot.backends["b"].calls == [(None, "how do I reset my password?"), (None, "in a dm")]
    assert not adapter.ready
