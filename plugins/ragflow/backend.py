"""The RAGFlow backend: one RAGFlow session per thread, answers streamed as deltas.

RAGFlow answers every call with HTTP 200 and a `{"code", "message", "data"}` envelope:
a non-zero `code` is an error, and so is `code: 0` with `data: false` (its missing-auth
answer). In a stream `data: true` is the end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from botkit.backends import Backend, BackendError, Question, Session
from botkit.chat_completions import ChatChunk, chat_messages, read_chat_stream
from botkit.events import AnswerEvent, Done, SessionInfo, Sources, Status, TextDelta
from botkit.http import Transport, aiter_sse, guarded, is_event_stream
from botkit_plugins.ragflow import RagflowConfig
from botkit_plugins.ragflow.answer import AnswerFolder, CitationRewriter, chunks_to_sources, rewrite_citations

SERVICE = "RAGFlow"
_AUTH_CODES = {109, 401, 403}


def api_root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/api/v1") else base + "/api/v1"


class RagflowBackend(Backend):
    """A RAGFlow chat assistant (`chat_id`, or created by name at startup)."""

    config: RagflowConfig

    def __init__(self, name: str, config: RagflowConfig, bot: Any) -> None:
        super().__init__(name, config, bot)
        if config.api == "openai":
            self.history_turns = config.max_history_turns
        self.chat_id = config.chat_id
        self.transport = Transport(SERVICE, name, api_root(config.base_url), config,
                                   headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}"})

    # -- the envelope -----------------------------------------------------------------

    def envelope_error(self, envelope: Any, what: str) -> BackendError:
        if not isinstance(envelope, dict):
            return self.transport.error(f"{what}: unexpected answer {str(envelope)[:200]!r}")
        code, message = envelope.get("code"), envelope.get("message")
        data = envelope.get("data")
        if not message and isinstance(data, dict):
            message = data.get("answer")
        detail = f"{what}: code {code}: {message}"
        if code in _AUTH_CODES or (code == 0 and data is False):
            return self.transport.error(detail, message=f"{SERVICE} refused botkit's credentials; "
                                                        "the operator needs to check the API key")
        if isinstance(code, int) and code >= 500 or code == 100:
            return self.transport.error(detail, message=f"{SERVICE} failed to answer: {message}", retryable=True)
        return self.transport.error(detail, message=f"{SERVICE} refused the request: {message}")

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A JSON call; returns the envelope's `data` or raises its error."""
        envelope = await self.transport.json(method, path, **kwargs)
        if not isinstance(envelope, dict) or envelope.get("code") != 0 or envelope.get("data") is False:
            raise self.envelope_error(envelope, f"{method} {path}")
        return envelope.get("data")

    async def _json_instead_of_stream(self, response: httpx.Response) -> BackendError:
        """Pre-stream errors come as a JSON envelope with HTTP 200, even for `stream: true`."""
        await response.aread()
        try:
            envelope = response.json()
        except ValueError:
            envelope = response.text
        return self.envelope_error(envelope, f"{response.request.method} {response.request.url.path}")

    async def _events(self, response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
        """A native answer's events (`Transport.items` retries until the first one)."""
        if not is_event_stream(response):
            raise await self._json_instead_of_stream(response)
        async for sse in aiter_sse(response):
            yield sse

    async def _chat_chunks(self, response: httpx.Response) -> AsyncGenerator[ChatChunk, None]:
        """An `api: openai` answer's chunks (`Transport.items` retries until the first one)."""
        if not is_event_stream(response):
            raise await self._json_instead_of_stream(response)
        async for chunk in read_chat_stream(response, self.transport):
            yield chunk

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        spec = self.config.create_chat
        if spec is None:
            return
        envelope = await self.transport.json("GET", "chats", params={"name": spec.name, "page_size": 1})
        found = envelope.get("data") if isinstance(envelope, dict) else None
        if isinstance(envelope, dict) and envelope.get("code") == 0 and isinstance(found, list) and found:
            self.chat_id = found[0]["id"]
            return
        # RAGFlow answers a name it does not know with code 102 (DATA_ERROR)
        if not (isinstance(envelope, dict) and (envelope.get("code") == 102 or found == [])):
            raise self.envelope_error(envelope, "GET chats")
        body: dict[str, Any] = {"name": spec.name, "dataset_ids": spec.dataset_ids}
        body.update({key: value for key, value in (("llm", spec.llm), ("prompt", spec.prompt)) if value})
        created = await self.call("POST", "chats", json=body)
        self.chat_id = created["id"]

    async def close(self) -> None:
        await self.transport.close()

    # -- sessions ---------------------------------------------------------------------

    async def create_session(self, session: Session, question: Question) -> str | None:
        if self.config.api == "openai":
            return None
        data = await self.call("POST", f"chats/{self.chat_id}/sessions",
                               json={"name": str(session.thread)[:255], "user_id": question.user})
        return data["id"]

    async def end_session(self, session_id: str) -> None:
        if self.config.delete_on_reset:
            await self.delete_session(session_id)

    async def delete_session(self, session_id: str) -> bool:
        if self.config.api == "openai":  # threads there are message histories kept by botkit
            return False
        await self.call("DELETE", f"chats/{self.chat_id}/sessions", json={"ids": [session_id]})
        return True

    async def list_sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        data = await self.call("GET", f"chats/{self.chat_id}/sessions",
                               params={"page": 1, "page_size": limit, "orderby": "update_time", "desc": "true"})
        return [{"session_id": s["id"], "title": s.get("name"), "user": s.get("user_id") or None,
                 "updated_at": s.get("update_date"),
                 "turns": sum(1 for m in s.get("messages", []) if m.get("role") == "user")} for s in data or []]

    async def list_turns(self, session_id: str) -> list[dict[str, Any]]:
        data = await self.call("GET", f"chats/{self.chat_id}/sessions", params={"id": session_id})
        if not data:
            raise BackendError(f"{SERVICE} has no session {session_id}")
        turns: list[dict[str, Any]] = []
        for message in data[0].get("messages", []):
            if message.get("role") == "user":
                turns.append({"question": message.get("content", ""), "answer": "", "sources": []})
            elif turns and message.get("role") == "assistant":
                turns[-1]["answer"] = rewrite_citations(str(message.get("content") or ""))
                turns[-1]["sources"] = chunks_to_sources(message.get("reference") or [])
        return turns

    # -- answering --------------------------------------------------------------------

    def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        answer = self._openai if self.config.api == "openai" else self._native
        return guarded(answer(session, question), SERVICE, self.name)

    async def _native(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        session_id = session.session_id
        if session_id is None:
            session_id = await self.create_session(session, question)
            assert session_id is not None
            yield SessionInfo(session_id)
        path = f"chats/{self.chat_id}/completions"
        body = {"question": question.text, "stream": True, "session_id": session_id, "user_id": question.user}
        folder = AnswerFolder()
        async with aclosing(self.transport.items("POST", path, self._events, json=body)) as stream:
            async for sse in stream:
                raw = sse.data.strip()
                if not raw:
                    continue
                try:
                    envelope = json.loads(raw)
                except ValueError as exc:
                    raise self.transport.error(f"unparseable stream event {raw[:200]!r}") from exc
                data = envelope.get("data") if isinstance(envelope, dict) else None
                if not isinstance(envelope, dict) or envelope.get("code") != 0 or data is False:
                    raise self.envelope_error(envelope, f"POST {path}")
                if data is True:
                    break
                if isinstance(data, dict):
                    was_thinking = folder.thinking
                    text = folder.feed(data)
                    if folder.thinking and not was_thinking:
                        yield Status("Thinking…")
                    if text:
                        yield TextDelta(text)
            else:
                raise self.transport.error(f"POST {path}: stream ended without its end marker", retryable=True,
                                           message=f"the answer from {SERVICE} was cut off; please try again")
        tail = folder.flush()
        if tail:
            yield TextDelta(tail)
        if folder.chunks:
            yield Sources(folder.sources)
        yield Done()

    async def _openai(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        path = f"chats_openai/{self.chat_id}/chat/completions"
        history = session.history[-self.config.max_history_turns:] if self.config.max_history_turns else []
        body = {"model": self.config.model, "messages": chat_messages(None, history, question.text),
                "stream": True, "reference": True}
        citations = CitationRewriter()
        chunks: list[dict[str, Any]] = []
        usage = None
        thinking = False
        async with aclosing(self.transport.items("POST", path, self._chat_chunks, json=body)) as stream:
            async for chunk in stream:
                if chunk.content.startswith("**ERROR**"):
                    detail = chunk.content.removeprefix("**ERROR**:").strip()
                    raise self.transport.error(f"POST {path}: {detail}", retryable=True,
                                               message=f"{SERVICE} failed to answer: {detail}")
                if chunk.reasoning and not thinking:
                    thinking = True
                    yield Status("Thinking…")
                text = citations.feed(chunk.content)
                if text:
                    yield TextDelta(text)
                if isinstance(chunk.delta.get("reference"), list):
                    chunks = chunk.delta["reference"]
                usage = chunk.usage or usage
        tail = citations.flush()
        if tail:
            yield TextDelta(tail)
        if chunks:
            yield Sources(chunks_to_sources(chunks))
        yield Done(usage)

