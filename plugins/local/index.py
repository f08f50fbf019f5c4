"""The knowledge base's SQLite FTS5 index: kept in step with the files, searched with BM25.

Synchronous on purpose: the backend runs every call in a worker thread, one at a time
(the connection is shared, so callers serialize). Passages are ranked with BM25 over
title, heading and body; their units (sentences, items, code) are indexed too, so the
answer can quote the sentences that contain the question's words, stems and all.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .documents import PASSAGE_CHARS, parse
from .query import Query, match_expression

log = logging.getLogger("botkit.local")

EXTENSIONS = (".md", ".markdown", ".txt")
#: changes when the schema or the way files are split changes: the index is then rebuilt
SCHEMA = f"botkit-local 1 passage={PASSAGE_CHARS}"
#: BM25 weights of the columns title, heading, body: the file's title is in every passage of
#: the file, so it only steers between passages; what a passage says itself decides
_WEIGHTS = (0.5, 4.0, 1.0)
_TOKENIZER = "porter unicode61"
#: borrowed terms add at most this multiple of a passage's own-terms score
BORROWED_CAP = 2.0

_TABLES = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, rel TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
                                 size INTEGER NOT NULL, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS passages(id INTEGER PRIMARY KEY, path TEXT NOT NULL, position INTEGER NOT NULL,
                                    heading TEXT NOT NULL, anchor TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passages_path ON passages(path);
CREATE VIRTUAL TABLE IF NOT EXISTS passage_fts USING fts5(title, heading, body, tokenize='{_TOKENIZER}');
CREATE TABLE IF NOT EXISTS units(id INTEGER PRIMARY KEY, passage INTEGER NOT NULL, position INTEGER NOT NULL,
                                 kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS units_passage ON units(passage);
CREATE VIRTUAL TABLE IF NOT EXISTS unit_fts USING fts5(text, tokenize='{_TOKENIZER}');
"""
_ALL_TABLES = ("meta", "files", "passages", "passage_fts", "units", "unit_fts")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of the knowledge base as found on disk; `rel` is its path under its root."""

    path: str
    rel: str
    mtime_ns: int
    size: int


@dataclass(slots=True)
class UnitHit:
    position: int
    kind: str
    text: str
    matched: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Hit:
    """A ranked passage; `matched` are the query terms its own heading or body contains
    (stemmed), `in_heading` those of them in its heading, `in_title` those only its file's
    title has."""

    id: int
    path: str
    rel: str
    title: str
    heading: str
    anchor: str
    body: str
    score: float
    matched: set[str] = field(default_factory=set)
    units: list[UnitHit] = field(default_factory=list)
    in_title: set[str] = field(default_factory=set)
    in_heading: set[str] = field(default_factory=set)


@dataclass(slots=True)
class SyncReport:
    files: int
    passages: int
    indexed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.indexed or self.removed)


def collect(roots: list[Path]) -> dict[str, SourceFile]:
    """Every Markdown/text file under `roots` (folders recursively), with its size and mtime."""
    found: dict[str, SourceFile] = {}
    for root in roots:
        if root.is_file():
            candidates = [(root, root.name)]
        else:
            candidates = [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*"))
                          if p.suffix.lower() in EXTENSIONS and p.is_file()]
        for path, rel in candidates:
            try:
                stat = path.stat()
            except OSError:
                continue  # vanished while we looked
            found.setdefault(str(path), SourceFile(str(path), rel, stat.st_mtime_ns, stat.st_size))
    return found


class KnowledgeIndex:
    """One SQLite database (a file, or ":memory:") holding the FTS5 index."""

    def __init__(self, location: str) -> None:
        if location != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        self.db = sqlite3.connect(location, check_same_thread=False)
        self.db.executescript(_TABLES)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            self._rebuild()

    def _rebuild(self) -> None:
        with self.db:
            for table in _ALL_TABLES:
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.executescript(_TABLES)
        with self.db:
            self.db.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA,))

    def close(self) -> None:
        self.db.close()

    @property
    def passage_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM passages").fetchone()[0]

    @property
    def file_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM files").fetchone()[0]

    # -- keeping in step with the files ------------------------------------------------------

    def sync(self, files: dict[str, SourceFile]) -> SyncReport:
        """Index new and changed files (by mtime and size), forget removed ones; one transaction."""
        stored = {path: (mtime, size) for path, mtime, size in
                  self.db.execute("SELECT path, mtime_ns, size FROM files")}
        report = SyncReport(0, 0)
        with self.db:
            for path in stored.keys() - files.keys():
                self._forget(path)
                report.removed.append(path)
            for path, source in files.items():
                if stored.get(path) == (source.mtime_ns, source.size):
                    continue
                self._forget(path)
                try:
                    text = Path(path).read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    log.warning("local knowledge base: cannot read %s: %s", path, exc.strerror)
                    continue
                self._add(source, text)
                report.indexed.append(path)
        report.files, report.passages = self.file_count, self.passage_count
        return report

    def _forget(self, path: str) -> None:
        ids = [r[0] for r in self.db.execute("SELECT id FROM passages WHERE path = ?", (path,))]
        for pid in ids:
            self.db.execute("DELETE FROM passage_fts WHERE rowid = ?", (pid,))
            self.db.execute("DELETE FROM unit_fts WHERE rowid IN (SELECT id FROM units WHERE passage = ?)", (pid,))
            self.db.execute("DELETE FROM units WHERE passage = ?", (pid,))
        self.db.execute("DELETE FROM passages WHERE path = ?", (path,))
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))

    def _add(self, source: SourceFile, text: str) -> None:
        document = parse(text, Path(source.path))
        self.db.execute("INSERT INTO files(path, rel, mtime_ns, size, title) VALUES (?, ?, ?, ?, ?)",
                        (source.path, source.rel, source.mtime_ns, source.size, document.title))
        for position, passage in enumerate(document.passages):
            pid = self.db.execute("INSERT INTO passages(path, position, heading, anchor) VALUES (?, ?, ?, ?)",
                                  (source.path, position, passage.heading, passage.anchor)).lastrowid
            self.db.execute("INSERT INTO passage_fts(rowid, title, heading, body) VALUES (?, ?, ?, ?)",
                            (pid, document.title, passage.heading, passage.body))
            for upos, unit in enumerate(passage.units):
                uid = self.db.execute("INSERT INTO units(passage, position, kind, text) VALUES (?, ?, ?, ?)",
                                      (pid, upos, unit.kind, unit.text)).lastrowid
                self.db.execute("INSERT INTO unit_fts(rowid, text) VALUES (?, ?)", (uid, unit.text))

    # -- searching ---------------------------------------------------------------------------

    def search(self, query: Query, limit: int = 20) -> list[Hit]:
        """The `limit` best passages for `query`, best first.

        A passage scores its BM25 for the question's own terms plus, for terms borrowed
        from earlier questions, their weighted BM25 capped at a multiple of the own score: borrowed
        terms steer between passages that answer the question, never past them.
        """
        if query.empty:
            return []
        own = [t for t, w in query.terms.items() if w >= 1.0]
        borrowed = [t for t, w in query.terms.items() if w < 1.0]
        own_scores = self._bm25(own, limit * 3)
        scores = dict(own_scores)
        if borrowed:
            weight = max(query.terms[t] for t in borrowed)
            for pid, score in self._bm25(borrowed, limit * 3).items():
                cap = BORROWED_CAP * own_scores.get(pid, 0.0) if own else weight * score
                scores[pid] = own_scores.get(pid, 0.0) + min(weight * score, cap)
        best = sorted((pid for pid in scores if scores[pid] > 0), key=lambda pid: -scores[pid])[:limit]
        if not best:
            return []
        marks = ",".join("?" * len(best))
        hits = {row[0]: Hit(*row, score=scores[row[0]]) for row in self.db.execute(
            f"SELECT p.id, p.path, f.rel, f.title, p.heading, p.anchor, x.body FROM passages p "
            f"JOIN files f ON f.path = p.path JOIN passage_fts x ON x.rowid = p.id WHERE p.id IN ({marks})", best)}
        for term in query.terms:
            for column, found in (("{heading body}", "matched"), ("title", "in_title"), ("heading", "in_heading")):
                for (rowid,) in self.db.execute(f"SELECT rowid FROM passage_fts WHERE passage_fts MATCH ? "
                                                f"AND rowid IN ({marks})", (f"{column} : ({match_expression([term])})",
                                                                            *best)):
                    getattr(hits[rowid], found).add(term)
        for hit in hits.values():
            hit.in_title -= hit.matched
        return [hits[pid] for pid in best if pid in hits]

    def _bm25(self, terms: list[str], limit: int) -> dict[int, float]:
        """Passage id -> BM25 score (higher is better) of the passages matching any of `terms`."""
        if not terms:
            return {}
        rows = self.db.execute(f"SELECT rowid, bm25(passage_fts, {', '.join(map(str, _WEIGHTS))}) FROM passage_fts "
                               f"WHERE passage_fts MATCH ? ORDER BY 2 LIMIT ?", (match_expression(terms), limit))
        return {rowid: -score for rowid, score in rows}

    def load_units(self, hits: list[Hit], query: Query) -> None:
        """Fill each hit's `units`, each with the query terms it contains."""
        if not hits:
            return
        by_id = {hit.id: hit for hit in hits}
        marks = ",".join("?" * len(by_id))
        units: dict[tuple[int, int], UnitHit] = {}
        for passage, position, kind, text in self.db.execute(
                f"SELECT passage, position, kind, text FROM units WHERE passage IN ({marks}) "
                f"ORDER BY passage, position", list(by_id)):
            unit = UnitHit(position, kind, text)
            units[passage, position] = unit
            by_id[passage].units.append(unit)
        for term in query.terms:
            for passage, position in self.db.execute(
                    f"SELECT u.passage, u.position FROM unit_fts JOIN units u ON u.id = unit_fts.rowid "
                    f"WHERE unit_fts MATCH ? AND u.passage IN ({marks})", (match_expression([term]), *by_id)):
                units[passage, position].matched.add(term)
