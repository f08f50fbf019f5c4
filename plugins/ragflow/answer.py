"""RAGFlow's answer stream folded into botkit's events: deltas, `[N]` citations, sources.

RAGFlow ≤ v0.23 sends the whole answer so far in every event; ≥ v0.24 sends increments
flagged `final: false` and one `final: true` event with the references. Markers are
`[ID:n]` (≥ v0.20) or `##n$$` (older), both 0-based into `reference.chunks`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botkit.events import Source

log = logging.getLogger("botkit.backends.ragflow")

_MARKER = re.compile(r"\[ID:(\d+)\]|##(\d+)\$\$")
#: an unfinished marker at the end of a piece of text, completed by the next delta
_PARTIAL = re.compile(r"(?:\[(?:I(?:D(?::\d*)?)?)?|##?\d*\$?)$")


def rewrite_citations(text: str) -> str:
    """`[ID:0]` and `##0$$` become `[1]`: botkit's markers are 1-based source indexes."""
    return _MARKER.sub(lambda m: f"[{int(m.group(1) or m.group(2)) + 1}]", text)


class CitationRewriter:
    """`rewrite_citations` over a stream whose deltas may cut a marker in two."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        partial = _PARTIAL.search(text)
        cut = partial.start() if partial else len(text)
        self._held = text[cut:]
        return rewrite_citations(text[:cut])

    def flush(self) -> str:
        text, self._held = self._held, ""
        return rewrite_citations(text)


def chunks_to_sources(chunks: list[dict[str, Any]]) -> list[Source]:
    """`reference.chunks` (or the OpenAI route's `reference`) as sources, chunk n -> `[n+1]`."""
    sources = []
    for n, chunk in enumerate(chunks, start=1):
        metadata: dict[str, Any] = {key: chunk[key] for key in ("id", "dataset_id") if chunk.get(key)}
        positions = chunk.get("positions") or []
        if positions and isinstance(positions[0], list) and positions[0]:
            metadata["page"] = positions[0][0]
        sources.append(Source(
            index=n,
            title=chunk.get("document_name") or chunk.get("doc_name") or "document",
            url=chunk.get("url") or None,
            snippet=chunk.get("content") or None,
            doc_id=chunk.get("document_id") or None,
            score=chunk.get("similarity"),
            metadata=metadata,
        ))
    return sources


class AnswerFolder:
    """Turns each completion event's `data` into the new text to show, once.

    The generation is detected from the stream: events carrying `final` are
    incremental, others cumulative. A cumulative answer that was rewritten rather
    than extended (RAGFlow repairs citation formats in its last event) cannot take
    back text already shown, so only what extends the latest version is passed on.
    """

    def __init__(self) -> None:
        self.latest = ""  # cumulative: the latest upstream answer; incremental: the concatenation
        self.chunks: list[dict[str, Any]] = []
        self.thinking = False
        self._citations = CitationRewriter()

    def feed(self, data: dict[str, Any]) -> str:
        answer = data.get("answer") or ""
        reference = data.get("reference")
        if isinstance(reference, dict) and reference.get("chunks"):
            self.chunks = reference["chunks"]
        if data.get("start_to_think"):
            self.thinking = True
        if data.get("end_to_think"):
            self.thinking = False
            return ""
        if self.thinking and "final" in data and not data["final"]:
            return ""  # reasoning (between the markers of an incremental stream): progress, not the answer
        if "final" in data:
            delta = "" if data["final"] and self.latest else answer
            self.latest += delta
        elif answer.startswith(self.latest):
            delta, self.latest = answer[len(self.latest):], answer
        else:
            log.debug("ragflow answer was rewritten mid-stream; keeping what was shown")
            delta, self.latest = "", answer
        return self._citations.feed(delta)

    def flush(self) -> str:
        return self._citations.flush()

    @property
    def sources(self) -> list[Source]:
        return chunks_to_sources(self.chunks)
