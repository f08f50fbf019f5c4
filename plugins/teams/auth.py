"""Inbound authentication of Bot Framework requests, every check the docs ask for.

The Agents SDK skips the endorsement check and only logs a `serviceurl` mismatch, so
botkit does it itself with PyJWT: RS256 against the JWKS named by the OpenID metadata
(cached, refetched when a token names an unknown key), issuer, audience = app id,
expiry with 5 minutes of skew, `serviceurl` claim = the activity's `serviceUrl`, and the
signing key endorsed for the activity's channel (`msteams`).

In local mode (no credentials, loopback only) there is no token to check; the activity's
`serviceUrl` must then be on this machine too, so an unauthenticated request can never make
the bot post to a host elsewhere (and a real Teams activity, relayed by a proxy on this host to
a bot left without credentials, is refused rather than answered without a token).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from botkit_plugins.teams import is_loopback

log = logging.getLogger("botkit.teams.auth")

CLOCK_SKEW = 300.0
CHANNEL = "msteams"


class AuthError(Exception):
    """The request is refused: 401 (who are you?) or 403 (not allowed here), or 503."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: Any
    endorsements: frozenset[str]


@dataclass(frozen=True, slots=True)
class Identity:
    """A token that verified: its claims and the endorsements of the key that signed it."""

    claims: dict[str, Any]
    endorsements: frozenset[str]


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


class InboundVerifier:
    """Verifies `Authorization: Bearer` tokens and the activity they came with."""

    def __init__(self, *, http: httpx.AsyncClient, metadata_url: str, app_id: str, issuers: list[str],
                 min_refresh: float, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._metadata_url = metadata_url
        self._app_id = app_id
        self._issuers = issuers
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify_token(self, authorization: str | None) -> Identity:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "no bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"malformed token: {exc}") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") != "RS256":
            raise AuthError(401, "token is not RS256 with a key id")
        signing = await self._key(kid)
        if signing is None:
            raise AuthError(401, "token signed by an unknown key")
        try:
            claims = jwt.decode(
                token, signing.key, algorithms=["RS256"], audience=self._app_id, issuer=self._issuers,
                leeway=CLOCK_SKEW, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"invalid token: {exc}") from None
        return Identity(claims, signing.endorsements)

    @staticmethod
    def check_activity(identity: Identity, activity: dict[str, Any]) -> None:
        """The token must be for this activity's service URL and channel."""
        service_url = activity.get("serviceUrl")
        claim = identity.claims.get("serviceurl")
        if not isinstance(service_url, str) or not isinstance(claim, str) or not _same_url(claim, service_url):
            raise AuthError(403, "serviceurl claim does not match the activity's serviceUrl")
        channel = activity.get("channelId")
        if channel != CHANNEL or CHANNEL not in identity.endorsements:
            raise AuthError(403, f"signing key is not endorsed for channel {channel!r}")

    # -- the key cache ------------------------------------------------------------------

    async def _key(self, kid: str) -> SigningKey | None:
        if self._needs_refresh(kid):
            async with self._lock:
                if self._needs_refresh(kid):  # another request may have refreshed meanwhile
                    await self._refresh()
        return self._keys.get(kid)

    def _needs_refresh(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        return age > self._max_age or (kid not in self._keys and age >= self._min_refresh)

    async def _refresh(self) -> None:
        try:
            metadata = await self._get_json(self._metadata_url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("OpenID metadata has no jwks_uri")
            jwks = await self._get_json(jwks_uri)
        except (httpx.HTTPError, ValueError) as exc:
            if not self._keys:
                raise AuthError(503, f"cannot fetch signing keys: {exc}") from None
            log.warning("teams: cannot refresh signing keys, keeping the cached ones: %s", exc)
            self._fetched_at = self._clock()
            return
        keys: dict[str, SigningKey] = {}
        for entry in jwks.get("keys", []):
            try:
                parsed = jwt.PyJWK(entry, algorithm="RS256")
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, KeyError):
                continue
            if isinstance(entry.get("kid"), str):
                keys[entry["kid"]] = SigningKey(parsed.key, frozenset(entry.get("endorsements") or ()))
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("teams: loaded %d signing keys", len(keys))

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data


def check_local_activity(activity: dict[str, Any]) -> None:
    """Local mode: the activity's `serviceUrl`, where the answer goes, must be on this machine."""
    service_url = activity.get("serviceUrl")
    try:
        host = urlsplit(service_url).hostname if isinstance(service_url, str) else None
    except ValueError:
        host = None
    if not host or not is_loopback(host):
        raise AuthError(403, "local mode answers only activities whose serviceUrl is on this machine")
