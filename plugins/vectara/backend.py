"""The Vectara chat backend: a thread is a Vectara chat, each message a turn.

The first turn of a thread posts to `/v2/chats`, later ones to `/v2/chats/{chat_id}/turns`
(a chat deleted upstream is replaced by a new one). Requests go through a
`botkit.http.Transport`, with every HTTP backend's pooling, retries and config keys and
Vectara's credentials as its `Auth`; answers stream over SSE (docs/specs/backends.md §1).
Retries of 429, 5xx and lost connections happen only before anything of the answer was
passed on, so a user never sees text twice, and never past `request_timeout`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from botkit import __version__
from botkit.backends import Backend, BackendError, Question, Session
from botkit.events import AnswerEvent, Done, Failed
from botkit.http import Transport, aiter_sse, is_event_stream

from .auth import UNREACHABLE, ApiKeyAuth, Auth, OAuth2Auth
from .config import MAX_QUERY_CHARS, VectaraConfig
from .wire import Mapper, TurnState, error_text

__all__ = ["UNREACHABLE", "VectaraBackend"]

log = logging.getLogger("botkit.backends.vectara")

SERVICE = "Vectara"
#: Vectara's default `generation.max_used_search_results`: markers only count these
DEFAULT_USED_RESULTS = 5
TOO_LONG = "the knowledge base took too long to answer"


class VectaraTransport(Transport):
    """The shared transport with Vectara's wording: what a user may read, what the operator needs."""

    def refused(self, response: httpx.Response, method: str, path: str) -> BackendError:
        status = response.status_code
        if status == 404 and method == "POST" and path.endswith("/turns"):
            # the chat is gone upstream: the backend starts a new one, nothing to tell anyone
            return BackendError("the chat no longer exists upstream", status=404)
        try:
            detail = error_text(response.json()) or "no details"
        except ValueError:
            detail = "no details"
        name = self.name
        if status in (401, 403):
            what = "the credentials were rejected" if status == 401 else "permission denied"
            log.error("vectara backend %r: %s (HTTP %d on %s: %s); check backends.%s credentials and "
                      "their access to the corpora", name, what, status, path, detail, name)
            return BackendError(UNREACHABLE, status=status)
        if status == 400:
            log.error("vectara backend %r: request rejected (HTTP 400 on %s): %s", name, path, detail)
            return BackendError(f"the knowledge base rejected the request: {detail}", status=400)
        if status == 404:
            log.error("vectara backend %r: not found (HTTP 404 on %s): %s", name, path, detail)
            return BackendError(f"the knowledge base could not find what was asked for: {detail}", status=404)
        if status == 429 or status >= 500:
            log.warning("vectara backend %r: HTTP %d on %s, giving up: %s", name, status, path, detail)
            busy = "the knowledge base is busy" if status == 429 else UNREACHABLE
            return BackendError(f"{busy}, please try again shortly", retryable=True, status=status)
        log.error("vectara backend %r: HTTP %d on %s: %s", name, status, path, detail)
        return BackendError(f"the knowledge base failed (HTTP {status})", status=status)

    def unreachable(self, exc: httpx.TransportError, method: str, path: str) -> BackendError:
        log.warning("vectara backend %r: %s on %s, giving up", self.name, type(exc).__name__, path)
        return BackendError(UNREACHABLE, retryable=True)


