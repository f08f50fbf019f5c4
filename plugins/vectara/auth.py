"""Vectara credentials as request headers (a `botkit.http.Auth`): an API key, or OAuth2.

The OAuth2 token is fetched on first use and cached until shortly before it expires;
after a 401 the transport invalidates it and asks once more with a fresh one. Secrets
only ever go into request headers or the token request body, never into messages.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from pydantic import SecretStr

from botkit.backends import BackendError

log = logging.getLogger("botkit.backends.vectara")

#: refresh this many seconds before the token's stated expiry
EXPIRY_MARGIN = 30.0
#: what a user is told when Vectara will not take botkit's credentials (the operator log says why)
UNREACHABLE = "the knowledge base is not reachable right now"


class ApiKeyAuth:
    def __init__(self, api_key: SecretStr) -> None:
        self._key = api_key

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {"x-api-key": self._key.get_secret_value()}

    def invalidate(self) -> bool:
        """Nothing to refresh: a rejected key stays rejected."""
        return False

    def __repr__(self) -> str:
        return "ApiKeyAuth(api_key=SecretStr('**********'))"


class OAuth2Auth:
    """Client-credentials grant against `token_url`, as Vectara's SDK does it."""

    def __init__(self, token_url: str, client_id: str, client_secret: SecretStr, *, backend: str) -> None:
        self.backend = backend
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                await self._fetch(client)
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> bool:
        """Drop the cached token; True if there was one worth retrying without."""
        had = self._token is not None
        self._token = None
        return had

    async def _fetch(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.post(self.token_url, data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret.get_secret_value(),
            })
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the OAuth2 token URL ({type(exc).__name__})", retryable=True) from None
        status = response.status_code
        if status >= 500:
            raise BackendError(f"OAuth2 token request was refused (HTTP {status})", retryable=True, status=status)
        if status != 200:
            log.error("vectara backend %r: OAuth2 token request was refused (HTTP %d); check "
                      "backends.%s.client_id/client_secret", self.backend, status, self.backend)
            raise BackendError(UNREACHABLE, status=status)
        try:
            payload = response.json()
            token = payload["access_token"]
        except (ValueError, KeyError, TypeError):
            raise BackendError("OAuth2 token response has no access_token") from None
        lifetime = float(payload.get("expires_in") or 3600)
        self._token = str(token)
        self._expires = time.monotonic() + max(0.0, lifetime - EXPIRY_MARGIN)

    def __repr__(self) -> str:
        return f"OAuth2Auth(token_url={self.token_url!r}, client_id={self.client_id!r})"


Auth = ApiKeyAuth | OAuth2Auth
