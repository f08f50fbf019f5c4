"""/ask and /reset: INTERACTION_CREATE through discord.py's CommandTree to the dispatcher."""

from __future__ import annotations

from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, FakeDiscord


async def test_ask_is_deferred_then_its_original_response_edited(fake: FakeDiscord, discord_bot) -> None:
    backend = {"answer": "Use the blue cable [1].", "chunks": 3, "delay": 0.02,
               "sources": [{"title": "Cabling", "url": "https://docs.example.com/cables"}]}
    async with discord_bot(backend) as bot:
        interaction = fake.interaction("ask", {"question": "which cable?"})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
        await bot.idle(10)
        assert bot.backends["b"].calls == [(None, "which cable?")]

    callbacks = fake.requests("POST", f"/interactions/{interaction['id']}/")
    assert [c.json["type"] for c in callbacks] == [5]  # deferred: "botkit is thinking…"
    edits = fake.requests("PATCH", "/webhooks/", )
    assert edits and all(c.path.endswith(f"/{interaction['token']}/messages/@original") for c in edits)
    assert all(c.json["allowed_mentions"] == {"parse": []} for c in edits)
    final = edits[-1].json["content"]
    assert "Use the blue cable" in final and "https://docs.example.com/cables" in final
    assert not fake.requests("POST", "/threads")


async def test_ask_twice_delivered_is_answered_once(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Once."}) as bot:
        interaction = fake.interaction("ask", {"question": "dup?"})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for("PATCH", "/@original")
        await bot.idle(10)
        assert len(bot.backends["b"].calls) == 1

    assert len(fake.requests("POST", "/interactions/")) == 1


async def test_reset_in_a_thread_starts_a_new_session(fake: FakeDiscord, discord_bot) -> None:
    # /reset is the native command: it works with no reset words configured
    async with discord_bot({"answer": "Answer {turn}."}, sections={"dispatch": {"reset_commands": []}}) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> first", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        thread = question["id"]
        reset = fake.interaction("reset", channel_id=thread, channel_type=11, parent_id=CHANNEL_ID)
        await fake.dispatch("INTERACTION_CREATE", reset)
        await fake.wait_for("POST", f"/interactions/{reset['id']}/")
        await bot.idle(10)
        await fake.dispatch("MESSAGE_CREATE", fake.message(thread, "second"))
        await fake.wait_for("POST", "/typing", count=2)
        await bot.idle(10)
        backend = bot.backends["b"]
        assert backend.ended == ["fake-session-1"]
        assert backend.calls == [(None, "first"), (None, "second")]  # a fresh session after the reset

    reply = fake.requests("POST", f"/interactions/{reset['id']}/")
    patched = fake.requests("PATCH", f"/{reset['token']}/messages/@original")
    shown = [c.json["data"]["content"] for c in reply if c.json["type"] == 4] + [c.json["content"] for c in patched]
    assert shown == ["Starting a new conversation in this thread."]


async def test_a_long_ask_answer_continues_in_a_follow_up_message(fake: FakeDiscord, discord_bot) -> None:
    answer = "\n\n".join(f"Paragraph {i}: " + "word " * 60 for i in range(12))
    assert len(answer) > 2000
    async with discord_bot({"answer": answer}) as bot:
        interaction = fake.interaction("ask", {"question": "tell me everything"})
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for("POST", f"/interactions/{interaction['id']}/")
        await bot.idle(10)

    token = interaction["token"]
    original = fake.requests("PATCH", f"/{token}/messages/@original")[-1].json["content"]
    followups = [c for c in fake.requests("POST", "/webhooks/") if c.path.endswith(f"/{token}")]
    assert len(followups) >= 1 and followups[0].query.get("wait") in ("1", "true")
    continued = [c.json["content"] for c in followups]
    assert all(len(text) <= 2000 for text in [original, *continued])
    assert original.startswith("Paragraph 0:") and "Paragraph 11:" in continued[-1]
