"""The local backend: answers from the knowledge base's files, cited, streamed in chunks.

The index is built (or brought up to date, when it is kept in a file) at start, and
looked over again for changed files at most every `refresh_interval` seconds. SQLite
work runs in a worker thread, one call at a time, so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from botkit.backends import Backend, BackendError, Question, Session
from botkit.events import AnswerEvent, Done, SessionInfo, Source, Sources, TextDelta

from . import LocalConfig
from .compose import compose, passages_as_sources, relevant
from .index import Hit, KnowledgeIndex, SyncReport, collect
from .query import Query, build_query

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.local")

NOTHING_FOUND = ("I couldn't find anything about that in the knowledge base. "
                 "Try asking with the names of the features, settings or commands you mean.")
NOTHING_MORE = ("The knowledge base says nothing more about that than my answer above. "
                "Try asking with the names of the features, settings or commands you mean.")
#: passages ranked before the relevance rules pick the ones to cite
CANDIDATES = 20
_PIECE = re.compile(r"\S+\s*|\s+")


def pieces(text: str, size: int) -> list[str]:
    """`text` in chunks of about `size` characters, cut after whitespace (never mid-word)."""
    out: list[str] = []
    current = ""
    for piece in _PIECE.findall(text):
        current += piece
        if len(current) >= size:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


class LocalBackend(Backend):
    """SQLite FTS5 over Markdown and text files; also a retriever for the openai backend."""

    history_turns: ClassVar[int] = 3
    config: LocalConfig

    def __init__(self, name: str, config: LocalConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.history_turns = config.history_turns  # type: ignore[misc]  # per instance
        self.roots: list[Path] = []
        self._index: KnowledgeIndex | None = None
        self._lock = asyncio.Lock()
        self._checked_at = 0.0

    def _path(self, path: Path) -> Path:
        path = path.expanduser()
        return (path if path.is_absolute() else self.bot.config.base_dir / path).resolve()

    async def start(self) -> None:
        self.roots = [self._path(p) for p in self.config.paths]
        missing = [str(p) for p in self.roots if not p.exists()]
        if missing:
            raise BackendError(f"backend {self.name!r}: paths not found: {', '.join(missing)}")
        location = str(self._path(self.config.index_path)) if self.config.index_path else ":memory:"
        self._index = await asyncio.to_thread(KnowledgeIndex, location)
        report = await self.refresh()
        log.info("local backend %s: %d passages from %d files (%d indexed now)", self.name, report.passages,
                 report.files, len(report.indexed))
        if not report.files:
            log.warning("local backend %s: no .md or .txt files under %s", self.name,
                        ", ".join(map(str, self.roots)))

    async def verify(self) -> str:
        report = await self.refresh()
        return f"{report.passages} passages from {report.files} files"

    async def close(self) -> None:
        async with self._lock:
            if self._index is not None:
                await asyncio.to_thread(self._index.close)
                self._index = None

    async def refresh(self) -> SyncReport:
        """Look at the files now: index new and changed ones, forget removed ones."""
        async with self._lock:
            index = self._require()
            report = await asyncio.to_thread(lambda: index.sync(collect(self.roots)))
        running, self._checked_at = self._checked_at > 0, time.monotonic()
        if running and report.changed:
            log.info("local backend %s: indexed %d files, removed %d", self.name, len(report.indexed),
                     len(report.removed))
        return report

    def _require(self) -> KnowledgeIndex:
        if self._index is None:
            raise BackendError(f"backend {self.name!r} is not started")
        return self._index

    async def _find(self, query: Query, limit: int, *, units: bool) -> list[Hit]:
        """The passages worth citing for `query`, best first (with their units if asked)."""
        if time.monotonic() - self._checked_at >= self.config.refresh_interval:
            await self.refresh()

        def find(index: KnowledgeIndex) -> list[Hit]:
            hits = relevant(index.search(query, CANDIDATES), query, limit)
            if units:
                index.load_units(hits, query)
            return hits

        try:
            async with self._lock:
                return await asyncio.to_thread(find, self._require())
        except sqlite3.Error as exc:
            log.error("local backend %s: search failed: %s", self.name, exc)
            raise BackendError("the local knowledge base could not be searched") from exc

    async def retrieve(self, query: str, limit: int) -> list[Source]:
        """The `limit` best passages for `query`, whole, as numbered sources (for a model to cite)."""
        hits = await self._find(build_query(query, []), limit, units=False)
        return passages_as_sources(hits, self.config.base_url)

    async def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        if session.session_id is None:
            yield SessionInfo(f"local-{uuid.uuid4().hex[:16]}")
        history = session.history[-self.history_turns:] if self.history_turns else []
        query = build_query(question.text, [asked for asked, _ in history])
        hits = await self._find(query, self.config.max_sources, units=True)
        answer = compose(hits, query, self.config.base_url, "\n".join(said for _, said in history))
        if answer.sources:
            yield Sources(answer.sources)
        text = answer.text if answer.sources else NOTHING_MORE if hits else NOTHING_FOUND
        for piece in pieces(text, self.config.chunk_chars):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let the renderer see the answer grow
        yield Done()
