"""The webhook adapter against the fake platform, with botkit's scripted `fake` backend."""

import logging

import pytest

from botkit.config import ConfigError
from botkit.testing import eventually


async def test_a_signed_message_is_answered_through_the_callback(botkit_fake_backend, platform):
    backend = await botkit_fake_backend(adapters=platform.adapter(), answer="Refunds take five days.")
    response = await platform.deliver(backend.bot, platform.message("How long do refunds take?"))
    assert response.status_code == 202
    await backend.bot.idle(5)
    assert [question for _, question in backend.calls] == ["How long do refunds take?"]
    assert list(platform.shown.values()) == ["Refunds take five days."]
    first = platform.calls("POST", "/callback")[0].json
    assert first["conversation"] == "c-1" and first["reply_to"] == "m-1"
    assert platform.bad_signatures == 0  # every callback was signed


async def test_a_fast_answer_is_sent_once_complete(botkit_fake_backend, platform):
    backend = await botkit_fake_backend(adapters=platform.adapter(), answer="one two three", chunks=3)
    await platform.deliver(backend.bot, platform.message("fast?"))
    await backend.bot.idle(5)
    assert platform.actions() == [("send", True)]  # no placeholder, no edit


async def test_a_slow_answer_grows_by_edits_of_one_message(botkit_fake_backend, platform):
    # the first piece comes within dispatch.progress_delay (no placeholder), unfinished: edits follow
    backend = await botkit_fake_backend(adapters=platform.adapter(), answer="one two three", chunks=3, delay=0.3)
    await platform.deliver(backend.bot, platform.message("slow?"))
    await backend.bot.idle(5)
    actions = platform.actions()
    assert actions[0] == ("send", False) and actions[-1] == ("edit", True) and len(actions) >= 3
    assert list(platform.shown.values()) == ["one two three"]


async def test_a_platform_that_cannot_edit_gets_each_answer_once(botkit_fake_backend, platform):
    backend = await botkit_fake_backend(adapters=platform.adapter(can_edit=False), answer="one two three",
                                        chunks=3, delay=0.3)
    await platform.deliver(backend.bot, platform.message("slow?"))
    await backend.bot.idle(5)
    assert platform.actions() == [("send", True)]
    assert list(platform.shown.values()) == ["one two three"]


async def test_a_redelivered_message_is_answered_once(botkit_fake_backend, platform):
    backend = await botkit_fake_backend(adapters=platform.adapter())
    for _ in range(2):
        assert (await platform.deliver(backend.bot, platform.message("once?"))).status_code == 202
    await backend.bot.idle(5)
    assert len(backend.calls) == 1


async def test_unsigned_or_malformed_requests_are_refused_without_a_traceback(botkit_fake_backend, platform, caplog):
    backend = await botkit_fake_backend(adapters=platform.adapter())
    bot = backend.bot
    good = platform.message("hello?")
    assert (await platform.deliver(bot, good, secret=None)).status_code == 401
    assert (await platform.deliver(bot, good, secret="another-secret-entirely")).status_code == 401
    assert (await platform.deliver(bot, b"{not json")).status_code == 400
    assert (await platform.deliver(bot, {"conversation": "c-1", "text": "no ids"})).status_code == 400
    assert (await platform.deliver(bot, b"[1, 2]")).status_code == 400
    await bot.idle(5)
    assert backend.calls == [] and platform.requests == []
    assert not [r for r in caplog.records if r.exc_info]
    assert "refused a request with 401" in caplog.text and platform.secret not in caplog.text


async def test_a_429_from_the_callback_is_waited_out(botkit_fake_backend, platform):
    backend = await botkit_fake_backend(adapters=platform.adapter(), answer="Still delivered.")
    platform.fail_next(429, {"error": "slow down"}, retry_after="0.2")
    await platform.deliver(backend.bot, platform.message("busy?"))
    await eventually(lambda: "Still delivered." in platform.shown.values())
    assert [action for action, _ in platform.actions()] == ["send", "send"]  # the refused post, then the one that landed


async def test_the_secret_never_shows(botkit_fake_backend, platform, caplog):
    caplog.set_level(logging.DEBUG)
    backend = await botkit_fake_backend(adapters=platform.adapter())
    adapter = backend.bot.adapters["hook"]
    assert platform.secret not in repr(adapter.config) and platform.secret not in str(adapter.config)
    await platform.deliver(backend.bot, platform.message("hi there"))
    await backend.bot.idle(5)
    assert platform.secret not in caplog.text


async def test_a_bad_config_is_named_without_showing_the_secret(botkit_bot, platform):
    with pytest.raises(ConfigError) as raised:
        await botkit_bot({"adapters": platform.adapter(secret="short-secret", callback_url="ftp://x"),
                          "backends": {"b": {"type": "fake"}}})
    assert "adapters.hook.secret" in str(raised.value) and "adapters.hook.callback_url" in str(raised.value)
    assert "short-secret" not in str(raised.value)
