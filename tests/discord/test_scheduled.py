"""The bot speaks first: a scheduled question posted in a channel, its answer continued in a thread."""

from __future__ import annotations

from datetime import datetime, timezone

from botkit_plugins.discord.testing import OTHER_CHANNEL_ID, FakeDiscord

QUESTION = "What changed in the docs this week?"
DUE = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)
LONG_ANSWER = "\n\n".join(f"Change {i}: " + "word " * 60 for i in range(12))  # > 2,000: several messages


def schedule(name: str = "weekly-digest") -> dict:
    return {"schedule": [{"name": name, "every": "24h", "post": {"adapter": "discord", "channel": OTHER_CHANNEL_ID},
                          "ask": {"backend": "b", "question": QUESTION}}]}


async def test_a_scheduled_answer_starts_a_thread_in_the_channel(fake: FakeDiscord, discord_bot) -> None:
    assert len(LONG_ANSWER) > 2000
    async with discord_bot({"answer": LONG_ANSWER, "chunks": 4}, sections=schedule()) as bot:
        answer = await bot.scheduler.ask(bot.config.root.schedule[0], due=DUE)
        assert answer is not None and answer.status == "complete"

        (first,) = [c for c in fake.requests("POST") if c.path == f"/channels/{OTHER_CHANNEL_ID}/messages"]
        assert "message_reference" not in first.json or first.json["message_reference"] is None
        first_id = next(m["id"] for m in fake.messages.values() if m["channel_id"] == OTHER_CHANNEL_ID)
        (opened,) = fake.requests("POST", "/threads")
        assert opened.path == f"/channels/{OTHER_CHANNEL_ID}/messages/{first_id}/threads"
        assert opened.json["name"] == QUESTION and opened.json["auto_archive_duration"] == 1440

        # the rest of the answer went into that thread, and the whole answer is there
        continued = fake.requests("POST", f"/channels/{first_id}/messages")
        assert continued
        pieces = [m["content"] for m in fake.messages.values()]
        assert all(len(piece) <= 2000 for piece in pieces)
        assert pieces[0].startswith("Change 0:") and "Change 11:" in pieces[-1]
        assert [m["channel_id"] for m in fake.messages.values()] == [OTHER_CHANNEL_ID] + [first_id] * len(continued)

        # a follow-up there needs no mention (the bot opened the thread) and continues the session
        follow = fake.message(first_id, "tell me more about change 3")
        await fake.dispatch("MESSAGE_CREATE", follow)
        await fake.wait_for("POST", f"/channels/{first_id}/typing")
        await bot.idle(10)
        calls = bot.backends["b"].calls
        assert calls == [(None, QUESTION), ("fake-session-1", "tell me more about change 3")]

    replies = [c for c in fake.requests("POST", f"/channels/{first_id}/messages") if c.json.get("message_reference")]
    assert [str(c.json["message_reference"]["message_id"]) for c in replies] == [follow["id"]]
    assert len(fake.requests("POST", "/threads")) == 1


async def test_without_threads_a_scheduled_answer_continues_in_the_channel(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": LONG_ANSWER}, sections=schedule(), create_threads=False) as bot:
        await bot.scheduler.ask(bot.config.root.schedule[0], due=DUE)

    posts = fake.requests("POST", f"/channels/{OTHER_CHANNEL_ID}/messages")
    assert len(posts) >= 2 and not any(p.json.get("message_reference") for p in posts)
    assert {m["channel_id"] for m in fake.messages.values()} == {OTHER_CHANNEL_ID}
    final = [m["content"] for m in fake.messages.values()]
    assert final[0].startswith("Change 0:") and "Change 11:" in final[-1]
    assert not fake.requests("POST", "/threads")


async def test_each_scheduled_run_gets_its_own_thread_and_edits_land_there(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Digest {turn}.", "chunks": 3}, sections=schedule()) as bot:
        job = bot.config.root.schedule[0]
        await bot.scheduler.ask(job, due=DUE)
        await bot.scheduler.ask(job, due=datetime(2025, 3, 10, 8, 0, tzinfo=timezone.utc))

    opened = fake.requests("POST", "/threads")
    assert len(opened) == 2 and opened[0].path != opened[1].path
    posted = [m for m in fake.messages.values() if m["channel_id"] == OTHER_CHANNEL_ID]
    assert [m["content"] for m in posted] == ["Digest 1.", "Digest 1."]  # one session per run
    # the placeholder each run posted was edited into its answer (edits use MessageRef.data)
    assert {c.path for c in fake.requests("PATCH")} == {f"/channels/{OTHER_CHANNEL_ID}/messages/{m['id']}"
                                                        for m in posted}
