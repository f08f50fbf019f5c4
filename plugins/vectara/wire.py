"""Vectara's chat wire format in botkit's vocabulary: streamed and JSON responses to answer events.

Parsing is by the JSON `type` (never by the SSE event name), unknown types are
skipped, and the order of events after `chat_info` is not relied on
(docs/specs/backends.md §1.5). Error bodies (§1.8) become readable text here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botkit.events import AnswerEvent, Score, SessionInfo, Source, Sources, TextDelta, Warning

from .config import SourceKeys

#: Vectara's documented `warnings[]` values and what they mean to a reader.
WARNING_TEXT = {
    "exceeded_max_input_length_fcs": "The answer was too long to check its factual consistency.",
    "intelligent_query_rewriting_failed": "The question could not be rewritten; it was searched as asked.",
    "fcs_language_not_supported": "Factual consistency cannot be scored in this language.",
}


@dataclass(slots=True)
class TurnState:
    """What one answer has produced so far, across retries and event order."""

    chat_id: str | None = None
    turn_id: str | None = None
    text_chars: int = 0
    rephrased_query: str | None = None
    error: str | None = None
    ended: bool = False

    def usage(self) -> dict[str, Any]:
        """What goes into `Done.usage`: the turn id and the rephrased query when known."""
        out: dict[str, Any] = {}
        if self.turn_id:
            out["turn_id"] = self.turn_id
        if self.rephrased_query:
            out["rephrased_query"] = self.rephrased_query
        return out


class Mapper:
    """Turns Vectara payloads into answer events, updating a `TurnState`."""

    def __init__(self, source_keys: SourceKeys, max_sources: int) -> None:
        self.keys = source_keys
        self.max_sources = max_sources

    def sources(self, results: list[dict[str, Any]]) -> Sources:
        """Results numbered as the answer's `[N]` markers count them (only those given to the LLM)."""
        out = []
        for index, result in enumerate(results[: self.max_sources], start=1):
            doc_meta = result.get("document_metadata") or {}
            part_meta = result.get("part_metadata") or {}
            doc_id = _text(result, "document_id") or None
            title = _first(self.keys.title, doc_meta, part_meta) or doc_id or f"Source {index}"
            out.append(Source(
                index=index,
                title=str(title),
                url=_first(self.keys.url, doc_meta, part_meta),
                snippet=_text(result, "text") or None,
                doc_id=doc_id,
                score=result.get("score"),
                metadata={"document": doc_meta, "part": part_meta, "corpus_key": result.get("corpus_key")},
            ))
        return Sources(out)

    def event(self, payload: dict[str, Any], state: TurnState) -> Iterator[AnswerEvent]:
        """The events of one streamed payload; `error` and `end` only change `state`."""
        kind = payload.get("type")
        if kind == "generation_chunk":
            chunk = _text(payload, "generation_chunk")
            if chunk:
                state.text_chars += len(chunk)
                yield TextDelta(chunk)
        elif kind == "search_results":
            yield self.sources(payload.get("search_results") or [])
        elif kind == "chat_info":
            yield from self._chat_info(payload, state)
        elif kind == "factual_consistency_score":
            score = payload.get("factual_consistency_score")
            if isinstance(score, (int, float)):
                yield Score(float(score))
        elif kind == "generation_info":
            state.rephrased_query = _text(payload, "rephrased_query") or state.rephrased_query
        elif kind == "error":
            state.error = "; ".join(payload.get("messages") or []) or "unknown error"
        elif kind == "end":
            state.ended = True
        yield from warnings(payload.get("warnings"))

    def response(self, body: dict[str, Any], state: TurnState) -> Iterator[AnswerEvent]:
        """The events of a non-streamed `ChatFullResponse`, in the order a stream would give them."""
        if body.get("search_results"):
            yield self.sources(body["search_results"])
        yield from self._chat_info(body, state)
        answer = _text(body, "answer")
        if answer:
            state.text_chars += len(answer)
            yield TextDelta(answer)
        state.rephrased_query = _text(body, "rephrased_query") or None
        score = body.get("factual_consistency_score")
        if isinstance(score, (int, float)):
            yield Score(float(score))
        yield from warnings(body.get("warnings"))
        state.ended = True

    @staticmethod
    def _chat_info(payload: dict[str, Any], state: TurnState) -> Iterator[AnswerEvent]:
        chat_id = _text(payload, "chat_id")
        if chat_id:
            state.chat_id = chat_id
            state.turn_id = _text(payload, "turn_id") or None
            yield SessionInfo(chat_id, state.turn_id)


def _text(payload: dict[str, Any], key: str) -> str:
    """A text field ("" when absent); a value of another type is an error (the caller's
    `BackendError`), not something to pass on to the renderer or the store."""
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{key} is a {type(value).__name__}, not text")
    return value


def warnings(codes: Any) -> Iterator[Warning]:
    for code in codes or ():
        yield Warning(str(code), WARNING_TEXT.get(str(code), f"Vectara warning: {code}"))


def _first(keys: list[str], *metas: dict[str, Any]) -> str | None:
    for meta in metas:
        for key in keys:
            value = meta.get(key)
            if value not in (None, ""):
                return str(value)
    return None


def error_text(body: Any) -> str:
    """A one-line summary of a Vectara error body: field errors, then messages."""
    if not isinstance(body, dict):
        return ""
    parts = [f"{k}: {v}" for k, v in (body.get("field_errors") or {}).items()]
    parts += [str(m) for m in body.get("messages") or ()]
    return "; ".join(parts)


