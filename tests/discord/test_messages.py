"""Messages end to end: the real discord.py against the fake Discord, the real dispatcher."""

from __future__ import annotations

from botkit_plugins.discord.testing import (
    BOT_ID, CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord,
)

ANSWER = {"answer": "Reset the router, then wait a minute [1].", "chunks": 3, "delay": 0.02,
          "sources": [{"title": "Router guide", "url": "https://docs.example.com/router"}]}


async def test_mention_in_help_channel_opens_thread_and_streams_answer(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot(ANSWER) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> how do I fix my wifi?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)

    thread = question["id"]
    created = fake.requests("POST", f"/channels/{CHANNEL_ID}/messages/{thread}/threads")
    assert len(created) == 1
    assert created[0].json["name"] == "how do I fix my wifi?"
    assert created[0].json["auto_archive_duration"] == 1440
    assert fake.requests("POST", f"/channels/{thread}/typing")
    posts = fake.requests("POST", f"/channels/{thread}/messages")
    assert len(posts) == 1
    edits = fake.requests("PATCH", f"/channels/{thread}/messages/")
    assert edits, "the answer grows by edits"
    contents = [posts[0].json["content"]] + [e.json["content"] for e in edits]
    assert len(set(contents)) == len(contents) >= 2, contents
    final = contents[-1]
    assert "Reset the router, then wait a minute" in final
    assert "https://docs.example.com/router" in final and "Router guide" not in final  # the footer: a button
    [row] = edits[-1].json["components"]
    assert [b["label"] for b in row["components"]] == ["Sources"]
    # the question's channel got no answer: it went into the thread
    assert not [c for c in fake.requests("POST") if c.path == f"/channels/{CHANNEL_ID}/messages"]
    # commands were synced to the configured guild
    synced = fake.requests("PUT", f"/guilds/{GUILD_ID}/commands")
    assert sorted(c["name"] for c in synced[0].json) == ["ask", "reset"]


async def test_follow_up_in_thread_continues_the_session(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Answer {turn}."}) as bot:
        question = fake.message(OTHER_CHANNEL_ID, f"<@{BOT_ID}> first?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        thread = question["id"]
        await fake.dispatch("MESSAGE_CREATE", fake.message(thread, "and then?"))  # no mention needed
        await fake.wait_for("POST", "/typing", count=2)
        await bot.idle(10)
        calls = bot.backends["b"].calls

    assert [text for _, text in calls] == ["first?", "and then?"]
    assert calls[0][0] is None and calls[1][0] == "fake-session-1"
    posts = fake.requests("POST", f"/channels/{thread}/messages")
    assert [p.json["content"] for p in posts] == ["Answer 1.", "Answer 2."]
    # the follow-up answer replies to the follow-up, pinging nobody
    assert str(posts[1].json["message_reference"]["message_id"]) != thread
    assert posts[1].json["allowed_mentions"] == {"parse": []}
    assert len(fake.requests("POST", "/threads")) == 1


async def test_dm_is_answered_in_the_dm(fake: FakeDiscord, discord_bot) -> None:
    dm_channel = fake.new_id()
    async with discord_bot({"answer": "Hello in private."}) as bot:
        message = fake.message(dm_channel, "hi there", guild_id=None)
        await fake.dispatch("MESSAGE_CREATE", message)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)

    posts = fake.requests("POST", f"/channels/{dm_channel}/messages")
    assert len(posts) == 1
    assert posts[0].json["content"] == "Hello in private."
    assert str(posts[0].json["message_reference"]["message_id"]) == message["id"]
    assert not fake.requests("POST", "/threads")


async def test_forum_post_is_answered_in_the_post(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Forum answer."}) as bot:
        post = await fake.forum_post("Why is the sky blue?")
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        assert bot.backends["b"].calls == [(None, "Why is the sky blue?")]

    posts = fake.requests("POST", f"/channels/{post['id']}/messages")
    assert [p.json["content"] for p in posts] == ["Forum answer."]
    assert not fake.requests("POST", "/threads")


async def test_unaddressed_messages_are_ignored(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "ok"}) as bot:
        await fake.dispatch("MESSAGE_CREATE", fake.message(OTHER_CHANNEL_ID, "chatting, not asking"))
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "a bot talking", author_bot=True))
        last = fake.message(CHANNEL_ID, "a real question")  # a help channel: no mention needed
        await fake.dispatch("MESSAGE_CREATE", last)  # events are handled in order: the others came first
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        assert [text for _, text in bot.backends["b"].calls] == ["a real question"]

    assert [c.path for c in fake.requests("POST", "/threads")] == [f"/channels/{CHANNEL_ID}/messages/{last['id']}/threads"]


