"""The OpenAI chat-completions wire format: messages out, streamed chunks in.

In the core because more than one backend speaks it: the OpenAI-compatible backend and
RAGFlow's `api: openai` mode (the same stream with a few extra fields, kept in
`ChatChunk.delta`); a plugin for another such server uses it too, with `botkit.http`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from botkit.http import Transport, aiter_sse


def chat_messages(system: str | None, history: list[tuple[str, str]],
                  question: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `messages` array: system prompt, earlier exchanges oldest first, then the question
    (its text, or content parts: text and images)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for asked, answered in history:
        messages.append({"role": "user", "content": asked})
        messages.append({"role": "assistant", "content": answered})
    messages.append({"role": "user", "content": question})
    return messages


@dataclass(slots=True)
class ChatChunk:
    """One streamed chunk: answer text, reasoning text, and whatever else the delta held."""

    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    delta: dict[str, Any] = field(default_factory=dict)


async def read_chat_stream(response: httpx.Response, transport: Transport) -> AsyncIterator[ChatChunk]:
    """The chunks of a chat-completions stream, up to `data: [DONE]`.

    An `error` object in the stream, or a stream that stops before `[DONE]` and without
    a `finish_reason`, is an error.
    """
    finished = False
    async for sse in aiter_sse(response):
        data = sse.data.strip()
        if not data:
            continue
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise transport.error(f"unparseable stream chunk {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise transport.error(f"unexpected stream chunk {data[:200]!r}")
        if chunk.get("error") and not chunk.get("choices"):
            error = chunk["error"]
            detail = str(error.get("message") or error) if isinstance(error, dict) else str(error)
            raise transport.error(f"error in stream: {detail}", message=f"{transport.service} failed: {detail}")
        choices = chunk.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        delta = choice.get("delta") or {}
        finished = finished or bool(choice.get("finish_reason"))
        yield ChatChunk(
            content=delta.get("content") or "",
            reasoning=delta.get("reasoning_content") or delta.get("reasoning") or "",
            finish_reason=choice.get("finish_reason"),
            usage=chunk.get("usage") or None,
            delta=delta,
        )
    if not finished:
        raise transport.error("stream ended before [DONE] or a finish_reason", retryable=True,
                              message=f"the answer from {transport.service} was cut off; please try again")
