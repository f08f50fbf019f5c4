"""The adapter's delivery, driven as the renderer drives it, against the loopback connector."""

from __future__ import annotations

import pytest
from botkit_plugins.teams.connector import TeamsError
from botkit_plugins.teams.testing import TENANT

from botkit.adapters import Outgoing, RateLimited
from botkit.events import Note, ThreadKey


async def _inbound(fake, post, bot, text="question", **kw):
    assert await post(fake.activity(text, **kw)) == 202
    return bot.inbound[-1]


async def test_personal_chat_streams_natively(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot)
    assert inbound.thread == ThreadKey("teams", TENANT, "a:1personal", "")
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("Hello"))
    await adapter.edit(ref, Outgoing("Hello"))  # unchanged text is not sent again
    await adapter.edit(ref, Outgoing("Hello brave new world"))
    await adapter.edit(ref, Outgoing("Hello brave new world", [Note("Sources: [1] Guide")], final=True))

    calls = fake.calls
    assert [c.body["type"] for c in calls] == ["typing", "typing", "typing", "message"]
    infos = [c.streaminfo for c in calls]
    assert infos[0] == {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
    assert calls[0].body["text"] == "Searching the knowledge base…"
    stream_id = ref.message_id
    assert stream_id.startswith("stream-")
    assert [(i["streamType"], i["streamSequence"], i["streamId"]) for i in infos[1:3]] == [
        ("streaming", 2, stream_id), ("streaming", 3, stream_id)]
    assert [c.body["text"] for c in calls[1:3]] == ["Hello", "Hello brave new world"]  # full text so far
    assert infos[3] == {"type": "streaminfo", "streamId": stream_id, "streamType": "final"}
    assert calls[3].body["text"] == "Hello brave new world\n\nSources: [1] Guide"
    assert all(c.method == "POST" and c.activity_id == inbound.raw["id"] for c in calls)
    assert all(c.body["replyToId"] == inbound.raw["id"] for c in calls)
    assert all(c.authorization == "Bearer fake-token-1" for c in calls)
    assert len(fake.token_requests) == 1  # the token is cached
    assert fake.token_requests[0]["client_secret"] == "s3cret-password"
    assert fake.token_requests[0]["scope"] == "https://api.botframework.com/.default"
    # a later edit of the finished answer is a PUT of the streamed message
    await adapter.edit(ref, Outgoing("Hello again", final=True))
    assert fake.calls[-1].method == "PUT" and fake.calls[-1].activity_id == stream_id


async def test_status_updates_stay_informative_until_text_arrives(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    ref = await adapter.show_progress(await _inbound(fake, post, bot))
    await adapter.edit(ref, Outgoing("", status="Reading 3 documents"))
    await adapter.edit(ref, Outgoing("Answer"))
    assert [(c.streaminfo["streamType"], c.body["text"]) for c in fake.calls] == [
        ("informative", "Searching the knowledge base…"), ("informative", "Reading 3 documents"),
        ("streaming", "Answer")]


async def test_channel_thread_is_answered_in_the_thread_by_put_edits(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot, "how do I reset?", kind="channel",
                             conversation="19:chan@thread.tacv2;messageid=1699999999999", mention_bot=True)
    assert inbound.thread == ThreadKey("teams", TENANT, "19:chan@thread.tacv2", "1699999999999")
    assert inbound.text == "how do I reset?" and not inbound.is_direct
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("Open settings"))
    await adapter.edit(ref, Outgoing("Open settings, then Reset.", final=True))
    first, *edits = fake.calls
    assert first.method == "POST" and first.conversation == "19:chan@thread.tacv2;messageid=1699999999999"
    assert first.streaminfo is None and first.body["type"] == "message"
    assert first.body["text"] == "Searching the knowledge base…" and first.body["textFormat"] == "markdown"
    assert [(c.method, c.activity_id) for c in edits] == [("PUT", ref.message_id)] * 2
    assert fake.messages[(first.conversation, ref.message_id)]["text"] == "Open settings, then Reset."


async def test_top_level_channel_post_starts_its_own_thread(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot, kind="channel", activity_id="1700000000777")
    assert inbound.thread.thread == "1700000000777"
    await adapter.reply(inbound, "hi")
    assert fake.calls[0].conversation == "19:chan@thread.tacv2;messageid=1700000000777"


async def test_group_chat_does_not_stream(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot, kind="groupChat")
    assert inbound.thread == ThreadKey("teams", TENANT, "19:group@thread.v2", "")
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("done", final=True))
    assert all(c.streaminfo is None for c in fake.calls)
    assert [c.method for c in fake.calls] == ["POST", "PUT"]


