"""The Vectara chat backend: a thread is a Vectara chat, each message a turn.

The first turn of a thread posts to `/v2/chats`, later ones to `/v2/chats/{chat_id}/turns`
(a chat deleted upstream is replaced by a new one). One pooled `httpx.AsyncClient` per
backend instance; answers stream over SSE (specs/backends.md §1). Retries of 429, 5xx
and lost connections happen only before anything of the answer was passed on, so a
user never sees text twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import EventSource

from botkit import __version__
from botkit.backends import Backend, BackendError, Question, Session
from botkit.events import AnswerEvent, Done, Failed
from botkit.http import parse_retry_after

from .auth import ApiKeyAuth, Auth, OAuth2Auth
from .config import MAX_QUERY_CHARS, VectaraConfig
from .wire import Mapper, TurnState, error_text

log = logging.getLogger("botkit.backends.vectara")

UNREACHABLE = "the knowledge base is not reachable right now"
#: Vectara's default `generation.max_used_search_results`: markers only count these
DEFAULT_USED_RESULTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Status(Exception):
    """A non-success HTTP response, before any of its body was used."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.status = response.status_code
        self.headers = response.headers
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = None


class VectaraBackend(Backend):
    """Vectara chat API v2, streamed, with citations and factual-consistency scores."""

    config: VectaraConfig

    def __init__(self, name: str, config: VectaraConfig, bot: Any) -> None:
        super().__init__(name, config, bot)
        self._client: httpx.AsyncClient | None = None
        self._auth: Auth = (ApiKeyAuth(config.api_key) if config.api_key is not None
                            else OAuth2Auth(config.token_url, config.client_id or "", config.client_secret))
        used = (config.generation and config.generation.max_used_search_results) or DEFAULT_USED_RESULTS
        self._mapper = Mapper(config.source_keys, used)
        self._options = config.request_options()
        timeout = config.request_timeout
        self._timeout_headers = {"Request-Timeout": str(math.ceil(timeout)),
                                 "Request-Timeout-Millis": str(round(timeout * 1000))}
        #: how retry waits are slept; tests swap it to observe them
        self.sleep = asyncio.sleep

    def __repr__(self) -> str:
        return f"VectaraBackend(name={self.name!r}, base_url={self.config.base_url!r}, auth={self._auth!r})"

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.config.base_url,
            # bounds each read; a whole turn is also held to request_timeout (see _Retry.deadline)
            timeout=httpx.Timeout(self.config.request_timeout, connect=min(10.0, self.config.request_timeout),
                                  pool=None),  # a turn waits for a connection (see botkit.http.Transport)
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60.0),
            headers={"User-Agent": f"botkit/{__version__}"},
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        """The pooled client (a method, not a property: the core registers backends with pluggy,
        which reads every attribute)."""
        if self._client is None:
            raise BackendError(f"backend {self.name!r} is not started")
        return self._client

    # -- answering -----------------------------------------------------------------------

    async def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        if len(question.text) > MAX_QUERY_CHARS:
            yield Failed(f"the question is too long ({len(question.text)} characters; "
                         f"the knowledge base takes at most {MAX_QUERY_CHARS})")
            return
        if not question.text.strip():
            yield Failed("the question is empty")
            return
        try:
            async with aclosing(self._answer(session.session_id, question.text)) as events:
                async for event in events:
                    yield event
        except BackendError as exc:
            yield Failed(exc.message, exc.retryable)

    async def _answer(self, chat_id: str | None, query: str) -> AsyncIterator[AnswerEvent]:
        body = {"query": query, **self._options, "stream_response": self.config.stream}
        retry = _Retry(self)
        state = TurnState()
        while True:
            path = f"/v2/chats/{quote(chat_id, safe='')}/turns" if chat_id else "/v2/chats"
            yielded = False
            try:
                async with aclosing(self._exchange(path, body, state, retry.deadline)) as events:
                    async for event in events:
                        yielded = True
                        yield event
            except _Status as exc:
                if exc.status == 404 and chat_id:
                    log.info("vectara backend %r: chat %s no longer exists upstream; starting a new chat",
                             self.name, chat_id)
                    chat_id = None
                    continue
                await retry.after_status(exc, path)
                continue
            except httpx.TimeoutException:
                log.warning("vectara backend %r: timed out on %s", self.name, path)
                raise BackendError("the knowledge base took too long to answer", retryable=True) from None
            except httpx.TransportError as exc:
                if yielded:  # part of the answer was passed on: asking again would repeat it
                    log.warning("vectara backend %r: connection lost on %s (%s)", self.name, path, type(exc).__name__)
                    raise BackendError("the connection to the knowledge base was lost", retryable=True) from None
                await retry.after_transport(exc, path)
                continue
            break
        if state.error is not None:
            log.warning("vectara backend %r: error event in the answer stream: %s", self.name, state.error)
            yield Failed(f"the knowledge base reported an error: {state.error}")
            return
        if not state.ended:  # the stream stopped without its `end` event: not a complete answer
            log.warning("vectara backend %r: the answer stream on %s ended without its end event", self.name, path)
            yield Failed("the answer from the knowledge base was cut off; please try again", retryable=True)
            return
        yield Done(state.usage() or None)

    async def _exchange(self, path: str, body: dict[str, Any], state: TurnState,
                        deadline: float) -> AsyncIterator[AnswerEvent]:
        """One POST; its events until `end`, `error` or EOF. Raises `_Status` for an error response."""
        headers = {**await self._headers(), **self._timeout_headers}
        if self.config.stream:
            headers["Accept"] = "text/event-stream"
        async with self._http().stream("POST", path, json=body, headers=headers) as response:
            if response.status_code >= 300:
                await response.aread()
                raise _Status(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                await response.aread()
                for event in self._read("response", self._mapper.response(_json(response), state)):
                    yield event
                return
            loop = asyncio.get_running_loop()
            async for sse in EventSource(response).aiter_sse():
                try:
                    payload = json.loads(sse.data) if sse.data else None
                except ValueError:
                    payload = None
                if not isinstance(payload, dict):
                    log.debug("vectara backend %r: skipping a non-JSON event %r", self.name, sse.event)
                    continue
                for event in self._read(str(payload.get("type")), self._mapper.event(payload, state)):
                    yield event
                if state.ended or state.error is not None:
                    return
                if loop.time() > deadline:
                    log.warning("vectara backend %r: answer not finished within request_timeout", self.name)
                    raise BackendError("the knowledge base took too long to answer", retryable=True)

    def _read(self, kind: str, events: Iterator[AnswerEvent]) -> list[AnswerEvent]:
        """`events` of one payload, or a readable failure when a field has another type than
        the API's (a TypeError deep in the mapper would end the turn with no notice)."""
        try:
            return list(events)
        except (TypeError, AttributeError, ValueError) as exc:
            log.warning("vectara backend %r: unreadable %r payload (%s: %s)", self.name, kind[:40],
                        type(exc).__name__, exc)
            raise BackendError("the knowledge base sent an answer botkit cannot read") from None

    async def _headers(self) -> dict[str, str]:
        try:
            return await self._auth.headers(self._http())
        except BackendError as exc:
            if exc.status is not None and exc.status < 500:
                log.error("vectara backend %r: %s; check backends.%s.client_id/client_secret",
                          self.name, exc.message, self.name)
                raise BackendError(UNREACHABLE, status=exc.status) from None
            raise

    # -- errors ----------------------------------------------------------------------------

    def _error(self, exc: _Status, path: str) -> BackendError:
        """The readable, secret-free error for a response that is not retried; logs for the operator."""
        detail = error_text(exc.body) or "no details"
        if exc.status in (401, 403):
            what = "the credentials were rejected" if exc.status == 401 else "permission denied"
            log.error("vectara backend %r: %s (HTTP %d on %s: %s); check backends.%s credentials and "
                      "their access to the corpora", self.name, what, exc.status, path, detail, self.name)
            return BackendError(UNREACHABLE, status=exc.status)
        if exc.status == 400:
            log.error("vectara backend %r: request rejected (HTTP 400 on %s): %s", self.name, path, detail)
            return BackendError(f"the knowledge base rejected the request: {detail}", status=400)
        if exc.status == 404:
            log.error("vectara backend %r: not found (HTTP 404 on %s): %s", self.name, path, detail)
            return BackendError(f"the knowledge base could not find what was asked for: {detail}", status=404)
        if exc.status in RETRY_STATUSES:
            log.warning("vectara backend %r: HTTP %d on %s, giving up: %s", self.name, exc.status, path, detail)
            busy = "the knowledge base is busy" if exc.status == 429 else UNREACHABLE
            return BackendError(f"{busy}, please try again shortly", retryable=True, status=exc.status)
        log.error("vectara backend %r: HTTP %d on %s: %s", self.name, exc.status, path, detail)
        return BackendError(f"the knowledge base failed (HTTP {exc.status})", status=exc.status)

    # -- history and administration ----------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A non-streamed request with the same auth refresh, retries and errors as a turn."""
        retry = _Retry(self)
        while True:
            headers = {**await self._headers(), **self._timeout_headers}
            try:
                response = await self._http().request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                await retry.after_transport(exc, path)
                continue
            if response.status_code < 300:
                return response
            await retry.after_status(_Status(response), path)

    async def list_sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Chats as Vectara lists them, following `page_key` until `limit` are collected."""
        chats: list[dict[str, Any]] = []
        page_key: str | None = None
        while len(chats) < limit:
            params: dict[str, Any] = {"limit": min(limit - len(chats), 1000)}
            if page_key:
                params["page_key"] = page_key
            data = _json(await self._call("GET", "/v2/chats", params=params))
            chats.extend(data.get("chats") or [])
            page_key = (data.get("metadata") or {}).get("page_key")
            if not page_key or not data.get("chats"):
                break
        return chats[:limit]

    async def get_chat(self, chat_id: str) -> dict[str, Any]:
        return _json(await self._call("GET", f"/v2/chats/{quote(chat_id, safe='')}"))

    async def list_turns(self, session_id: str) -> list[dict[str, Any]]:
        data = _json(await self._call("GET", f"/v2/chats/{quote(session_id, safe='')}/turns"))
        return list(data.get("turns") or [])

    async def end_session(self, session_id: str) -> None:
        """On a thread reset: delete the chat upstream only if `delete_on_reset` is configured."""
        if self.config.delete_on_reset:
            await self.delete_chat(session_id)

    async def delete_session(self, session_id: str) -> bool:
        return await self.delete_chat(session_id)

    async def delete_chat(self, chat_id: str) -> bool:
        """Delete the chat upstream; one that is already gone counts as deleted."""
        try:
            await self._call("DELETE", f"/v2/chats/{quote(chat_id, safe='')}")
        except BackendError as exc:
            if exc.status != 404:
                raise
        return True

    async def disable_turn(self, chat_id: str, turn_id: str) -> dict[str, Any]:
        """Disable a turn (and, upstream, every later one) so it no longer shapes answers."""
        path = f"/v2/chats/{quote(chat_id, safe='')}/turns/{quote(turn_id, safe='')}"
        return _json(await self._call("PATCH", path, json={"enabled": False}))


class _Retry:
    """The retry budget of one request: bounded attempts, backoff with jitter, one re-auth, a deadline."""

    def __init__(self, backend: VectaraBackend) -> None:
        self.backend = backend
        self.config = backend.config
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + self.config.request_timeout
        self.attempt = 0
        self.reauthed = False

    def backoff(self) -> float:
        step = self.config.retry_backoff * 2 ** (self.attempt - 1)
        return min(self.config.max_retry_wait, step + random.uniform(0, step))

    async def after_status(self, exc: _Status, path: str) -> None:
        """Return when the request may be sent again; raise the readable error when it may not."""
        if exc.status == 401 and not self.reauthed and self.backend._auth.invalidate():
            self.reauthed = True
            return
        if exc.status not in RETRY_STATUSES or self.attempt >= self.config.max_retries:
            raise self.backend._error(exc, path)
        self.attempt += 1
        wait = parse_retry_after(exc.headers.get("retry-after"))
        if wait is None:
            wait = self.backoff()
        if wait > self.config.max_retry_wait or wait > self.deadline - self.loop.time():
            raise self.backend._error(exc, path)
        await self._sleep(wait, f"HTTP {exc.status}", path)

    async def after_transport(self, exc: httpx.TransportError, path: str) -> None:
        if self.attempt >= self.config.max_retries:
            log.warning("vectara backend %r: %s on %s, giving up", self.backend.name, type(exc).__name__, path)
            raise BackendError(UNREACHABLE, retryable=True) from None
        self.attempt += 1
        await self._sleep(self.backoff(), type(exc).__name__, path)

    async def _sleep(self, wait: float, why: str, path: str) -> None:
        log.warning("vectara backend %r: %s on %s; retry %d/%d in %.1fs", self.backend.name, why, path,
                    self.attempt, self.config.max_retries, wait)
        await self.backend.sleep(wait)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise BackendError("the knowledge base sent a response that is not JSON") from None
    if not isinstance(data, dict):
        raise BackendError("the knowledge base sent an unexpected response")
    return data
