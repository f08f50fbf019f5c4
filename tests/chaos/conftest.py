"""The `chaos` marker: tests that SIGKILL real bot processes under load (bench/chaos.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: kills real bot processes under load (bench/chaos.py); ~1 min")
