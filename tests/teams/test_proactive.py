"""The bot speaking first (`reply_to` None, a scheduled question): a new thread in a channel,
a plain post in a chat, never a stream; the answer's later messages stay in that thread."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botkit_plugins.teams.testing import BOT_ID, TENANT

from botkit.adapters import Outgoing, RateLimited
from botkit.events import ThreadKey
from botkit.testing import running_bot
from botkit_plugins.teams import adapter as adapter_module
from botkit_plugins.teams.connector import TeamsError

CHANNEL = "19:news@thread.tacv2"
UNREACHABLE = "http://127.0.0.1:9/"  # nothing listens: a call there would fail the test


def _key(channel: str = CHANNEL, job: str = "digest", workspace: str = TENANT) -> ThreadKey:
    return ThreadKey("teams", workspace, channel, f"botkit-{job}-20250303T080000Z")


async def test_first_message_creates_a_thread_in_the_channel_and_the_rest_replies_in_it(fake, make_adapter):
    adapter, _, _ = await make_adapter(service_url=fake.service_url)
    thread = _key()
    first = await adapter.send(thread, Outgoing("", status="Searching…"), reply_to=None)

    create = fake.calls[0]
    assert create.method == "POST" and create.creates
    assert create.body == {"isGroup": True, "bot": {"id": BOT_ID},
                           "channelData": {"channel": {"id": CHANNEL}, "tenant": {"id": TENANT}},
                           "activity": {"type": "message", "text": "Searching…", "textFormat": "markdown"}}
    assert create.authorization == "Bearer fake-token-1"
    conversation = f"{CHANNEL};messageid={first.message_id}"
    assert first.data["conversation_id"] == conversation

    await adapter.edit(first, Outgoing("Part one"))
    second = await adapter.send(thread, Outgoing("Part two"), reply_to=None)
    await adapter.edit(second, Outgoing("Part two, done.", final=True))

    edit_first, reply, edit_second = fake.calls[1:]
    assert (edit_first.method, edit_first.conversation, edit_first.activity_id) == ("PUT", conversation,
                                                                                    first.message_id)
    assert reply.method == "POST" and reply.conversation == conversation
    assert reply.body["replyToId"] == first.message_id and reply.streaminfo is None
    assert (edit_second.method, edit_second.conversation, edit_second.activity_id) == ("PUT", conversation,
                                                                                      second.message_id)
    assert fake.messages[(conversation, first.message_id)]["text"] == "Part one"
    assert fake.messages[(conversation, second.message_id)]["text"] == "Part two, done."
    assert sum(c.creates for c in fake.calls) == 1

    # another scheduled run is another thread
    other = await adapter.send(_key(job="other"), Outgoing("Another digest"), reply_to=None)
    assert fake.calls[-1].creates and other.data["conversation_id"] != conversation


async def test_the_service_url_and_bot_id_seen_in_the_channel_win_over_the_defaults(fake, make_adapter):
    adapter, _, post = await make_adapter(service_url=UNREACHABLE, tenant_id=None)
    activity = fake.activity("hi", kind="channel", conversation=f"{CHANNEL};messageid=1699", mention_bot=True)
    activity["recipient"]["id"] = "28:seen-bot"
    assert await post(activity) == 202
    ref = await adapter.send(_key(workspace=""), Outgoing("Digest"), reply_to=None)
    create = fake.calls[-1]
    assert create.creates and create.body["bot"] == {"id": "28:seen-bot"}
    assert create.body["channelData"] == {"channel": {"id": CHANNEL}}  # no tenant known: none sent
    assert ref.data["service_url"] == fake.service_url


@pytest.mark.parametrize("chat", ["a:1personal", "19:group@thread.v2"])
async def test_in_a_chat_every_message_is_a_plain_post_never_a_stream(fake, make_adapter, chat):
    adapter, _, _ = await make_adapter(service_url=fake.service_url, streaming=True)
    thread = _key(chat)
    first = await adapter.send(thread, Outgoing("", status="Searching…"), reply_to=None)
    await adapter.edit(first, Outgoing("Part one", final=True))
    second = await adapter.send(thread, Outgoing("Part two", final=True), reply_to=None)
    assert [(c.method, c.conversation, c.activity_id) for c in fake.calls] == [
        ("POST", chat, None), ("PUT", chat, first.message_id), ("POST", chat, None)]
    assert all(c.streaminfo is None and "replyToId" not in c.body for c in fake.calls)
    assert fake.messages[(chat, first.message_id)]["text"] == "Part one"
    assert second.message_id != first.message_id


async def test_a_refused_or_rate_limited_creation_starts_no_thread(fake, make_adapter):
    adapter, _, _ = await make_adapter(service_url=fake.service_url)
    thread = _key()
    fake.script(429, headers={"Retry-After": "3"}, match=lambda c: c.creates)
    with pytest.raises(RateLimited) as caught:
        await adapter.send(thread, Outgoing("Digest"), reply_to=None)
    assert caught.value.retry_after == 3
    fake.script(201, {}, match=lambda c: c.creates)  # no id: nothing to continue in
    with pytest.raises(TeamsError):
        await adapter.send(thread, Outgoing("Digest"), reply_to=None)
    ref = await adapter.send(thread, Outgoing("Digest"), reply_to=None)
    assert [c.creates for c in fake.calls] == [True, True, True]
    assert ref.data["conversation_id"] == f"{CHANNEL};messageid={ref.message_id}"


async def test_started_threads_are_remembered_within_a_bound(fake, make_adapter, monkeypatch):
    monkeypatch.setattr(adapter_module, "REMEMBERED", 2)
    adapter, _, _ = await make_adapter(service_url=fake.service_url)
    for job in ("a", "b", "c"):
        await adapter.send(_key(job=job), Outgoing(job), reply_to=None)
    assert list(adapter._started) == [_key(job="b"), _key(job="c")]


async def test_a_scheduled_question_is_asked_as_a_new_channel_thread_end_to_end(fake, tmp_path):
    answer = " ".join(f"Change {n} landed in the docs." for n in range(1, 90))  # over max_length: two messages
    config = {
        "adapters": {"teams": fake.adapter_config(service_url=fake.service_url, max_length=1000)},
        "backends": {"kb": {"type": "fake", "answer": answer, "chunks": 3}},
        "schedule": [{"name": "digest", "every": "24h",
                      "post": {"adapter": "teams", "channel": CHANNEL, "workspace": TENANT},
                      "ask": {"backend": "kb", "question": "What changed?"}}],
    }
    async with running_bot(config, tmp_path) as bot:
        job = bot.config.root.schedule[0]
        result = await bot.scheduler.ask(job, due=datetime(2025, 3, 3, 8, 0, tzinfo=UTC))
        assert result is not None and result.status == "complete"
        assert bot.backends["kb"].calls == [(None, "What changed?")]

    create, *rest = fake.calls
    assert create.creates and create.body["channelData"] == {"channel": {"id": CHANNEL}, "tenant": {"id": TENANT}}
    conversation, root_id = create.answer["id"], create.answer["activityId"]
    assert all(c.conversation == conversation and c.streaminfo is None for c in rest)
    replies = [c for c in rest if c.method == "POST"]
    assert replies and all(c.activity_id == root_id and c.body["replyToId"] == root_id for c in replies)
    posted = [root_id] + [c.answer["id"] for c in replies]
    assert {c.activity_id for c in rest if c.method == "PUT"} <= set(posted)
    shown = [fake.messages[(conversation, message_id)]["text"] for message_id in posted]
    assert all(len(text) <= 1000 for text in shown)
    assert "Change 1 landed" in shown[0] and shown[-1].endswith("Change 89 landed in the docs.")
