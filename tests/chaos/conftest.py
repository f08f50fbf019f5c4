"""The `chaos` marker: tests that SIGKILL real bot processes under load (bench/chaos.py).

bench/ holds scripts, not a package: its folder goes on sys.path so that the tests of the
tool's judge can import `chaos_eval` the way bench/chaos.py does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: kills real bot processes under load (bench/chaos.py); ~1 min")
