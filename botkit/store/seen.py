"""Which event ids may have been claimed within their TTL, in fixed memory: the SQLite store's
dedupe filter.

A dict of the ids themselves (~200 B each, kept 48 h) pinned the memory of every burst: the
ids survive scattered among the burst's freed objects, so the allocator could give none of it
back (RSS 401 MB after a 100,000-turn burst, 144 MB without the ids). Here memory is fixed:
two Bloom filters, for the ids claimed in this TTL period and in the one before (a period's
filter is dropped once every id in it has expired), answer "certainly not" for almost every
new id. A "maybe" is the store's to settle, from the ids not yet committed and then from the
database itself.
"""

from __future__ import annotations

import time

#: bits per filter (2 MiB): at a million ids a period, 0.2 % of new ids need a look in the
#: database; at four million, 2 %
BITS = 1 << 24
_HASHES = 4


class SeenIds:
    __slots__ = ("ttl", "bits", "_current", "_previous", "_rotate_at")

    def __init__(self, ttl: float, *, bits: int = BITS, now: float | None = None) -> None:
        if bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self.ttl = ttl
        self.bits = bits
        self._current = bytearray(bits // 8)
        self._previous = bytearray(bits // 8)
        self._rotate_at = (time.time() if now is None else now) + ttl

    def add(self, event_id: str, now: float) -> bool:
        """Note `event_id` as claimed at `now`; whether it may have been claimed before within
        its TTL (False: certainly not). One pass: the claim path calls nothing else."""
        if now >= self._rotate_at:
            self._rotate(now)
        h = hash(event_id)  # a str caches its hash; per process, as the filter is
        step = ((h >> 32) | 1) & 0xFFFF_FFFF
        mask = self.bits - 1
        current, previous = self._current, self._previous
        in_current = in_previous = True
        for i in range(_HASHES):
            bit = (h + i * step) & mask
            byte, flag = bit >> 3, 1 << (bit & 7)
            if not current[byte] & flag:
                in_current = False
                current[byte] |= flag
            if in_previous and not previous[byte] & flag:
                in_previous = False
        return in_current or in_previous

    def _rotate(self, now: float) -> None:
        """A new period: the one before is forgotten (each of its ids expired by now)."""
        if now >= self._rotate_at + self.ttl:  # idle for a whole period: both are out of date
            self._current = bytearray(self.bits // 8)
        self._previous, self._current = self._current, bytearray(self.bits // 8)
        self._rotate_at = now + self.ttl
