"""Rate limits: token buckets, the refusal with a retry time, config parsing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from botkit.events import Inbound, ThreadKey
from botkit.testing import running_bot
from botkit.turn import Turn

from botkit_plugins.ratelimit import Rate, RateLimitConfig, parse_rate
from botkit_plugins.ratelimit.middleware import RateLimit, humanize


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def turn(user="u1", channel="c1", direct=False) -> Turn:
    inbound = Inbound("e", ThreadKey("p", "w", channel, "t"), user, "q", adapter="a", is_direct=direct)
    return Turn(inbound, None, "b", "q")  # type: ignore[arg-type]  # the limiter never touches the adapter


@pytest.mark.parametrize(("text", "rate"), [
    ("10/minute", Rate(10, 60)), ("10 per minute", Rate(10, 60)), ("5/30s", Rate(5, 30)),
    ("100/hour", Rate(100, 3600)), ("3/2min", Rate(3, 120)), ("1000/day", Rate(1000, 86400)),
])
def test_parse_rate(text, rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["10", "ten/minute", "0/minute", "10/fortnight"])
def test_bad_rates_are_config_errors(bad) -> None:
    with pytest.raises(ValidationError, match="not a rate"):
        RateLimitConfig(per_user=bad)


def test_humanize_rounds_up() -> None:
    assert [humanize(s) for s in (0.2, 1, 12.1, 60, 61, 3601)] == \
        ["1 second", "1 second", "13 seconds", "60 seconds", "2 minutes", "2 hours"]


def test_n_plus_first_within_the_period_is_refused_with_retry_time() -> None:
    clock = Clock()
    limiter = RateLimit(RateLimitConfig(per_user="3/minute", message="Wait {retry_after}."), clock=clock)
    assert [limiter.botkit_message_received(turn()) for _ in range(3)] == [None] * 3
    refused = limiter.botkit_message_received(turn())
    assert refused is not None and refused.reply == "Wait 20 seconds."
    # told once: further messages in the wait are refused silently
    again = limiter.botkit_message_received(turn())
    assert again is not None and again.reply is None
    assert limiter.botkit_message_received(turn(user="u2")) is None  # others are not affected
    clock.now += 20
    assert limiter.botkit_message_received(turn()) is None  # one token refilled
    refused = limiter.botkit_message_received(turn())
    assert refused is not None and refused.reply == "Wait 20 seconds."  # a new wait is announced


def test_per_channel_limit_and_refusal_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimit(RateLimitConfig(per_user="2/minute", per_channel="3/minute"), clock=clock)
    results = [limiter.check(turn(user=u)) for u in ("a", "b", "c", "d")]
    assert results[:3] == [0, 0, 0] and results[3] == pytest.approx(20)
    # "d" was refused by the channel, so nothing was taken from its own bucket
    clock.now += 20
    assert limiter.check(turn(user="d")) == 0
    assert limiter.users.wait(("a", "w", "d")) == 0  # one of its two tokens left
    assert limiter.check(turn(user="d")) == pytest.approx(20)  # the channel is empty again
    # DMs are not counted against a channel
    assert limiter.check(turn(user="e", channel="c1", direct=True)) == 0


def test_exempt_users_and_disabled_limits() -> None:
    limiter = RateLimit(RateLimitConfig(per_user="1/hour", exempt_users=["ops"]), clock=Clock())
    assert all(limiter.botkit_message_received(turn(user="ops")) is None for _ in range(5))
    assert RateLimit(RateLimitConfig(per_user=None), clock=Clock()).check(turn()) == 0


def test_full_buckets_are_pruned(monkeypatch) -> None:
    import botkit_plugins.ratelimit.middleware as mod

    monkeypatch.setattr(mod, "_PRUNE_AT", 5)
    clock = Clock()
    limiter = RateLimit(RateLimitConfig(per_user="2/minute"), clock=clock)
    for i in range(5):
        limiter.check(turn(user=f"u{i}"))
    clock.now += 120
    limiter.check(turn(user="late"))
    assert len(limiter.users._state) == 1


async def test_end_to_end_n_plus_first_message_is_refused(tmp_path) -> None:
    config = {"adapters": {"rec": {"type": "recording"}},
              "backends": {"b": {"type": "fake", "answer": "ok"}},
              "middlewares": {"ratelimit": {"per_user": "2/minute"}}}
    async with running_bot(config, tmp_path) as bot:
        rec = bot.adapters["rec"]
        for i in range(3):
            await rec.inject(f"q{i}", thread=f"t{i}")
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["q0", "q1"]
        texts = rec.texts()
        assert texts.count("ok") == 2
        [refusal] = [t for t in texts if t != "ok"]
        assert "try again in 30 seconds" in refusal
