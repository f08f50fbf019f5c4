"""Citation rendering as pure functions: resolve sources, rewrite markers, build the footer.

Everything works on the whole answer so far (never on a chunk), so a marker split across
chunks is simply incomplete until the rest arrives; while streaming, an incomplete marker
at the end of the text is held back. Markers inside code (fenced blocks, inline code) are
left alone: `a[1]` in code is an index, not a citation.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from botkit.events import Source
from botkit.markup import Formatter

#: one group of adjacent markers: `[1]`, `[1][3]`, `[1], [3]`, `[1, 3]`; not `[[1]](url)` or `[1](url)`
_GROUP = re.compile(
    r"(?P<ws>[ \t]*)(?<!\[)(?P<group>\[\d{1,4}(?:[ \t]*,[ \t]*\d{1,4})*\]"
    r"(?:[ \t]*,?[ \t]*\[\d{1,4}(?:[ \t]*,[ \t]*\d{1,4})*\])*)(?![(\[])"
)
_NUMBER = re.compile(r"\d+")
#: what a marker looks like before it has fully arrived, at the very end of the text
_PARTIAL_TAIL = re.compile(r"[ \t]*\[\d{0,4}(?:[ \t]*,[ \t]*\d{0,4})*[ \t]*\Z")
#: fenced code (an unclosed fence runs to the end) and inline code
_CODE = re.compile(r"```[\s\S]*?(?:```|\Z)|`[^`\n]+`")
_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_LINK_SCHEMES = ("http", "https", "mailto")
_URL_SAFE = "/:@-._~!$&'*+,;="


@dataclass(frozen=True, slots=True)
class Ref:
    """A source as the reader sees it: where it links and what it is called."""

    index: int
    title: str
    url: str | None
    document: str  # de-duplication key: passages of one document share it


@dataclass(slots=True)
class Entry:
    """One footer line: a document and the marker numbers that cite it, in citation order."""

    document: str
    title: str
    url: str | None
    numbers: list[int] = field(default_factory=list)
    footnote: int = 0


# -- sources -------------------------------------------------------------------------------


def _lookup(source: Source, path: str) -> Any:
    """A pattern field: source attributes by name, else a dotted path into `metadata`.

    `doc.` also reads `metadata["document"]` (where backends keep document metadata, as
    Vectara's patterns name it), and `doc.id` falls back to the source's `doc_id`.
    """
    if path in ("index", "title", "url", "doc_id", "snippet"):
        return getattr(source, path)
    head, *rest = path.split(".")
    value: Any = source.metadata.get(head)
    if value is None and head == "doc":
        value = source.metadata.get("document")
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            break
    if value is None and path == "doc.id":
        return source.doc_id
    return value


def fill_pattern(pattern: str, source: Source, *, url: bool = False) -> str | None:
    """`pattern` with its `{fields}` filled from `source`; None if a field is missing or empty.

    Values put into a URL are percent-encoded (a document id may hold spaces).
    """
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        value = _lookup(source, m.group(1))
        if value is None or value == "":
            missing = True
            return ""
        text = str(value)
        return quote(text, safe=_URL_SAFE) if url else text

    out = _FIELD.sub(sub, pattern)
    return None if missing else out


def _linkable(url: str | None) -> str | None:
    """Only absolute http(s)/mailto URLs become links; anything else is dropped."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in _LINK_SCHEMES or not (parts.netloc or parts.scheme.lower() == "mailto"):
        return None
    return url.strip()


def resolve(sources: list[Source], url_pattern: str | None = None,
            title_pattern: str | None = None) -> dict[int, Ref]:
    """Marker number -> Ref, through the patterns with the source's own fields as fallback."""
    refs: dict[int, Ref] = {}
    for source in sources:
        url = (fill_pattern(url_pattern, source, url=True) if url_pattern else None) or source.url
        title = (fill_pattern(title_pattern, source) if title_pattern else None) or source.title
        title = title or source.doc_id or f"Source {source.index}"
        url = _linkable(url)
        document = source.doc_id or url or f"#{source.index}"
        refs.setdefault(source.index, Ref(source.index, title, url, document))
    return refs


def superscript(n: int) -> str:
    return str(n).translate(_SUPERSCRIPT)


# -- the answer text -------------------------------------------------------------------------


def hide_partial_marker(text: str) -> str:
    """While streaming: drop a marker that has only partly arrived at the end (`…see [1`)."""
    m = _PARTIAL_TAIL.search(text)
    if m is None or _in_code(text, m.start()):
        return text
    return text[: m.start()]


def _code_spans(text: str) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    if "`" in text:
        for m in _CODE.finditer(text):
            starts.append(m.start())
            ends.append(m.end())
    return starts, ends


def _in_code(text: str, pos: int) -> bool:
    starts, ends = _code_spans(text)
    i = bisect_right(starts, pos) - 1
    return i >= 0 and pos < ends[i]


def rewrite(text: str, refs: dict[int, Ref], fmt: Formatter, style: str) -> tuple[str, list[Entry]]:
    """Rewrite every marker group for `style`; return the text and the cited documents.

    A number without a source is removed (with the space before a group that vanishes
    entirely), never shown or linked to the wrong source.
    """
    entries: dict[str, Entry] = {}
    starts, ends = _code_spans(text)

    def cite(n: int) -> Entry:
        ref = refs[n]
        entry = entries.get(ref.document)
        if entry is None:
            entry = entries[ref.document] = Entry(ref.document, ref.title, ref.url, footnote=len(entries) + 1)
        if n not in entry.numbers:
            entry.numbers.append(n)
        return entry

    def sub(m: re.Match[str]) -> str:
        i = bisect_right(starts, m.start("group")) - 1
        if i >= 0 and m.start("group") < ends[i]:
            return m.group(0)
        numbers = [int(n) for n in _NUMBER.findall(m.group("group"))]
        valid = [n for n in dict.fromkeys(numbers) if n in refs]
        if style == "none" or not valid:
            return ""
        if style == "footnotes":
            marks = dict.fromkeys(cite(n).footnote for n in valid)
            return ",".join(superscript(f) for f in marks)
        for n in valid:
            cite(n)
        return m.group("ws") + "".join(fmt.link(f"[{n}]", refs[n].url) for n in valid)

    out = _GROUP.sub(sub, text) if "[" in text else text
    return out, list(entries.values())


# -- the footer ------------------------------------------------------------------------------


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _entry_line(entry: Entry, fmt: Formatter, style: str, title_limit: int) -> str:
    title = fmt.escape(_truncate(entry.title, title_limit))
    if style == "footnotes":
        label = superscript(entry.footnote)
    else:
        # "[1] [Title](url)": an undefined reference label stays literal in Markdown
        label = "".join(f"[{n}]" for n in entry.numbers)
    return fmt.bullet(f"{label} {fmt.source_link(title, entry.url)}")


def footer(entries: list[Entry], fmt: Formatter, style: str, *, max_sources: int, budget: int,
           title: str = "Sources", more_text: str = "and {n} more", title_limit: int = 120) -> str:
    """The sources list: at most `max_sources` entries within `budget` characters.

    Entries that do not fit are summed up as `more_text`; the first entry is always shown.
    """
    if not entries:
        return ""
    lines = [fmt.heading(title)] if title else []
    used = sum(len(line) + 1 for line in lines)
    shown = 0
    for entry in entries[:max_sources]:
        line = _entry_line(entry, fmt, style, title_limit)
        if shown and used + len(line) + 1 > budget - len(more_text) - 8:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    rest = len(entries) - shown
    if rest:
        lines.append(more_text.format(n=rest))
    return "\n".join(lines)
