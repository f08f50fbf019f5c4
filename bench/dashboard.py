"""Benchmark: opening the dashboard (and a web chat's reload) on a store with a million turns.

Fills a store with `--turns` turns spread over `--days` days (texts of realistic size, a
vote on one in ten), then times what one dashboard page reads (the figures of each
period, the recent questions, one turn) and what a reload of the web chat reads (a
thread's history), each `--runs` times: min / median / max in milliseconds.

    python bench/dashboard.py                       # SQLite, 1,000,000 turns over 90 days
    python bench/dashboard.py --postgres            # a throwaway PostgreSQL (botkit.testing)
    python bench/dashboard.py --turns 100000 --days 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from botkit.events import ThreadKey
from botkit.plugins import load_plugins
from botkit.store import open_store
from botkit_plugins.dashboard.figures import WINDOWS, figures

PLUGINS = load_plugins()  # the built-ins: the feedback plugin keeps its table in the store

QUESTION = "How do I configure the thing so that it answers in the right thread? " * 2
ANSWER = "You set the option in config.yaml and restart the bot [1]. It then answers in threads [2]. " * 8
SOURCES = json.dumps([{"index": 1, "title": "Configuration", "url": "https://docs.example.com/config",
                       "snippet": "x" * 200, "doc_id": "config.md", "score": 0.8, "metadata": {}}] * 2)


def rows(turns: int, days: float, threads: int) -> Iterator[tuple]:
    rng = random.Random(1)
    now = time.time()
    start = now - days * 86_400
    step = (now - start) / turns
    for n in range(turns):
        thread = f"slack:T1:C{n % 50}:{n % threads}"
        status = "complete" if rng.random() > 0.05 else rng.choice(["failed", "timeout"])
        yield (1 + n % threads, thread, f"E{n}", rng.choice(["slack", "teams", "web"]), "kb", f"U{n % 997}",
               QUESTION, ANSWER, status, SOURCES if rng.random() > 0.1 else "[]", rng.random(), None,
               json.dumps([f"m{n}"]), rng.random(), 1 + rng.random() * 4, 3, "{}", start + n * step)


async def fill(url: str, base: Path, turns: int, days: float) -> None:
    store = open_store(url, base_dir=base, tables=list(PLUGINS.tables.values()))
    await store.open()  # creates the schema
    threads = max(1, turns // 10)
    if url.startswith("sqlite"):
        await store.close()
        db = sqlite3.connect(base / url.removeprefix("sqlite:///"))
        db.executemany("INSERT INTO sessions (id, thread, backend, created_at, last_active, turn_count) "
                       "VALUES (?, ?, 'kb', 0, 0, 10)", ((n + 1, f"slack:T1:C{n % 50}:{n}") for n in range(threads)))
        db.executemany("INSERT INTO turns (session, thread, event_id, adapter, backend, user, question, answer, status,"
                       " sources, score, error, message_ids, first_text_after, duration, edits, flags, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows(turns, days, threads))
        db.execute("INSERT INTO feedback (event_id, user, value, comment, at) SELECT event_id, user, 'up', NULL,"
                   " created_at FROM turns WHERE id % 10 = 0")
        db.commit()
        db.execute("ANALYZE")
        db.close()
        return
    async with store._pool.acquire() as conn:  # type: ignore[attr-defined]
        await conn.executemany("INSERT INTO sessions (id, thread, backend, created_at, last_active, turn_count)"
                               " VALUES ($1, $2, 'kb', 0, 0, 10)",
                               [(n + 1, f"slack:T1:C{n % 50}:{n}") for n in range(threads)])
        columns = ["session", "thread", "event_id", "adapter", "backend", "user", "question", "answer", "status",
                   "sources", "score", "error", "message_ids", "first_text_after", "duration", "edits", "flags",
                   "created_at"]
        # COPY has no binary form for json: the rows go through a table of text columns
        await conn.execute("CREATE TEMP TABLE staged (session int8, thread text, event_id text, adapter text,"
                           " backend text, \"user\" text, question text, answer text, status text, sources text,"
                           " score float8, error text, message_ids text, first_text_after float8, duration float8,"
                           " edits int4, flags text, created_at float8)")
        await conn.copy_records_to_table("staged", records=list(rows(turns, days, threads)), columns=columns)
        quoted = ", ".join(f'"{c}"' for c in columns)
        selected = ", ".join(f'"{c}"::json' if c in ("sources", "message_ids", "flags") else f'"{c}"' for c in columns)
        await conn.execute(f"INSERT INTO turns ({quoted}) SELECT {selected} FROM staged")
        await conn.execute("INSERT INTO feedback (event_id, \"user\", value, comment, at) SELECT event_id, \"user\","
                           " 'up', NULL, created_at FROM turns WHERE id % 10 = 0")
        await conn.execute("ANALYZE")
    await store.close()


async def timed(label: str, runs: int, make) -> None:  # noqa: ANN001 - a coroutine factory
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await make()
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {label:<34} {min(times):8.1f} {statistics.median(times):8.1f} {max(times):8.1f} ms")


async def bench(url: str, base: Path, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    await fill(url, base, args.turns, args.days)
    print(f"{url.split(':')[0]}: {args.turns:,} turns over {args.days:g} days filled in "
          f"{time.perf_counter() - started:.0f} s (min / median / max of {args.runs} runs)")
    store = open_store(url, base_dir=base, tables=list(PLUGINS.tables.values()))
    await store.open()
    try:
        for window in WINDOWS:
            await timed(f"figures, {window}", args.runs,
                        lambda w=window: figures(store, PLUGINS, window=w, max_turns=args.max_turns, low_fcs=0.5))
        await timed("recent questions (25)", args.runs, lambda: store.recent_turns(limit=25))
        await timed("recent questions, page 100", args.runs, lambda: store.recent_turns(limit=25, before=args.turns // 2))
        await timed("one turn", args.runs, lambda: store.turn_by_id(args.turns // 3))
        await timed("web chat reload (50 turns)", args.runs,
                    lambda: store.thread_turns(ThreadKey.parse("slack:T1:C7:7"), limit=50))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=90.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-turns", type=int, default=20_000, help="the dashboard's max_turns")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server (botkit.testing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        url = "sqlite:///bench.db"
        if args.postgres:
            from botkit.testing import postgres_server

            server = stack.enter_context(postgres_server())
            url = server.create_database("bench")
        asyncio.run(bench(url, Path(folder), args))


if __name__ == "__main__":
    main()
