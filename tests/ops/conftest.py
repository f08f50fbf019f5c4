"""A frozen clock for APScheduler: tests set the time and wake the scheduler, nothing sleeps."""

from __future__ import annotations

from datetime import datetime, timezone

import apscheduler.executors.base
import apscheduler.schedulers.base
import apscheduler.triggers.interval
import pytest


class Clock:
    """What `datetime.now()` answers inside APScheduler while the fixture is active."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def set(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(datetime(2025, 3, 3, 7, 59, tzinfo=timezone.utc))  # a Monday, 08:59 in Berlin

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's signature
            return frozen.now.astimezone(tz) if tz else frozen.now.replace(tzinfo=None)

    for module in (apscheduler.schedulers.base, apscheduler.executors.base, apscheduler.triggers.interval):
        monkeypatch.setattr(module, "datetime", FrozenDatetime)
    return frozen


BASE = {
    "adapters": {"rec": {"type": "recording", "platform": "slack", "workspace": "T1"}},
    "backends": {"kb": {"type": "fake", "answer": "This week [1].", "sources": [{"title": "Changelog",
                                                                               "url": "https://docs/changes"}],
                        "score": 0.2}},
    "middlewares": {"citations": {}, "fcs_warning": {"threshold": 0.5}},
}


def with_(**sections: object) -> dict:
    """BASE plus (or with replaced) top-level sections."""
    return {**BASE, **sections}
