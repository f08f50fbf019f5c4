"""Crontab lines as APScheduler triggers: read by the config (validation) and the scheduler."""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")


def cron_trigger(expr: str, tz: str) -> CronTrigger:
    """A trigger for a standard 5-field crontab line.

    APScheduler 3 counts weekdays from Monday = 0; crontab from Sunday = 0 (and 7).
    Numeric weekdays are turned into names so "0 9 * * 1" means Monday, as in cron.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    days: list[str] = []
    for part in fields[4].split(","):
        m = _NUMERIC.match(part)
        if m is None or (m.group(1) == "*" and not m.group(2)):
            days.append(part)  # names, "*", "last"-style parts: the same in both
            continue
        span, step = m.group(1), int(m.group(2) or 1)
        low, high = (0, 6) if span == "*" else (int(x) for x in (span.split("-") + [span])[:2])
        if not 0 <= low <= high <= 7 or step < 1:
            raise ValueError(f"invalid weekday {part!r}")
        days.extend(_WEEKDAYS[n] for n in range(low, high + 1, step))
    weekday = ",".join(dict.fromkeys(days))
    return CronTrigger(minute=fields[0], hour=fields[1], day=fields[2], month=fields[3],
                       day_of_week=weekday, timezone=tz)
