"""The LlamaCloud index chat backend: one chat session per thread, agent events as answer events.

The stream's framing is undocumented (event names `delta`/`message` or none, a space
after the colon or not, CRLF or LF), so events are read by the tolerant SSE reader and
dispatched on the JSON `type` alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from botkit.backends import Backend, BackendError, Question, Session
from botkit.events import AnswerEvent, Done, Failed, SessionInfo, Source, Sources, Status, TextDelta, Warning
from botkit_plugins.llamacloud import MAX_PROMPT, LlamaCloudConfig
from botkit.http import Transport, aiter_sse, guarded

SERVICE = "LlamaCloud"
log = logging.getLogger("botkit.backends.llamacloud")


def result_sources(result: Any, first_index: int) -> list[Source]:
    """Retrieval hits in a `tool_result` as sources numbered from `first_index`."""
    if isinstance(result, dict):
        result = result.get("results") or result.get("nodes") or []
    sources = []
    for item in result if isinstance(result, list) else []:
        if not isinstance(item, dict):
            continue
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        title = item.get("file_name") or meta.get("file_name") or item.get("name") or "document"
        metadata = {key: item[key] for key in ("page_range_start", "page_range_end", "index_id") if key in item}
        if "page_range_start" in item:
            metadata["page"] = item["page_range_start"]
        sources.append(Source(index=first_index + len(sources), title=title,
                              snippet=item.get("content") or item.get("text") or None,
                              doc_id=item.get("file_id") or item.get("id") or None,
                              score=item.get("score"), metadata=metadata))
    return sources


def tool_status(event: dict[str, Any]) -> str:
    """Progress text for a tool call, e.g. `Searching for "Q3 main findings"…`."""
    arguments = event.get("arguments") if isinstance(event.get("arguments"), dict) else {}
    query = arguments.get("query")
    if query:
        return f"Searching for “{query}”…"
    return f"Running {event.get('name') or 'a tool'}…"


class LlamaCloudBackend(Backend):
    """Chat over LlamaCloud indexes; LlamaCloud keeps each session's history."""

    config: LlamaCloudConfig

    def __init__(self, name: str, config: LlamaCloudConfig, bot: Any) -> None:
        super().__init__(name, config, bot)
        params = {key: value for key, value in (("project_id", config.project_id),
                                                 ("organization_id", config.organization_id)) if value}
        self.transport = Transport(SERVICE, name, config.base_url, config, params=params,
                                   headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}"})

    async def close(self) -> None:
        await self.transport.close()

    # -- sessions and history -----------------------------------------------------------

    async def create_session(self, session: Session, question: Question) -> str | None:
        bound = list(self.config.index_ids) if self.config.bind_indexes else None
        data = await self.transport.json("POST", "api/v1/chat", json={"index_ids": bound})
        return data["session_id"]

    async def delete_session(self, session_id: str) -> bool:
        try:
            await self.transport.request("DELETE", f"api/v1/chat/{session_id}", headers={"Accept": "*/*"})
        except BackendError as exc:
            if exc.status != 404:  # already gone is what was wanted
                raise
        return True

    async def list_sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while len(found) < limit:
            params: dict[str, Any] = {"page_size": min(limit - len(found), 100)}
            if token:
                params["page_token"] = token
            page = await self.transport.json("GET", "api/v1/chat", params=params)
            found += [self._summary(item) for item in page.get("items", [])]
            token = page.get("next_page_token")
            if not token:
                break
        return found[:limit]

    async def summary(self, session_id: str) -> dict[str, Any]:
        return self._summary(await self.transport.json("GET", f"api/v1/chat/{session_id}/summary"))

    @staticmethod
    def _summary(item: dict[str, Any]) -> dict[str, Any]:
        job = item.get("job_metadata") or {}
        return {"session_id": item["session_id"], "title": item.get("generated_title"),
                "updated_at": item.get("last_updated_at"), "turns": job.get("turns", 0),
                "index_ids": item.get("index_ids"), "usage": {key: job.get(key) for key in (
                    "total_input_tokens", "total_output_tokens")} if job else None}

    async def list_turns(self, session_id: str) -> list[dict[str, Any]]:
        detail = await self.transport.json("GET", f"api/v1/chat/{session_id}")
        turns: list[dict[str, Any]] = []
        for event in detail.get("events", []):
            kind = event.get("type")
            if kind == "user_input":
                turns.append({"question": event.get("content", ""), "answer": "", "sources": [], "usage": None})
            elif not turns:
                continue
            elif kind == "text":
                turns[-1]["answer"] += event.get("content", "")
            elif kind == "tool_result":
                turns[-1]["sources"] += result_sources(event.get("result"), len(turns[-1]["sources"]) + 1)
            elif kind == "stop":
                turns[-1]["usage"] = event.get("usage")
        return turns

    # -- answering ----------------------------------------------------------------------

    def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        return guarded(self._answer(session, question), SERVICE, self.name)

    async def _answer(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        prompt = question.text
        if len(prompt) > MAX_PROMPT:
            if self.config.long_prompts == "refuse":
                yield Failed(f"your question is {len(prompt)} characters long and {SERVICE} accepts at most "
                             f"{MAX_PROMPT}; please ask a shorter question")
                return
            prompt = prompt[:MAX_PROMPT]
            yield Warning("prompt_truncated", f"Your question was cut to its first {MAX_PROMPT} characters, "
                                              f"the most {SERVICE} accepts; this answer is to that part only.")
        session_id = session.session_id
        if session_id is None:
            session_id = await self.create_session(session, question)
            yield SessionInfo(session_id)
        body = {"index_ids": list(self.config.index_ids), "prompt": prompt,
                "require_all_indexes": self.config.require_all_indexes}
        started = False
        try:
            async with aclosing(self._turn(session_id, body)) as turn:
                async for event in turn:
                    started = True
                    yield event
        except BackendError as exc:
            if started or exc.status != 404 or session.session_id is None:
                raise
            # the session was deleted upstream (or expired): carry on in a new one
            session_id = await self.create_session(session, question)
            yield SessionInfo(session_id)
            async with aclosing(self._turn(session_id, body)) as turn:
                async for event in turn:
                    yield event

    async def _turn(self, session_id: str, body: dict[str, Any]) -> AsyncIterator[AnswerEvent]:
        path = f"api/v1/chat/{session_id}/messages/stream"
        sources: list[Source] = []
        streamed = thinking = False
        stop: dict[str, Any] | None = None
        async with aclosing(self.transport.items("POST", path, aiter_sse, json=body)) as stream:
            async for sse in stream:
                try:
                    event = json.loads(sse.data) if sse.data.strip() else None
                except ValueError:
                    event = None
                if not isinstance(event, dict):
                    log.debug("llamacloud %r: skipped stream event %r", self.name, sse.data[:100])
                    continue
                kind = event.get("type")
                if kind in ("thinking_delta", "thinking") and not thinking:
                    thinking = True
                    yield Status("Thinking…")
                elif kind == "tool_call":
                    yield Status(tool_status(event))
                elif kind == "tool_result":
                    found = result_sources(event.get("result"), len(sources) + 1)
                    sources += found
                    names = sorted({s.title for s in found})
                    if names:
                        yield Status(f"Reading {', '.join(names[:3])}…")
                elif kind == "text_delta" and event.get("content"):
                    streamed = True
                    yield TextDelta(event["content"])
                elif kind == "text" and not streamed and event.get("content"):
                    streamed = True  # a server that sends no deltas
                    yield TextDelta(event["content"])
                elif kind == "stop":
                    stop = event
                    break
        if stop is None:
            raise self.transport.error(f"POST {path}: stream ended without a stop event", retryable=True,
                                       message=f"the answer from {SERVICE} was cut off; please try again")
        skipped = stop.get("skipped_index_ids") or []
        if skipped:
            log.warning("llamacloud %r: indexes skipped this turn: %s", self.name, ", ".join(skipped))
            yield Warning("indexes_skipped", f"Some indexes could not be searched for this answer: "
                                             f"{', '.join(skipped)}.")
        if sources:
            yield Sources(sources)
        if stop.get("is_error"):
            error = stop.get("error") or "unknown error"
            raise self.transport.error(f"POST {path}: stop with is_error: {error}",
                                       message=f"{SERVICE} could not answer: {error}")
        yield Done(stop.get("usage"))
