"""Outbound Bot Connector calls: the client-credentials token and the REST paths.

The Agents SDK neither caches tokens in a fakeable way (msal) nor handles 429, so this
is plain httpx: a token cached until shortly before it expires, and every call backed
off with jitter on 412/502/504 (and 429 when the caller wants it absorbed), honouring
Retry-After. A 429 the caller does not absorb becomes `RateLimited`, so the renderer
waits and then sends its latest text instead of a stale one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from botkit.adapters import RateLimited, Undeliverable
from botkit.http import retry_after

RETRIED = frozenset({412, 429, 502, 504})
MAX_DELAY = 60.0


class TeamsError(Exception):
    """A connector or token call failed; the text names the status and Teams' error code only."""

    def __init__(self, status: int, code: str = "", message: str = "") -> None:
        super().__init__(f"Teams answered {status}" + (f" {code}" if code else "") + (f": {message}" if message else ""))
        self.status = status
        self.code = code


class TeamsRefused(TeamsError, Undeliverable):
    """Teams refused the call for good (a 4xx that no retry changes: the conversation or
    activity is unknown, the bot is not in the conversation, the activity is invalid)."""


class TokenProvider:
    """A client-credentials access token, fetched once and reused until near expiry."""

    def __init__(self, *, http: httpx.AsyncClient, url: str, client_id: str, secret: SecretStr, scope: str,
                 margin: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._url = url
        self._client_id = client_id
        self._secret = secret
        self._scope = scope
        self._margin = margin
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the connector said 401): the next call fetches a new one."""
        self._token = None

    async def _fetch(self) -> None:
        response = await self._http.post(self._url, data={
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
            "scope": self._scope,
        })
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data.get("access_token"), str):
            # "error" is a code like invalid_client; the description may echo request details
            raise TeamsError(response.status_code, str(data.get("error", "")), "token request failed")
        expires_in = float(data.get("expires_in", 3600))
        self._token = data["access_token"]
        self._expires = self._clock() + max(expires_in - self._margin, expires_in / 2)


def conversations_url(service_url: str) -> str:
    """Where the bot creates a conversation: a new thread in a channel."""
    return f"{service_url.rstrip('/')}/v3/conversations"


def activities_url(service_url: str, conversation_id: str, activity_id: str | None = None) -> str:
    url = f"{conversations_url(service_url)}/{quote(conversation_id, safe='')}/activities"
    return f"{url}/{quote(activity_id, safe='')}" if activity_id else url


class Connector:
    """POST and PUT activities with the bot's token (none in local mode), retrying what Teams says to retry."""

    def __init__(self, *, http: httpx.AsyncClient, tokens: TokenProvider | None, max_retries: int,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self._http = http
        self._tokens = tokens
        self._max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter

    async def call(self, method: str, url: str, activity: dict[str, Any], *, absorb_429: bool) -> dict[str, Any]:
        """Send `activity`; return the JSON answer ({} when empty). Raises TeamsError / RateLimited."""
        body = json.dumps(activity, ensure_ascii=False).encode()
        attempt = 0
        reauthorized = False
        while True:
            headers = {"Content-Type": "application/json; charset=utf-8"}
            if self._tokens is not None:
                headers["Authorization"] = f"Bearer {await self._tokens.token()}"
            response = await self._http.request(method, url, content=body, headers=headers)
            status = response.status_code
            if status == 401 and self._tokens is not None and not reauthorized:
                self._tokens.invalidate()
                reauthorized = True
                continue
            if status in (200, 201, 202):
                return _json_object(response)
            if status in RETRIED:
                delay = retry_after(response)
                if delay is None:
                    delay = min(MAX_DELAY, 0.5 * 2 ** attempt) * (0.5 + self._jitter())
                if status == 429 and not absorb_429:
                    raise RateLimited(delay)
                if attempt < self._max_retries:
                    attempt += 1
                    await self._sleep(min(delay, MAX_DELAY))
                    continue
                if status == 429:
                    raise RateLimited(delay)
            error = _json_object(response).get("error")
            error = error if isinstance(error, dict) else {}
            kind = TeamsRefused if 400 <= status < 500 and status not in (408, 429) else TeamsError
            raise kind(status, str(error.get("code", "")), str(error.get("message", ""))[:200])


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json() if response.content else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
