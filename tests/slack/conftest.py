"""Fixtures for the Slack adapter's tests: the loopback fake Slack and signed event posting."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from botkit_plugins.slack.testing import BOT_USER, FakeSlack, event_callback, interaction_body, sign

SECRET = "test-signing-secret"
TS = "1690000000.000100"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk reads HTTP(S)_PROXY; loopback must never go through one."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
async def fake() -> FakeSlack:
    async with FakeSlack() as server:
        yield server


def bot_config(fake: FakeSlack, slack: dict[str, Any] | None = None, backend: dict[str, Any] | None = None,
               **extra: Any) -> dict[str, Any]:
    """A deployment: the slack adapter pointed at the fake, the scripted `fake` backend."""
    adapter = {"type": "slack", "bot_token": "xoxb-test-token", "signing_secret": SECRET,
               "api_url": fake.api_url, "edit_interval": 0.01, "rate_limit_retries": 0, **(slack or {})}
    dispatch = {"progress_delay": 0, **extra.pop("dispatch", {})}  # progress first, as most tests look at it
    return {"adapters": {"slack": adapter}, "backends": {"b": {"type": "fake", **(backend or {})}},
            "dispatch": dispatch, **extra}


def message(text: str, *, ts: str = TS, thread_ts: str | None = None, channel: str = "C1", user: str = "U1",
            kind: str = "app_mention", **fields: Any) -> dict[str, Any]:
    event = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts, **fields}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def mention(text: str = f"<@{BOT_USER}> how do I reset my password?", event_id: str = "Ev1", **kw: Any) -> dict:
    return event_callback(message(text, **kw), event_id)


async def post_event(url: str, payload: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None,
                     headers: dict[str, str] | None = None, path: str = "/slack/events") -> tuple[int, str]:
    """POST a signed Events API request to botkit's server; (status, body)."""
    body = json.dumps(payload)
    async with aiohttp.ClientSession() as session:
        async with session.post(url + path, data=body,
                                headers={**sign(body, secret, timestamp), **(headers or {})}) as resp:
            return resp.status, await resp.text()


async def post_interaction(url: str, payload: dict[str, Any], *, path: str = "/slack/events") -> int:
    """POST a signed interactive payload (a button click) the way Slack does: a form; the status."""
    body = interaction_body(payload)
    headers = sign(body, SECRET, content_type="application/x-www-form-urlencoded")
    async with aiohttp.ClientSession() as session:
        async with session.post(url + path, data=body, headers=headers) as resp:
            return resp.status
