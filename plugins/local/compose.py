"""From ranked passages to an answer: which passages count, which sentences to quote, [N].

Pure functions over `Hit`s, so the rules of relevance and citation are testable without
an index. Every quoted sentence or list item carries the marker of the source it comes
from; sources are numbered in the order the answer first cites them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

from botkit.events import Source

from .index import Hit, UnitHit
from .query import Query

#: a passage must contain at least this share of the question's own terms (weighted)
MIN_TERM_SHARE = 0.3
#: what a term found only in the passage's file title counts, against one in its heading or body
TITLE_SHARE = 0.5
#: passages scoring below this share of the best one are not cited
RELATIVE_CUT = 0.3
#: units quoted from the best passage, and from each further one
FIRST_UNITS, OTHER_UNITS = 3, 2
#: list items quoted from the best passage when the answer is a list
MAX_ITEMS = 10
#: a code block longer than this is not quoted (the source link leads to it)
MAX_CODE_CHARS = 900
SNIPPET_CHARS = 240


@dataclass(slots=True)
class Composed:
    text: str
    sources: list[Source]


def coverage(hit: Hit, query: Query) -> float:
    """The question's terms the passage holds, weighted; a term only its file's title has counts less."""
    return (sum(query.terms[t] for t in hit.matched)
            + TITLE_SHARE * sum(query.terms[t] for t in hit.in_title))


def relevant(hits: list[Hit], query: Query, limit: int) -> list[Hit]:
    """The hits worth citing, best first.

    Each must hold enough of the question's own terms, at least one in its own heading or
    body. The best is the one whose own text holds the most of them (then: whose heading
    holds the most; then the score),
    so "How long do refunds take?" finds the refunds paragraph, not the shipping one that
    only shares the file's title "Refunds". After it, a passage's own text must hold every
    one the best one's does (so "add a Slack adapter" does not cite how to add a Teams
    adapter, nor the shipping paragraph the refunds one) and score not far below it.
    """
    own = {t for t, w in query.terms.items() if w >= 1.0}
    if own:
        need = max(1.0, MIN_TERM_SHARE * len(own))
        good = [h for h in hits if coverage(h, query) >= need and h.matched & own]
    else:
        good = [h for h in hits if h.matched]
    if not good:
        return []
    # a term in nearly every passage scores about 0 with BM25: then the passage whose heading
    # names it is the one about it
    good.sort(key=lambda h: (-len(h.matched & own), -len(h.in_heading & own), -h.score))
    top = good[0]
    return [h for h in good if h.score >= RELATIVE_CUT * top.score and top.matched & own <= h.matched][:limit]


def title_of(hit: Hit) -> str:
    return hit.title if hit.heading == hit.title else f"{hit.title} — {hit.heading}"


def location(hit: Hit, base_url: str | None) -> str:
    """Where the reader finds the passage: a URL under `base_url`, else the file's path."""
    if base_url:
        url = base_url.rstrip("/") + "/" + quote(hit.rel)
        return f"{url}#{hit.anchor}" if hit.anchor else url
    path = hit.path
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def source_for(hit: Hit, index: int, base_url: str | None, text: str) -> Source:
    return Source(index, title_of(hit), location(hit, base_url), text, doc_id=hit.path, score=hit.score,
                  metadata={"path": hit.rel, "heading": hit.heading, "anchor": hit.anchor, "passage": hit.id})


def cite(text: str, n: int) -> str:
    """Put `[n]` at the end of a sentence, before its closing punctuation."""
    text = text.strip()
    if text[-1:] in ".!?:;":
        return f"{text[:-1]} [{n}]{text[-1]}"
    return f"{text} [{n}]"


def _weight(unit: UnitHit, query: Query) -> float:
    return sum(query.terms[t] for t in unit.matched)


def _said(unit: UnitHit, said: str) -> bool:
    """Whether an earlier answer of the thread already quoted `unit`."""
    return bool(said) and unit.text.rstrip(".!?:;").strip() in said


def _choose(hit: Hit, query: Query, first: bool, said: str = "") -> list[UnitHit]:
    """The units of `hit` that answer best and were not quoted before, in document order."""
    prose = [u for u in hit.units if u.kind != "code" and not _said(u, said)]
    scored = sorted((u for u in prose if _weight(u, query) > 0), key=lambda u: (-_weight(u, query), u.position))
    chosen = scored[:FIRST_UNITS if first else OTHER_UNITS]
    if not chosen and first:
        chosen = prose[:1]  # the passage matched by its title or heading: its lead sentence
    if first and any(u.kind == "item" for u in chosen):  # the list is the answer: quote it
        chosen += [u for u in prose if u.kind == "item" and u not in chosen][:MAX_ITEMS - len(chosen)]
    if chosen and first:
        code = [u for u in hit.units if u.kind == "code" and len(u.text) <= MAX_CODE_CHARS and _weight(u, query) > 0
                and not _said(u, said)]
        chosen += sorted(code, key=lambda u: -_weight(u, query))[:1]
    return sorted(chosen, key=lambda u: u.position)


def _render(units: list[UnitHit], n: int) -> str:
    """Sentences joined into a paragraph, items into a list, code as it is."""
    blocks: list[str] = []
    previous = None
    for i, unit in enumerate(units):
        text = unit.text
        if text.endswith(":") and (i + 1 == len(units) or units[i + 1].kind != "code"):
            text = text[:-1] + "."  # what it introduced is not quoted
        piece = text if unit.kind == "code" else ("- " if unit.kind == "item" else "") + cite(text, n)
        if unit.kind == previous and unit.kind != "code":
            blocks[-1] += (" " if unit.kind == "text" else "\n") + piece
        else:
            blocks.append(piece)
        previous = unit.kind
    return "\n\n".join(blocks)


def compose(hits: list[Hit], query: Query, base_url: str | None, said: str = "") -> Composed:
    """The answer quoting `hits` (best first, units loaded), with the sources it cites.

    `said` is what the thread's earlier answers said: a follow-up quotes what they did not,
    rather than repeat them.
    """
    sections: list[str] = []
    sources: list[Source] = []
    for hit in hits:
        units = _choose(hit, query, not sources, said)
        if not units:
            continue
        n = len(sources) + 1
        quoted = " ".join(u.text for u in hit.units if u.kind != "code") or hit.body
        sources.append(source_for(hit, n, base_url, snippet(quoted)))
        sections.append(_render(units, n))
    return Composed("\n\n".join(sections), sources)


def passages_as_sources(hits: list[Hit], base_url: str | None) -> list[Source]:
    """Whole passages as numbered sources, for a model to read and cite (retrieval)."""
    return [source_for(hit, n, base_url, hit.body) for n, hit in enumerate(hits, start=1)]
