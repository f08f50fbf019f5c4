"""Outbound calls: token caching, backoff honouring Retry-After, re-auth on 401."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from botkit_plugins.teams.testing import TENANT

from botkit.adapters import RateLimited
from botkit_plugins.teams.connector import Connector, TeamsError, TokenProvider, activities_url


@pytest.fixture
async def connector(fake):
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    now = [1000.0]
    async with httpx.AsyncClient() as http:
        tokens = TokenProvider(http=http, url=f"{fake.url}/{TENANT}/oauth2/v2.0/token", client_id=fake.app_id,
                               secret=SecretStr("pw"), scope="s/.default", clock=lambda: now[0])
        client = Connector(http=http, tokens=tokens, max_retries=3, sleep=sleep, jitter=lambda: 0.5)
        client.sleeps = sleeps
        client.now = now
        yield client


def _url(fake):
    fake.activity("x")  # registers the personal conversation
    return activities_url(fake.service_url, "a:1personal", "1700")


@pytest.mark.parametrize("status", [412, 502, 504])
async def test_transient_errors_are_retried_with_backoff(fake, connector, status):
    fake.script(status, times=2)
    answer = await connector.call("POST", _url(fake), {"type": "message", "text": "hi"}, absorb_429=False)
    assert answer["id"].startswith("msg-")
    assert connector.sleeps == [0.5, 1.0]  # exponential, jittered (jitter fixed at the midpoint)
    assert len(fake.calls) == 3


async def test_retry_after_is_honoured_when_absorbing_429(fake, connector):
    fake.script(429, headers={"Retry-After": "3"})
    await connector.call("POST", _url(fake), {"type": "message", "text": "hi"}, absorb_429=True)
    assert connector.sleeps == [3.0]


async def test_429_not_absorbed_is_rate_limited(fake, connector):
    fake.script(429, headers={"Retry-After": "2.5"})
    with pytest.raises(RateLimited) as caught:
        await connector.call("POST", _url(fake), {"type": "message", "text": "hi"}, absorb_429=False)
    assert caught.value.retry_after == 2.5 and connector.sleeps == []


async def test_giving_up_raises_with_the_teams_error_code(fake, connector):
    fake.script(502, {"error": {"code": "BadGateway", "message": "upstream"}}, times=4)
    with pytest.raises(TeamsError) as caught:
        await connector.call("POST", _url(fake), {"type": "message", "text": "hi"}, absorb_429=True)
    assert caught.value.status == 502 and caught.value.code == "BadGateway"
    assert len(connector.sleeps) == 3


async def test_token_is_cached_then_renewed_before_expiry_and_after_a_401(fake, connector):
    url = _url(fake)
    for _ in range(3):
        await connector.call("POST", url, {"type": "message", "text": "hi"}, absorb_429=False)
    assert len(fake.token_requests) == 1
    connector.now[0] += 3600 - 299  # within the 5-minute margin
    await connector.call("POST", url, {"type": "message", "text": "hi"}, absorb_429=False)
    assert len(fake.token_requests) == 2 and fake.calls[-1].authorization == "Bearer fake-token-2"
    fake.script(401, {"error": {"code": "Unauthorized"}})
    await connector.call("POST", url, {"type": "message", "text": "hi"}, absorb_429=False)
    assert len(fake.token_requests) == 3 and fake.calls[-1].authorization == "Bearer fake-token-3"


async def test_token_failure_does_not_reveal_the_secret(fake):
    async with httpx.AsyncClient() as http:
        tokens = TokenProvider(http=http, url=f"{fake.url}/{TENANT}/oauth2/v2.0/token", client_id="wrong",
                               secret=SecretStr("very-secret"), scope="s")
        with pytest.raises(TeamsError) as caught:
            await tokens.token()
    assert caught.value.status == 401 and "invalid_client" in str(caught.value)
    assert "very-secret" not in str(caught.value) and "very-secret" not in repr(tokens.__dict__)


def test_conversation_ids_are_escaped_in_paths():
    url = activities_url("https://smba.example/amer/", "19:c@thread.tacv2;messageid=17", "17")
    assert url == "https://smba.example/amer/v3/conversations/19%3Ac%40thread.tacv2%3Bmessageid%3D17/activities/17"
