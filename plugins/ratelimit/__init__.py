"""botkit built-in middleware: ratelimit.

Token buckets per user and per channel, e.g. `per_user: 10/minute`: a burst of up to 10
questions, refilled evenly over the minute. Over the limit the user is told when to try
again (once per wait, not on every message).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pydantic import field_validator

from botkit import hookimpl
from botkit.config import Section

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
          "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?\s*$")


class Rate(NamedTuple):
    limit: int
    period: float  # seconds

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


def parse_rate(text: str) -> Rate:
    """"10/minute", "10 per minute", "5/30s", "100/hour", "1000/day" -> Rate."""
    m = _RATE.match(text.lower())
    unit = _UNITS.get(m.group(3)) if m else None
    if m is None or unit is None or int(m.group(1)) < 1:
        raise ValueError(f"not a rate: {text!r} (write e.g. 10/minute, 5/30s, 100/hour)")
    return Rate(int(m.group(1)), unit * int(m.group(2) or 1))


class RateLimitConfig(Section):
    """`middlewares: ratelimit:`; a limit of None is off."""

    per_user: Rate | None = parse_rate("10/minute")
    per_channel: Rate | None = None
    #: said once per wait; {retry_after} reads like "12 seconds"
    message: str = "You're sending questions faster than I can answer. Please try again in {retry_after}."
    #: user ids never limited (operators, test accounts)
    exempt_users: list[str] = []

    @field_validator("per_user", "per_channel", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return parse_rate(value) if isinstance(value, str) else value


@hookimpl
def botkit_register_middlewares(register) -> None:
    register("ratelimit", "botkit_plugins.ratelimit.middleware:RateLimit", RateLimitConfig)
