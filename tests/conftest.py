"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from botkit import http


@pytest.fixture
def delays(monkeypatch):
    """The waits `botkit.http.Transport` would sleep between retries, recorded instead."""
    recorded: list[float] = []

    async def record(delay):
        recorded.append(delay)

    monkeypatch.setattr(http, "sleep", record)
    return recorded
