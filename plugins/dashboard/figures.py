"""The dashboard's figures, from the store's bounded history reads.

One read of the period's latest turns (without their texts, at most `max_turns`), one
read of the feedback on those turns (the feedback plugin's tally, `botkit_turn_tallies`),
and reads by primary key for the few turns listed:
whatever the store's size, opening the dashboard reads a bounded number of index entries.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botkit.plugins import Plugins
from botkit.store import Store

#: period -> (seconds, bucket seconds)
WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3600, 300),
    "24h": (86_400, 3600),
    "7d": (7 * 86_400, 6 * 3600),
    "30d": (30 * 86_400, 86_400),
}
LISTED = 10  # turns listed under "low FCS" and "could not answer"
RECENT = 25  # questions per page of the recent list
FAILED = ("failed", "timeout", "interrupted")


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` 0.5: the median) of `values`; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Group:
    """The figures of one adapter and backend pair."""

    adapter: str
    backend: str
    turns: int = 0
    failed: int = 0
    timeouts: int = 0
    first_text: list[float] = field(default_factory=list, repr=False)
    total: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "backend": self.backend, "turns": self.turns, "failed": self.failed,
                "timeouts": self.timeouts, **timings(self.first_text, self.total)}


def timings(first_text: list[float], total: list[float]) -> dict[str, float | None]:
    return {"first_text_median": percentile(first_text, 0.5), "first_text_p95": percentile(first_text, 0.95),
            "total_median": percentile(total, 0.5), "total_p95": percentile(total, 0.95)}


async def figures(store: Store, plugins: Plugins, *, window: str, max_turns: int, low_fcs: float,
                  now: float | None = None) -> dict[str, Any]:
    """Everything the dashboard shows for `window`, as JSON-ready data."""
    span, bucket = WINDOWS[window]
    now = time.time() if now is None else now
    since = now - span
    rows = await store.turn_figures(since=since, limit=max_turns)
    capped = len(rows) >= max_turns
    start = since if not capped else max(since, min(row["created_at"] for row in rows))
    first_bucket = int(start // bucket) * bucket
    buckets: dict[int, Counter] = {b: Counter() for b in range(first_bucket, int(now) + 1, bucket)}
    groups: dict[tuple[str, str], Group] = {}
    statuses: Counter = Counter()
    first_text: list[float] = []
    total: list[float] = []
    low: list[int] = []
    unanswered: list[int] = []
    unanswered_kinds: Counter = Counter()
    for row in rows:
        status = row["status"]
        statuses[status] += 1
        group = groups.get((row["adapter"], row["backend"]))
        if group is None:
            group = groups[(row["adapter"], row["backend"])] = Group(row["adapter"], row["backend"])
        group.turns += 1
        slot = int(row["created_at"] // bucket) * bucket
        if slot in buckets:
            buckets[slot]["turns"] += 1
            if status in FAILED:
                buckets[slot]["failed"] += 1
        if status == "timeout":
            group.timeouts += 1
        elif status in FAILED:
            group.failed += 1
        if row["first_text_after"] is not None:
            group.first_text.append(row["first_text_after"])
            first_text.append(row["first_text_after"])
        if status == "complete":
            group.total.append(row["duration"])
            total.append(row["duration"])
        if row["score"] is not None and row["score"] < low_fcs:
            low.append(row["id"])
        if status != "complete":
            unanswered.append(row["id"])
            unanswered_kinds[status] += 1
        elif not row["cited"]:
            unanswered.append(row["id"])
            unanswered_kinds["no sources"] += 1
    tallies = await plugins.turn_tallies(store, since=since, limit=max_turns)
    votes = tallies.pop("feedback", {})
    up, down = votes.get("up", 0), votes.get("down", 0)
    answered = statuses.get("complete", 0)
    listed = set(low[:LISTED]) | set(unanswered[:LISTED])
    by_id = {t["id"]: t for t in await store.recent_turns(limit=len(listed), ids=listed)} if listed else {}
    return {
        "window": window, "since": since, "until": now, "bucket_seconds": bucket,
        "turns": len(rows), "capped": capped, "max_turns": max_turns,
        "statuses": dict(statuses),
        "failed": sum(statuses.get(s, 0) for s in FAILED if s != "timeout"), "timeouts": statuses.get("timeout", 0),
        "timings": timings(first_text, total),
        "over_time": [{"at": at, "turns": c["turns"], "failed": c["failed"]} for at, c in sorted(buckets.items())],
        "groups": [g.summary() for g in sorted(groups.values(), key=lambda g: (-g.turns, g.adapter, g.backend))],
        "feedback": {"up": up, "down": down, "comments": votes.get("comment", 0),
                     "rate": (up + down) / answered if answered else None,
                     "up_share": up / (up + down) if up + down else None},
        "tallies": tallies,  # other plugins' counts on the same turns (botkit_turn_tallies)
        "low_fcs": {"threshold": low_fcs, "count": len(low), "turns": [by_id[i] for i in low[:LISTED] if i in by_id]},
        "unanswered": {"count": len(unanswered), "kinds": dict(unanswered_kinds),
                       "turns": [by_id[i] for i in unanswered[:LISTED] if i in by_id]},
    }


__all__ = ["FAILED", "WINDOWS", "figures", "percentile"]
