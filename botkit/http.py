"""HTTP plumbing every HTTP backend shares: one pooled client, retries, auth, error mapping, SSE.

Backends make their requests through `Transport` (config: `botkit.config.HttpSettings`), so
they retry the same way (429/5xx and connections that fail or break, honouring `Retry-After`,
only before anything of the answer was read: `Transport.items`), put their credentials on requests the same way (an `Auth` gives
the headers, and after a 401 may renew them once: an OAuth2 token that expired), turn upstream
failures into `BackendError`s whose message is safe to show while the operator log gets the
upstream detail, and read Server-Sent Events with one tolerant reader.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from datetime import timezone
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent

from botkit.backends import BackendError
from botkit.events import AnswerEvent, Failed
from botkit.config import HttpSettings, RetrySettings

log = logging.getLogger("botkit.backends.http")

#: what waits between retries; tests replace it to record the delays instead of sleeping
sleep = asyncio.sleep

#: a connection that failed or broke before any of the answer arrived: asking again repeats nothing
_RETRIED_ERRORS = (httpx.ConnectTimeout, httpx.NetworkError, httpx.RemoteProtocolError)

Item = TypeVar("Item")


class Auth(Protocol):
    """A backend's credentials, as headers on each request (a `Transport` asks before every attempt)."""

    async def headers(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        """The headers to send now; `client` is the transport's, for fetching a token."""
        ...

    def invalidate(self) -> bool:
        """After a 401: forget what was sent; True if fresh credentials are worth one more try."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait with its `Retry-After` header."""
    return parse_retry_after(response.headers.get("retry-after"))


def upstream_detail(response: httpx.Response) -> str:
    """The error text the upstream put in its body, whatever the API's error shape."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text[:300].strip()
    if not isinstance(body, dict):
        return str(body)[:300]
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts)
    if detail:
        return str(detail)
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error:
        return str(error)
    if body.get("message"):
        return str(body["message"])
    messages = body.get("messages")
    if isinstance(messages, list):
        return "; ".join(map(str, messages))
    return json.dumps(body)[:300]


def is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


class _LenientEventSource(EventSource):
    """httpx-sse's reader without its Content-Type check: some APIs label SSE as JSON."""

    def _check_content_type(self) -> None:
        return None


async def aiter_sse(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """The response's events: LF, CRLF or CR lines, `field:value` with or without the space."""
    async for event in _LenientEventSource(response).aiter_sse():
        yield event


async def guarded(events: AsyncGenerator[AnswerEvent, None], service: str, name: str) -> AsyncIterator[AnswerEvent]:
    """Yield `events`, turning a failure into a final `Failed` the user can read.

    `BackendError`s were logged where they were raised; a connection that breaks
    mid-answer is logged here. Closing this generator (timeout, shutdown) closes
    `events` at once, and with it the upstream request.
    """
    try:
        async for event in events:
            yield event
    except BackendError as exc:
        yield Failed(exc.message, retryable=exc.retryable)
    except httpx.HTTPError as exc:
        log.warning("%s backend %r: connection failed mid-answer: %s", service, name, type(exc).__name__)
        yield Failed(f"the connection to {service} broke off; please try again", retryable=True)
    finally:
        await events.aclose()


class _Attempts:
    """One request's retry budget: attempts left, the waits between them, the one re-auth."""

    def __init__(self, retry: RetrySettings, deadline: float | None) -> None:
        self.retry = retry
        self.deadline = deadline
        self.made = 1
        self.reauthed = False

    def left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - asyncio.get_running_loop().time()

    def wait(self, asked: float | None) -> float | None:
        """Seconds to wait before the next attempt (`asked`: the server's `Retry-After`), or None
        when there is none: attempts used up, or a wait longer than `max_wait` or the deadline."""
        if self.made >= self.retry.attempts:
            return None
        delay = asked if asked is not None else min(self.retry.backoff * 2 ** (self.made - 1), self.retry.max_wait)
        left = self.left()
        if delay > self.retry.max_wait or (left is not None and delay > left):
            return None
        self.made += 1
        return delay


class Transport:
    """One backend instance's pooled httpx client and the way it makes every request.

    A backend whose API words its errors its own way overrides `refused` and `unreachable`.
    """

    def __init__(self, service: str, name: str, base_url: str, settings: HttpSettings, *,
                 headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
                 auth: Auth | None = None) -> None:
        self.service = service
        self.name = name
        self.settings = settings
        self.retry = settings.retry
        self.auth = auth
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=dict(headers or {}),
            params=dict(params or {}),
            # no pool timeout: with more turns in flight than connections, a turn waits inside
            # its slot for one to come free (the turn's own deadline bounds that wait)
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout, pool=None),
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections),
        )

    async def close(self) -> None:
        await self.client.aclose()

    def error(self, detail: str, *, status: int | None = None, retryable: bool = False,
              message: str | None = None) -> BackendError:
        """Log `detail` for the operator and build the error users see.

        `message` overrides the readable text derived from `status`.
        """
        log.warning("%s backend %r: %s%s", self.service, self.name,
                    f"HTTP {status}: " if status is not None else "", detail)
        if message is None:
            message = self._message(status, detail)
        return BackendError(message, retryable=retryable, status=status)

    def _message(self, status: int | None, detail: str) -> str:
        service = self.service
        if status in (401, 403):
            return f"{service} refused botkit's credentials; the operator needs to check the API key"
        if status == 429:
            return f"{service} is rate limiting requests; please try again in a moment"
        if status is not None and status >= 500:
            return f"{service} is unavailable right now (HTTP {status}); please try again"
        if status is not None:
            return f"{service} refused the request (HTTP {status}): {detail}"
        return f"{service} reported an error: {detail}"

    def refused(self, response: httpx.Response, method: str, path: str) -> BackendError:
        """The error for a failed response that is not retried (its body read)."""
        status, detail = response.status_code, upstream_detail(response)
        return self.error(f"{method} {path}: {detail}", status=status, retryable=status == 429 or status >= 500,
                          message=self._message(status, detail))

    def unreachable(self, exc: httpx.TransportError, method: str, path: str) -> BackendError:
        """The error for a connection that failed on every attempt."""
        return self.error(f"{method} {path}: {type(exc).__name__}", retryable=True,
                          message=f"could not reach {self.service}; please try again later")

    async def _send(self, method: str, path: str, attempts: _Attempts, **kwargs: Any) -> httpx.Response:
        """Send with retries; return the response (body not read yet) once it is a success."""
        extra = dict(kwargs.pop("headers", None) or {})
        while True:
            headers = {**(await self.auth.headers(self.client) if self.auth else {}), **extra}
            left = attempts.left()
            if left is not None:  # no single read outlasts the deadline
                kwargs["timeout"] = httpx.Timeout(min(self.settings.timeout, max(left, 0.001)),
                                                  connect=min(self.settings.connect_timeout, max(left, 0.001)),
                                                  pool=None)
            try:
                response = await self.client.send(self.client.build_request(method, path, headers=headers, **kwargs),
                                                  stream=True)
            except _RETRIED_ERRORS as exc:
                delay = attempts.wait(None)
                if delay is None:
                    raise self.unreachable(exc, method, path) from exc
                why = type(exc).__name__
            else:
                status = response.status_code
                if status < 400:
                    return response
                await response.aread()
                await response.aclose()
                if status == 401 and self.auth is not None and not attempts.reauthed and self.auth.invalidate():
                    attempts.reauthed = True  # fresh credentials, once, at once
                    continue
                delay = attempts.wait(retry_after(response)) if status == 429 or status >= 500 else None
                if delay is None:
                    raise self.refused(response, method, path)
                why = f"HTTP {status}"
            log.info("%s backend %r: %s on %s %s, retry %d/%d in %.2fs", self.service, self.name, why,
                     method, path, attempts.made - 1, self.retry.attempts - 1, delay)
            await sleep(delay)

    async def request(self, method: str, path: str, *, deadline: float | None = None, **kwargs: Any) -> httpx.Response:
        """A whole request/response exchange (body read), retried on 429/5xx.

        `deadline` (the event loop's clock) bounds the retry waits and every read.
        """
        response = await self._send(method, path, _Attempts(self.retry, deadline), **kwargs)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request` and decode the JSON body (None for an empty body, e.g. 204)."""
        response = await self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise self.error(f"{method} {path}: response is not JSON: {response.text[:200]!r}") from exc

    async def items(self, method: str, path: str, read: Callable[[httpx.Response], AsyncGenerator[Item, None]], *,
                    deadline: float | None = None, **kwargs: Any) -> AsyncIterator[Item]:
        """What `read` makes of a streamed response, retried as long as it has made nothing.

        A connection that breaks before `read` gave its first item is retried like one that
        could not connect (nothing was passed on, so asking again repeats nothing); after
        that, the error is the caller's. `deadline` as in `request`.
        """
        attempts = _Attempts(self.retry, deadline)
        while True:
            response = await self._send(method, path, attempts, **kwargs)
            given = False
            try:
                async with aclosing(read(response)) as made:
                    async for item in made:
                        given = True
                        yield item
                return
            except _RETRIED_ERRORS as exc:
                if given:
                    raise
                delay = attempts.wait(None)
                if delay is None:
                    raise self.unreachable(exc, method, path) from exc
                log.info("%s backend %r: %s before any answer on %s %s, retry %d/%d in %.2fs", self.service,
                         self.name, type(exc).__name__, method, path, attempts.made - 1, self.retry.attempts - 1,
                         delay)
            finally:
                await response.aclose()
            await sleep(delay)
