"""Documents split into passages (by heading, then paragraphs) and passages into units.

A passage is what BM25 ranks; a unit (a sentence, a list item or a code block) is what
an answer quotes and cites. Splitting is pure text work, independent of the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: a passage grows paragraph by paragraph up to about this many characters
PASSAGE_CHARS = 1200

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9`*_\"(\[])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")
_SLUG_DROP = re.compile(r"[^\w\- ]")


@dataclass(slots=True)
class Unit:
    """A quotable piece of a passage: kind "text" (a sentence), "item" or "code"."""

    kind: str
    text: str


@dataclass(slots=True)
class Passage:
    heading: str
    anchor: str
    body: str
    units: list[Unit] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    title: str
    passages: list[Passage]


def slug(heading: str) -> str:
    """The anchor GitHub and most site generators give a heading."""
    return _SLUG_DROP.sub("", heading.strip().lower()).replace(" ", "-")


def title_from_name(path: Path) -> str:
    stem = re.sub(r"[-_]+", " ", path.stem).strip()
    return stem[:1].upper() + stem[1:] if stem else path.name


def sentences(paragraph: str) -> list[str]:
    """Split prose at sentence ends, keeping "e.g. Slack" and similar together."""
    parts = _SENTENCE_END.split(paragraph.strip())
    out: list[str] = []
    for part in parts:
        if out and out[-1].lower().endswith(_ABBREVIATIONS):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return [s for s in out if s]


def _front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    """Drop a leading `---` YAML block; return its `title:` if it has one."""
    if not lines or lines[0].strip() != "---":
        return None, lines
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            title = next((ln.split(":", 1)[1].strip().strip("'\"") for ln in lines[1:end]
                          if ln.lower().startswith("title:")), None)
            return title or None, lines[end + 1:]
    return None, lines


def _blocks(lines: list[str]) -> list[str]:
    """Paragraphs and fenced code blocks (a code block is one block, blank lines and all)."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in lines:
        marker = _FENCE.match(line)
        if fence is not None:
            current.append(line)
            if marker and marker.group(1) == fence:
                blocks.append("\n".join(current))
                current, fence = [], None
        elif marker:
            if current:
                blocks.append("\n".join(current))
            current, fence = [line], marker.group(1)
        elif line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def _units(block: str) -> list[Unit]:
    if _FENCE.match(block):
        return [Unit("code", block)]
    lines = [ln[1:].strip() if ln.lstrip().startswith(">") else ln for ln in block.split("\n")]
    if lines[0].lstrip().startswith("|"):
        return []  # tables are searchable but not quotable sentence by sentence
    if _ITEM.match(lines[0]):
        items: list[str] = []
        for line in lines:
            if _ITEM.match(line):
                items.append(_ITEM.sub("", line, count=1).strip())
            else:
                items[-1] = f"{items[-1]} {line.strip()}"
        return [Unit("item", item) for item in items if item]
    return [Unit("text", s) for s in sentences(" ".join(ln.strip() for ln in lines))]


def _passages(heading: str, anchor: str, blocks: list[str]) -> list[Passage]:
    """One section's blocks grouped into passages of about PASSAGE_CHARS."""
    out: list[Passage] = []
    group: list[str] = []

    def flush() -> None:
        if group:
            units = [u for b in group for u in _units(b)]
            out.append(Passage(heading, anchor, "\n\n".join(group), units))
            group.clear()

    size = 0
    for block in blocks:
        if group and size + len(block) > PASSAGE_CHARS:
            flush()
            size = 0
        group.append(block)
        size += len(block)
    flush()
    return out


def parse(text: str, path: Path) -> Document:
    """Split a Markdown (or, without headings, plain text) file into passages.

    The first level-1 heading, or front matter `title:`, or the file name is the title;
    text before the first sub-heading belongs to a passage headed by the title.
    """
    markdown = path.suffix.lower() in (".md", ".markdown")
    title, lines = _front_matter(text.replace("\r\n", "\n").split("\n"))
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fence: str | None = None
    for line in lines:
        marker = _FENCE.match(line)
        if marker:
            fence = None if fence == marker.group(1) else (fence or marker.group(1))
        heading = _HEADING.match(line) if markdown and fence is None else None
        if heading is None:
            sections[-1][1].append(line)
        elif title is None and len(heading.group(1)) == 1 and not any(s.strip() for _, b in sections for s in b):
            title = heading.group(2)
        else:
            sections.append((heading.group(2), []))
    title = title or title_from_name(path)
    passages: list[Passage] = []
    for heading, body in sections:
        passages.extend(_passages(heading or title, slug(heading) if heading else "", _blocks(body)))
    return Document(title, passages)
