"""Tests against software nobody here wrote (the Agents Playground, LiteLLM's proxy, Chromium)
skip on a developer's machine without it and fail under CI, which installs it: CI never passes
by not running them (README, Development)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_a_missing_tool_fails_under_ci_and_is_skipped_elsewhere(tools, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Chromium is needed .*CI must not skip this"):
        tools.missing("Chromium is needed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="Chromium is needed"):
        tools.missing("Chromium is needed")


def test_ci_run_sets_ci_before_the_tests_whoever_calls_it():
    script = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    exported = re.search(r'^export CI="\$\{CI:-1\}"$', script, re.MULTILINE)
    tests = re.search(r"^python3 -m pytest\b", script, re.MULTILINE)
    assert exported and tests and exported.start() < tests.start()
