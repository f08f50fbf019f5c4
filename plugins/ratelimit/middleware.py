"""The ratelimit middleware: token buckets kept in this process.

aiolimiter's limiter waits for capacity; a chat bot must instead refuse at once and say
when to come back, so the bucket here is a small non-blocking one. State is per process:
replicas sharing one store each keep their own buckets.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botkit import hookimpl
from botkit.turn import Handled, Turn

from botkit_plugins.ratelimit import Rate, RateLimitConfig

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.ratelimit")

#: past this many buckets, full ones (the same as absent) are dropped
_PRUNE_AT = 10_000


class Buckets:
    """Token buckets of one rate, by key: `rate.limit` at most, refilled evenly over `rate.period`."""

    def __init__(self, rate: Rate, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self._state: dict[tuple, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: tuple, now: float) -> float:
        tokens, at = self._state.get(key, (float(self.rate.limit), now))
        return min(float(self.rate.limit), tokens + (now - at) * self.rate.limit / self.rate.period)

    def wait(self, key: tuple) -> float:
        """Seconds until `key` may take a token (0: now)."""
        missing = 1.0 - self._tokens(key, self.clock())
        return max(0.0, missing * self.rate.period / self.rate.limit)

    def take(self, key: tuple) -> None:
        now = self.clock()
        self._state[key] = (self._tokens(key, now) - 1.0, now)
        if len(self._state) > _PRUNE_AT:
            full = [k for k in self._state if self._tokens(k, now) >= self.rate.limit]
            for k in full:
                del self._state[k]


def humanize(seconds: float) -> str:
    """12.1 -> "13 seconds"; 61 -> "2 minutes"; rounds up so the user is never early."""
    if seconds <= 60:
        n = max(1, math.ceil(seconds))
        return f"{n} second{'s' if n != 1 else ''}"
    if seconds <= 3600:
        n = math.ceil(seconds / 60)
        return f"{n} minute{'s' if n != 1 else ''}"
    n = math.ceil(seconds / 3600)
    return f"{n} hour{'s' if n != 1 else ''}"


class RateLimit:
    """Registered as a plugin when `middlewares: ratelimit:` is configured."""

    def __init__(self, config: RateLimitConfig, bot: Bot | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.users = Buckets(config.per_user, clock) if config.per_user else None
        self.channels = Buckets(config.per_channel, clock) if config.per_channel else None
        self._told: dict[tuple, float] = {}  # user key -> until when they were told to wait

    def check(self, turn: Turn) -> float:
        """Take a token from each bucket of this message; 0, or the seconds to wait (nothing taken)."""
        inbound = turn.inbound
        thread = inbound.thread
        wanted = []
        if self.users is not None:
            wanted.append((self.users, (inbound.adapter, thread.workspace, inbound.user)))
        if self.channels is not None and not inbound.is_direct:
            wanted.append((self.channels, (inbound.adapter, thread.workspace, thread.channel)))
        wait = max((buckets.wait(key) for buckets, key in wanted), default=0.0)
        if wait == 0.0:
            for buckets, key in wanted:
                buckets.take(key)
        return wait

    @hookimpl
    def botkit_message_received(self, turn: Turn) -> Handled | None:
        inbound = turn.inbound
        if inbound.user in self.config.exempt_users:
            return None
        wait = self.check(turn)
        if wait == 0.0:
            return None
        now = self.clock()
        who = (inbound.adapter, inbound.thread.workspace, inbound.user)
        told = self._told.get(who, 0.0) > now
        self._told = {k: v for k, v in self._told.items() if v > now}
        if not told:
            self._told[who] = now + wait
        log.info("rate limited: user %s in %s for %.1f s (event %s)", inbound.user, inbound.thread, wait,
                 inbound.event_id)
        reply = None if told else self.config.message.format(retry_after=humanize(wait))
        return Handled(reply=reply, reason=f"rate limited for {wait:.1f} s")
