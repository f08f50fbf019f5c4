"""Access control: allow/deny lists per layer, DMs, the refusal, the log line."""

from __future__ import annotations

import logging

import pytest

from botkit.events import Inbound, ThreadKey
from botkit.testing import running_bot

from botkit_plugins.access import AccessConfig
from botkit_plugins.access.middleware import Access


def inbound(user="u1", workspace="w1", channel="c1", adapter="slack", direct=False) -> Inbound:
    return Inbound("e1", ThreadKey("slack", workspace, channel, "t"), user, "secret question",
                   adapter=adapter, is_direct=direct)


def check(config: dict, **message) -> str | None:
    return Access(AccessConfig(**config)).check(inbound(**message))


def test_no_rules_admits_everyone() -> None:
    assert check({}) is None
    assert check({}, direct=True) is None


@pytest.mark.parametrize(("config", "message", "why"), [
    ({"deny_users": ["u1"]}, {}, "user denied"),
    ({"allow_users": ["u2"]}, {}, "user not allowed"),
    ({"allow_users": ["u1"], "deny_users": ["u1"]}, {}, "user denied"),
    ({"allow_workspaces": ["w2"]}, {}, "workspace not allowed"),
    ({"deny_workspaces": ["w1"]}, {}, "workspace denied"),
    ({"allow_channels": ["c9"]}, {}, "channel not allowed"),
    ({"deny_channels": ["c1"]}, {}, "channel denied"),
    ({"dms": False}, {"direct": True}, "direct messages are off"),
    ({"allow_workspaces": ["w2"]}, {"direct": True}, "workspace not allowed"),
])
def test_refusals(config, message, why) -> None:
    assert check(config, **message) == why


@pytest.mark.parametrize(("config", "message"), [
    ({"allow_users": ["u1", "u2"]}, {}),
    ({"allow_channels": ["c1"], "allow_workspaces": ["w1"]}, {}),
    ({"allow_channels": ["c9"]}, {"direct": True}),  # channel lists don't apply to DMs
    ({"dms": False}, {}),  # not a DM
])
def test_admitted(config, message) -> None:
    assert check(config, **message) is None


def test_adapter_rules_add_to_global_ones_and_override_dms() -> None:
    config = {"deny_users": ["bad"], "dms": False,
              "adapters": {"slack": {"allow_channels": ["c1"], "dms": True}, "discord": {"deny_users": ["u1"]}}}
    assert check(config, user="bad") == "user denied"
    assert check(config, channel="c2") == "channel not allowed"
    assert check(config, direct=True) is None  # slack turned DMs on
    assert check(config, adapter="discord", channel="c2") == "user denied"
    assert check(config, adapter="discord", user="u2", direct=True) == "direct messages are off"
    assert check(config, adapter="teams", channel="c2") is None


def test_unknown_keys_are_config_errors() -> None:
    with pytest.raises(ValueError, match="allow_user"):
        AccessConfig(allow_user=["u1"])


def bot_config(**access) -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"b": {"type": "fake", "answer": "the answer"}},
            "middlewares": {"access": access}}


async def test_denied_user_gets_no_answer_and_log_has_no_text(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="botkit.access")
    async with running_bot(bot_config(deny_users=["mallory"]), tmp_path) as bot:
        rec = bot.adapters["rec"]
        backend = bot.backends["b"]
        assert await rec.inject("my password is hunter2", user="mallory")
        await bot.idle(5)
        assert rec.calls == [] and backend.calls == []
        await rec.inject("hello", user="alice")
        await bot.idle(5)
    assert [q for _, q in backend.calls] == ["hello"]
    assert rec.texts() == ["the answer"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "botkit.access"]
    assert "mallory" in line and "user denied" in line and "hunter2" not in line


async def test_denied_user_gets_the_configured_reply(tmp_path) -> None:
    async with running_bot(bot_config(allow_channels=["elsewhere"], reply="Not here, sorry."), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("hi")
        await bot.idle(5)
        assert rec.texts() == ["Not here, sorry."]
        assert bot.backends["b"].calls == []


async def test_dms_off_end_to_end(tmp_path) -> None:
    async with running_bot(bot_config(dms=False), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("hi", direct=True, thread="dm")
        await rec.inject("hi", thread="t1")
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["hi"]
        assert rec.texts() == ["the answer"]