class VectaraBackend(Backend):
    """Vectara chat API v2, streamed, with citations and factual-consistency scores."""

    config: VectaraConfig

    def __init__(self, name: str, config: VectaraConfig, bot: Any) -> None:
        super().__init__(name, config, bot)
        for written, instead in config.deprecated():
            log.warning("vectara backend %r: `%s` is deprecated; write `%s` (the same keys as every HTTP "
                        "backend's)", name, written, instead)
        self._auth: Auth = (ApiKeyAuth(config.api_key) if config.api_key is not None
                            else OAuth2Auth(config.token_url, config.client_id or "", config.client_secret,
                                            backend=name))
        used = (config.generation and config.generation.max_used_search_results) or DEFAULT_USED_RESULTS
        self._mapper = Mapper(config.source_keys, used)
        self._options = config.request_options()
        timeout = config.request_timeout
        self._timeout_headers = {"Request-Timeout": str(math.ceil(timeout)),
                                 "Request-Timeout-Millis": str(round(timeout * 1000))}
        self._transport = VectaraTransport(SERVICE, name, config.base_url, config, auth=self._auth,
                                           headers={"User-Agent": f"botkit/{__version__}"})

    def __repr__(self) -> str:
        return f"VectaraBackend(name={self.name!r}, base_url={self.config.base_url!r}, auth={self._auth!r})"

    async def close(self) -> None:
        await self._transport.close()

    def _deadline(self) -> float:
        """When a turn or a call started now must be over, retries included (`request_timeout`)."""
        return asyncio.get_running_loop().time() + self.config.request_timeout

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

    async def _answer(self, chat_id: str | None, query: str) -> AsyncGenerator[AnswerEvent, None]:
        body = {"query": query, **self._options, "stream_response": self.config.stream}
        headers = dict(self._timeout_headers)
        if self.config.stream:
            headers["Accept"] = "text/event-stream"
        deadline = self._deadline()
        state = TurnState()
        while True:
            path = f"/v2/chats/{quote(chat_id, safe='')}/turns" if chat_id else "/v2/chats"
            read = partial(self._events, state=state, deadline=deadline)
            try:
                async with aclosing(self._transport.items("POST", path, read, deadline=deadline, json=body,
                                                          headers=headers)) as events:
                    async for event in events:
                        yield event
            except BackendError as exc:
                if exc.status == 404 and chat_id:
                    log.info("vectara backend %r: chat %s no longer exists upstream; starting a new chat",
                             self.name, chat_id)
                    chat_id = None
                    continue
                raise
            except httpx.TimeoutException:
                log.warning("vectara backend %r: timed out on %s", self.name, path)
                raise BackendError(TOO_LONG, retryable=True) from None
            except httpx.TransportError as exc:  # part of the answer was passed on: asking again would repeat it
                log.warning("vectara backend %r: connection lost on %s (%s)", self.name, path, type(exc).__name__)
                raise BackendError("the connection to the knowledge base was lost", retryable=True) from None
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

    async def _events(self, response: httpx.Response, *, state: TurnState,
                      deadline: float) -> AsyncGenerator[AnswerEvent, None]:
        """The answer events of one response: an SSE stream until `end`, `error` or EOF, or a JSON
        `ChatFullResponse` (non-streaming mode)."""
        if not is_event_stream(response):
            await response.aread()
            for event in self._read("response", self._mapper.response(_json(response), state)):
                yield event
            return
        loop = asyncio.get_running_loop()
        async for sse in aiter_sse(response):
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
                raise BackendError(TOO_LONG, retryable=True)

    def _read(self, kind: str, events: Iterator[AnswerEvent]) -> list[AnswerEvent]:
        """`events` of one payload, or a readable failure when a field has another type than
        the API's (a TypeError deep in the mapper would end the turn with no notice)."""
        try:
            return list(events)
        except (TypeError, AttributeError, ValueError) as exc:
            log.warning("vectara backend %r: unreadable %r payload (%s: %s)", self.name, kind[:40],
                        type(exc).__name__, exc)
            raise BackendError("the knowledge base sent an answer botkit cannot read") from None

    # -- history and administration ----------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A non-streamed request with the same auth, retries, deadline and errors as a turn."""
        try:
            return await self._transport.request(method, path, headers=self._timeout_headers,
                                                 deadline=self._deadline(), **kwargs)
        except httpx.TimeoutException:
            log.warning("vectara backend %r: timed out on %s %s", self.name, method, path)
            raise BackendError(TOO_LONG, retryable=True) from None

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


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise BackendError("the knowledge base sent a response that is not JSON") from None
    if not isinstance(data, dict):
        raise BackendError("the knowledge base sent an unexpected response")
    return data