async def test_refused_stream_falls_back_to_edits_without_losing_text(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot)
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("Part one"))
    fake.script(405, {"error": {"code": "MethodNotAllowed", "message": "stream stopped"}},
                match=lambda c: c.streaminfo is not None)
    await adapter.edit(ref, Outgoing("Part one and two"))
    fallback = fake.calls[-1]
    assert fallback.method == "POST" and fallback.streaminfo is None
    assert fallback.body["text"] == "Part one and two"
    assert ref.message_id == next(k[1] for k, v in fake.messages.items() if v is fallback.body)
    await adapter.edit(ref, Outgoing("Part one and two, done.", final=True))
    assert fake.calls[-1].method == "PUT" and fake.calls[-1].body["text"] == "Part one and two, done."
    # the conversation is not streamed again
    next_ref = await adapter.show_progress(await _inbound(fake, post, bot, "again"))
    assert fake.calls[-1].streaminfo is None and next_ref.data["mode"] == "message"


async def test_stream_refused_at_the_start_posts_a_placeholder(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    fake.script(403, {"error": {"code": "ContentStreamNotAllowed"}})
    ref = await adapter.show_progress(await _inbound(fake, post, bot))
    assert ref.data["mode"] == "message"
    assert fake.calls[-1].body == {"type": "message", "text": "Searching the knowledge base…",
                                   "textFormat": "markdown", "replyToId": fake.calls[-1].activity_id}


async def test_a_continuation_message_closes_the_open_stream_first(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot)
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("first half"))
    second = await adapter.send(inbound.thread, Outgoing("second half"), reply_to=inbound)
    final, new = fake.calls[-2:]
    assert final.streaminfo["streamType"] == "final" and final.body["text"] == "first half"
    assert new.streaminfo is None and new.body["text"] == "second half"
    await adapter.edit(ref, Outgoing("first half", final=True))
    assert fake.calls[-1].method == "PUT" and fake.calls[-1].activity_id == ref.message_id
    assert second.message_id != ref.message_id


async def test_429_on_an_edit_raises_rate_limited_with_retry_after(fake, make_adapter):
    adapter, bot, post = await make_adapter(streaming=False)
    inbound = await _inbound(fake, post, bot)
    ref = await adapter.show_progress(inbound)
    fake.script(429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        await adapter.edit(ref, Outgoing("text"))
    assert caught.value.retry_after == 7
    await adapter.edit(ref, Outgoing("text"))
    assert fake.messages[(fake.calls[-1].conversation, ref.message_id)]["text"] == "text"


async def test_sources_as_an_adaptive_card(fake, make_adapter):
    adapter, bot, post = await make_adapter(sources="card", streaming=False)
    inbound = await _inbound(fake, post, bot)
    await adapter.send(inbound.thread, Outgoing("Answer [1]", [Note("[1] Guide", kind="sources")], final=True))
    body = fake.calls[-1].body
    assert body["text"] == "Answer [1]"
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == "[1] Guide"


async def test_capabilities(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    caps = adapter.capabilities
    assert caps.markup == "teams" and caps.edit_interval >= 1.5 and caps.can_edit
    assert caps.max_length * 4 < 100_000  # even 4-byte characters stay under the activity size limit


async def test_non_message_activities_are_acknowledged_and_ignored(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    activity = fake.activity("x")
    activity["type"] = "conversationUpdate"
    assert await post(activity) == 202
    mention_only = fake.activity("", mention_bot=True)
    assert await post(mention_only) == 202
    assert bot.inbound == [] and fake.calls == []


async def test_a_post_answered_without_an_activity_id_is_an_error_not_an_empty_id(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot, kind="groupChat")
    fake.script(201, {})
    with pytest.raises(TeamsError, match="no activity id"):
        await adapter.send(inbound.thread, Outgoing("an answer"), reply_to=inbound)
