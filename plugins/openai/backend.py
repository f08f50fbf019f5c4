"""The OpenAI-compatible backend: history as messages, streamed deltas, optional retrieval;
images on a question as content parts and text files inlined (`botkit_plugins.openai.files`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, Protocol, runtime_checkable

import httpx

from botkit.backends import Backend, BackendError, Question, Session
from botkit.chat_completions import ChatChunk, chat_messages, read_chat_stream
from botkit.events import AnswerEvent, Done, Source, Sources, Status, TextDelta, Warning
from botkit.http import Transport, guarded, is_event_stream, upstream_detail
from botkit_plugins.openai import OpenAIConfig
from botkit_plugins.openai.files import question_content

SERVICE = "the OpenAI-compatible server"
_SAMPLING = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "seed")


@runtime_checkable
class Retriever(Protocol):
    """What a backend named in `retrieval.backend` must offer (the local backend does)."""

    async def retrieve(self, query: str, limit: int) -> list[Source]: ...


def sources_prompt(instructions: str, sources: list[Source]) -> str:
    """The system-prompt part that numbers the passages so the model can cite `[N]`."""
    parts = [instructions]
    for source in sources:
        parts.append(f"[{source.index}] {source.title}\n{(source.snippet or '').strip()}")
    return "\n\n".join(parts)


class OpenAIBackend(Backend):
    """One `/chat/completions` endpoint; the thread's history is botkit's, sent each turn."""

    config: OpenAIConfig

    def __init__(self, name: str, config: OpenAIConfig, bot: Any) -> None:
        super().__init__(name, config, bot)
        self.history_turns = config.max_history_turns
        headers: dict[str, str] = {}
        if config.api_key is not None:
            key = config.api_key.get_secret_value()
            if config.api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {key}"
            else:
                headers[config.api_key_header] = key
        self.transport = Transport(SERVICE, name, config.base_url, config, headers=headers, params=config.query)

    async def start(self) -> None:
        if self.config.retrieval is not None:
            self._retriever()

    async def close(self) -> None:
        await self.transport.close()

    async def verify(self) -> str:
        """`GET /models` with the configured key: what OpenAI-compatible servers answer only
        to a key they take; one without that endpoint is only shown to be reachable."""
        try:
            listed = await self.transport.json("GET", "models")
        except BackendError as exc:
            if exc.status == 404:
                return "reachable (it has no /models to check the key with)"
            raise
        models = [m.get("id") for m in (listed or {}).get("data", []) if isinstance(m, dict)]
        if self.config.model in models:
            return f"signed in; it serves model {self.config.model!r}"
        return f"signed in; model {self.config.model!r} is not among the {len(models)} it lists"

    def _retriever(self) -> Retriever:
        name = self.config.retrieval.backend  # type: ignore[union-attr]
        backend = (getattr(self.bot, "backends", None) or {}).get(name)  # a test may give a bare bot
        if not isinstance(backend, Retriever):
            raise BackendError(f"backend {self.name!r}: retrieval.backend {name!r} is not a configured "
                               "backend that can retrieve passages")
        return backend

    def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        return guarded(self._answer(session, question), SERVICE, self.name)

    def _body(self, system: str | None, session: Session, content: str | list[dict[str, Any]]) -> dict[str, Any]:
        config = self.config
        history = session.history[-config.max_history_turns:] if config.max_history_turns else []
        body: dict[str, Any] = {"model": config.model, "messages": chat_messages(system, history, content),
                                "stream": True}
        body.update({key: getattr(config, key) for key in _SAMPLING if getattr(config, key) is not None})
        if config.include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(config.extra_body)
        return body

    async def _chunks(self, response: httpx.Response) -> AsyncGenerator[ChatChunk, None]:
        """The answer's chunks (`Transport.items` retries until the first one)."""
        if not is_event_stream(response):
            await response.aread()
            raise self.transport.error(f"expected an event stream, got {upstream_detail(response)}")
        async for chunk in read_chat_stream(response, self.transport):
            yield chunk

    async def _answer(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        system = self.config.system_prompt
        retrieval = self.config.retrieval
        if retrieval is not None:
            sources = await self._retriever().retrieve(question.text, retrieval.top_k)
            if sources:
                yield Sources(sources)
                system = "\n\n".join(filter(None, [system, sources_prompt(retrieval.instructions, sources)]))
        content: str | list[dict[str, Any]] = question.text
        if question.attachments:
            content = await question_content(question, images=self.config.images,
                                             max_chars=self.config.max_file_chars)
        usage = finish = None
        thinking = False
        body = self._body(system, session, content)
        async with aclosing(self.transport.items("POST", "chat/completions", self._chunks, json=body)) as stream:
            async for chunk in stream:
                if chunk.reasoning and not thinking:
                    thinking = True
                    yield Status("Thinking…")
                if chunk.content:
                    yield TextDelta(chunk.content)
                finish = chunk.finish_reason or finish
                usage = chunk.usage or usage
        if finish == "length":
            yield Warning("truncated", "The answer was cut off at the model's length limit.")
        yield Done(usage)