async def test_same_message_twice_is_answered_once(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Only once."}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> once?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.dispatch("MESSAGE_CREATE", question)
        sentinel = fake.message(OTHER_CHANNEL_ID, f"<@{BOT_ID}> later", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", sentinel)  # events are handled in order
        await fake.wait_for("POST", "/typing", count=2)
        await bot.idle(10)
        assert [text for _, text in bot.backends["b"].calls] == ["once?", "later"]

    assert len(fake.requests("POST", f"/messages/{question['id']}/threads")) == 1
    assert len(fake.requests("POST", f"/channels/{question['id']}/messages")) == 1


async def test_gateway_resume_redelivery_is_answered_once(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Once, even after RESUME."}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> resume?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        sessions_before = len(fake.resumes)
        await fake.reconnect(redeliver=2)  # the THREAD_CREATE and MESSAGE_CREATE again
        await fake.wait_until(lambda: len(fake.resumes) > sessions_before)
        follow = fake.message(question["id"], "still there?")
        await fake.dispatch("MESSAGE_CREATE", follow)
        await fake.wait_for("POST", "/typing", count=2)
        await bot.idle(10)
        assert [text for _, text in bot.backends["b"].calls] == ["resume?", "still there?"]

    assert fake.resumes[-1]["session_id"] == "fake-session"
    assert len(fake.requests("POST", "/threads")) == 1
    assert len(fake.requests("POST", f"/channels/{question['id']}/messages")) == 2


async def test_long_answer_continues_without_breaking_code_blocks(fake: FakeDiscord, discord_bot) -> None:
    code = "\n".join(f"print('line {i:03d} of a long example')" for i in range(80))
    answer = "Here is the script:\n\n```python\n" + code + "\n```\n\nRun it with python."
    assert len(answer) > 2000
    async with discord_bot({"answer": answer, "chunks": 4}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> script?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)

    thread = question["id"]
    final: dict[str, str] = {}
    for call in fake.requests(None, f"/channels/{thread}/messages"):
        if call.method == "POST":
            final[str(len(final))] = call.json["content"]
        else:
            message_id = call.path.rsplit("/", 1)[1]
            final[_index_of(fake, thread, message_id)] = call.json["content"]
    pieces = [final[k] for k in sorted(final, key=int)]
    assert len(pieces) >= 2
    for piece in pieces:
        assert len(piece) <= 2000
        assert piece.count("```") % 2 == 0, piece
    joined = "".join(pieces)
    assert "line 000" in joined and "line 079" in joined and "Run it with python." in pieces[-1]


def _index_of(fake: FakeDiscord, channel: str, message_id: str) -> str:
    ids = [m["id"] for m in fake.messages.values() if m["channel_id"] == channel]
    return str(ids.index(message_id))


async def test_everyone_in_an_answer_pings_nobody(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Hey @everyone and @here, <@123> look", "chunks": 2}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> ping?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)

    sent = fake.requests(None, f"/channels/{question['id']}/messages")
    assert sent and all(c.json["allowed_mentions"]["parse"] == [] for c in sent if c.method in ("POST", "PATCH"))
    assert "@everyone" in sent[-1].json["content"]


async def test_rate_limited_edit_still_delivers_the_final_text(fake: FakeDiscord, discord_bot) -> None:
    fake.fail("PATCH", r"^/channels/\d+/messages/\d+$", retry_after=0.3, times=1)
    async with discord_bot({"answer": "Slow but complete answer.", "chunks": 3, "delay": 0.02}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> 429?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)

    edits = fake.requests("PATCH", f"/channels/{question['id']}/messages/")
    assert len(edits) >= 2
    assert edits[1].path == edits[0].path and edits[1].json == edits[0].json  # discord.py retried the 429'd edit
    message_id = edits[-1].path.rsplit("/", 1)[1]
    assert fake.messages[message_id]["content"] == "Slow but complete answer."
