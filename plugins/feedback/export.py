"""`botkit feedback export --format csv|jsonl`: every recorded vote with its turn."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from typing import IO, Any

from botkit.cli.admin import since
from botkit.cli.support import load_for_cli, with_config

#: the columns of an export, in order (`Votes.list` rows carry these keys)
COLUMNS = ("at", "event_id", "thread", "adapter", "backend", "user", "value", "comment", "question", "answer",
           "score")


def write(rows: Iterable[dict[str, Any]], out: IO[str], fmt: str) -> int:
    """Write `rows` as CSV (with a header) or JSON Lines; return how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in COLUMNS})
            count += 1
    else:
        for row in rows:
            out.write(json.dumps({k: row.get(k) for k in COLUMNS}, ensure_ascii=False) + "\n")
            count += 1
    return count


async def export(args: argparse.Namespace) -> int:
    from botkit.store import store_for

    from botkit_plugins.feedback.votes import Votes

    config, plugins = load_for_cli(args)
    store = store_for(config, list(plugins.tables.values()))
    await store.open()
    try:
        rows = await Votes(store).list(since=args.since)
    finally:
        await store.close()
    if args.output == "-":
        write(rows, sys.stdout, args.format)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            write(rows, out, args.format)
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("feedback", help="feedback recorded on answers")
    sub = parser.add_subparsers(dest="feedback_command", required=True)
    cmd = with_config(sub.add_parser("export", help="write every vote with its turn as CSV or JSON Lines"))
    cmd.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    cmd.add_argument("--since", type=since, default=None,
                     help="only votes since: a duration back from now (7d, 12h) or a date (2025-01-31)")
    cmd.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    cmd.set_defaults(func=export)
