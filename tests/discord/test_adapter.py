"""The adapter's own guarantees: 429 hand-over, endpoint scoping, sharding, threads, config."""

from __future__ import annotations

import subprocess
import sys

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route
from pydantic import ValidationError

from botkit.adapters import Outgoing, RateLimited
from botkit.events import ThreadKey
from botkit_plugins.discord import DEFAULT_API_URL, DEFAULT_GATEWAY_URL, DiscordConfig
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord


async def test_a_429_discord_py_does_not_absorb_reaches_the_renderer(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot() as bot:
        adapter = bot.adapters["discord"]
        channel = ThreadKey("discord", GUILD_ID, OTHER_CHANNEL_ID, OTHER_CHANNEL_ID)
        ref = await adapter.send(channel, Outgoing("first"))
        # no Via header: discord.py takes it for a Cloudflare ban and raises instead of retrying
        fake.fail("PATCH", rf"/messages/{ref.message_id}$", via=False, headers={"Retry-After": "2.5"})
        with pytest.raises(RateLimited) as caught:
            await adapter.edit(ref, Outgoing("second"))
        assert caught.value.retry_after == 2.5
        await adapter.edit(ref, Outgoing("second"))
    assert fake.messages[ref.message_id]["content"] == "second"


async def test_endpoints_point_at_the_config_only_while_running(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot():
        assert Route.BASE == fake.api_url
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert Route.BASE == DEFAULT_API_URL
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == DEFAULT_GATEWAY_URL


async def test_sharded_client_asks_for_the_gateway_and_answers(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Sharded hello."}, auto_shard=True) as bot:
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> shards?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
    assert fake.requests("GET", "/gateway/bot")
    assert [c.json["content"] for c in fake.requests("POST", f"/channels/{question['id']}/messages")] == ["Sharded hello."]


async def test_without_threads_the_answer_replies_in_the_channel(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "In the channel."}, create_threads=False) as bot:
        question = fake.message(OTHER_CHANNEL_ID, f"<@{BOT_ID}> here?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
    posts = [c for c in fake.requests("POST") if c.path == f"/channels/{OTHER_CHANNEL_ID}/messages"]
    assert [p.json["content"] for p in posts] == ["In the channel."]
    assert str(posts[0].json["message_reference"]["message_id"]) == question["id"]
    assert not fake.requests("POST", "/threads")


async def test_thread_name_is_the_question_cut_short(fake: FakeDiscord, discord_bot) -> None:
    long_question = "why " * 60
    async with discord_bot({"answer": "ok"}, thread_name="Q from {user}: {question:.20}") as bot:
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, long_question))
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
    (created,) = fake.requests("POST", "/threads")
    assert created.json["name"] == "Q from user10: why why why why why"


async def test_dms_are_ignored_unless_asked_for(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "ok"}, respond_to=["mentions"]) as bot:
        await fake.dispatch("MESSAGE_CREATE", fake.message(fake.new_id(), "psst", guild_id=None))
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, "help channel, no mention"))
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, f"<@{BOT_ID}> mention", mentions_bot=True))
        await fake.wait_for("POST", "/typing")
        await bot.idle(10)
        assert [text for _, text in bot.backends["b"].calls] == ["mention"]


def test_config_rejects_bad_templates_and_hides_the_token() -> None:
    with pytest.raises(ValidationError, match="thread_name"):
        DiscordConfig(token="t", thread_name="{title}")
    with pytest.raises(ValidationError, match="shard_count or auto_shard"):
        DiscordConfig(token="t", shard_count=2, auto_shard=True)
    config = DiscordConfig(token="very-secret-token")
    assert "very-secret-token" not in repr(config) and "very-secret-token" not in str(config.model_dump())
    assert config.edit_interval == 1.2



def test_the_plugin_registers_without_importing_discord_py() -> None:
    code = ("import sys, botkit, botkit_plugins.discord; "
            "assert not any(m == 'discord' or m.startswith('discord.') for m in sys.modules), 'discord imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
