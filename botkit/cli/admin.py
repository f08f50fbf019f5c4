"""`botkit sessions list|show|delete|export` and `botkit backend history`: the store's
history (and a backend's own, where it keeps one) from the command line.

Tables in a terminal (rich), JSON with `--json`. The commands open the store named by
the config: a SQLite store only while no bot holds it (`store.exclusive`, the default),
PostgreSQL always. A session deleted while a bot runs stays in use until the bot restarts
(SQLite), or until the replica running its thread lets the thread go (PostgreSQL); the
records of turns answered in it meanwhile are not kept. Registered like any plugin
(`botkit_cli`, entry point "admin").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from botkit.backends import Backend, BackendError
from botkit.cli.support import CONFIG_ENV, load_for_cli, with_config
from botkit.config import DEFAULT_CONFIG, Config, parse_duration
from botkit.plugins import Plugins, hookimpl
from botkit.store import Store, store_for
from botkit.terminal import printable


@hookimpl
def botkit_cli(commands: argparse._SubParsersAction) -> None:
    """Register `sessions` and `backend` on botkit's CLI."""
    sessions = commands.add_parser("sessions", help="list, show, delete and export conversation history")
    actions = sessions.add_subparsers(dest="sessions_action", required=True)

    listing = _common(with_config(actions.add_parser("list", help="sessions, most recently active first")))
    listing.add_argument("--adapter", help="only sessions with turns from this adapter")
    listing.add_argument("--channel", help="only sessions in this channel")
    listing.add_argument("--since", type=since, help="active since: a duration (7d, 12h) or a date (2025-01-31)")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)

    show = _common(with_config(actions.add_parser("show", help="every turn of a session")))
    show.add_argument("ref", help="a thread key, a store session id or a backend session id")
    show.set_defaults(func=cmd_show)

    delete = _common(with_config(actions.add_parser("delete", help="delete a session here and upstream")))
    delete.add_argument("ref", help="a thread key, a store session id or a backend session id")
    delete.add_argument("--local-only", action="store_true", help="keep the backend's copy")
    delete.set_defaults(func=cmd_delete)

    export = with_config(actions.add_parser("export", help="every turn, one JSON object a line"))
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--since", type=since, help="turns since: a duration (7d) or a date")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    backend = commands.add_parser("backend", help="a backend's own view of its sessions")
    backend_actions = backend.add_subparsers(dest="backend_action", required=True)
    history = _common(with_config(backend_actions.add_parser(
        "history", help="upstream sessions (or one session's turns) beside the local ones")))
    history.add_argument("backend", help="backend name from the config")
    history.add_argument("session", nargs="?", help="a backend session id: show its turns")
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(func=cmd_history)


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def since(text: str) -> float:
    """A duration back from now, or an ISO date/time (UTC unless it says otherwise)."""
    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration or a date: {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if stamp else ""


def _short(text: str | None, size: int = 80) -> str:
    text = " ".join((text or "").split())
    return _shown(text if len(text) <= size else text[:size - 1] + "…")


def _console() -> Console:
    """Rich's console for tables of stored text: no emoji codes (a question's ":smile:" stays text)."""
    return Console(emoji=False)


def _shown(text: str | None, *, keep_lines: bool = False) -> str:
    """Stored or upstream text as a table cell: printable, and never read as Rich markup
    (a question holding `[/]` or an answer with `[discord]` is shown as it was written)."""
    return escape(printable(text or "", keep_lines=keep_lines))


def _as_text(value: Any) -> str:
    """A plugin's field of a turn, as a line of text."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@asynccontextmanager
async def _store(args: argparse.Namespace) -> AsyncIterator[tuple[Config, Plugins, Store]]:
    config, plugins = load_for_cli(args)
    if config.path == DEFAULT_CONFIG:  # its store is in memory: an empty history would look like no history
        print(f"botkit: no config given (-c, ${CONFIG_ENV}) and no ./config.yaml: the bundled default "
              "keeps no history", file=sys.stderr)
    store = store_for(config, list(plugins.tables.values()))
    await store.open()
    try:
        yield config, plugins, store
    finally:
        await store.close()


@asynccontextmanager
async def _backend(config: Config, plugins: Plugins, name: str) -> AsyncIterator[Backend]:
    from botkit.bot import Bot

    item = config.backends[name]
    backend = item.component.load()(name, item.settings, Bot(config, plugins))  # built, not started
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


# -- sessions ----------------------------------------------------------------------------------


async def cmd_list(args: argparse.Namespace) -> int:
    async with _store(args) as (_, _, store):
        rows = await store.list_sessions(adapter=args.adapter, channel=args.channel, since=args.since,
                                         limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    table = Table("id", "thread", "adapter", "backend", "backend session", "turns", "last active", "state")
    for row in rows:
        table.add_row(str(row["id"]), _shown(row["thread"]), _shown(row["adapter"]), _shown(row["backend"]),
                      _shown(row["session_id"]), str(row["turn_count"]), _when(row["last_active"]),
                      "ended" if row["ended_at"] else "active")
    _console().print(table)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    async with _store(args) as (_, plugins, store):
        found = await store.find_sessions(args.ref)
        added: dict[str, list[str]] = {}  # event id -> the fields plugins added (botkit_turn_annotations)
        for session in found:
            session["turns"] = turns = await store.turns_of(session["id"])
            annotations = await plugins.turn_annotations(store, [turn["event_id"] for turn in turns])
            for turn in turns:
                fields = annotations.get(turn["event_id"], {})
                turn.update(fields)
                added[turn["event_id"]] = [name for name in fields if name != "feedback"]
    if not found:
        print(f"no session matches {printable(args.ref)!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(found)
        return 0
    console = _console()
    for session in found:
        console.print(f"[bold]session {session['id']}[/bold]  {_shown(session['thread'])}  backend "
                      f"{_shown(session['backend'])}  {_shown(session['session_id']) or '(no backend id)'}  "
                      f"{session['turn_count']} turns")
        for n, turn in enumerate(session["turns"], start=1):
            title = f"turn {n}  {_when(turn['created_at'])}  {_shown(turn['status'])}"
            table = Table(show_header=False, title=title, title_justify="left", expand=True)
            table.add_column(style="bold", no_wrap=True)
            table.add_column()
            timing = "" if turn["first_text_after"] is None else f"first text {turn['first_text_after']:.2f}s, "
            for label, value in (
                ("question", turn["question"]), ("answer", turn["answer"]),
                ("sources", "\n".join(f"[{s.get('index')}] {s.get('title')}" + (f" {s['url']}" if s.get("url") else "")
                                      for s in turn["sources"])),
                ("score", "" if turn["score"] is None else f"{turn['score']:.2f}"),
                ("feedback", ", ".join(f"{f['user']}: {f.get('value') or ''} {f.get('comment') or ''}".strip()
                                       for f in turn.get("feedback", ()))),
                ("timings", f"{timing}total {turn['duration']:.2f}s, {turn['edits']} edits"),
                ("error", turn["error"] or ""),
                *((name, _as_text(turn[name])) for name in added.get(turn["event_id"], ())),
            ):
                if value:
                    table.add_row(label, _shown(value, keep_lines=True))
            console.print(table)
    return 0


async def cmd_delete(args: argparse.Namespace) -> int:
    status = 0
    results: list[dict[str, Any]] = []
    async with _store(args) as (config, plugins, store):
        found = await store.find_sessions(args.ref)
        for session in found:
            result = {"id": session["id"], "thread": session["thread"], "backend": session["backend"],
                      "session_id": session["session_id"], "upstream": "skipped", "local": False}
            if session["session_id"] and not args.local_only:
                result["upstream"] = await _delete_upstream(config, plugins, session["backend"],
                                                            session["session_id"])
            if result["upstream"].startswith("error"):
                status = 1  # kept here so the delete can be retried
            else:
                await store.delete_session(session["id"])
                result["local"] = True
            results.append(result)
    if not found:
        print(f"no session matches {printable(args.ref)!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(printable(f"session {r['id']} ({r['thread']}): local {'deleted' if r['local'] else 'kept'},"
                            f" upstream {r['upstream']}"))
    return status


async def _delete_upstream(config: Config, plugins: Plugins, name: str, session_id: str) -> str:
    if name not in config.backends:
        return "skipped (backend no longer configured)"
    try:
        async with _backend(config, plugins, name) as backend:
            deleted = await backend.delete_session(session_id)
    except BackendError as exc:
        return f"error: {exc.message}"
    return "deleted" if deleted else "not deleted (the backend does not delete sessions)"


async def cmd_export(args: argparse.Namespace) -> int:
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        async with _store(args) as (_, _, store):
            total = await store.count_turns(since=args.since)
            columns = (TextColumn("exporting turns"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True,
                          disable=not sys.stderr.isatty()) as progress:
                task = progress.add_task("export", total=total)
                async for turn in store.iter_turns(since=args.since):
                    out.write(json.dumps(turn, ensure_ascii=False) + "\n")
                    progress.advance(task)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"{total} turns written to {args.output}", file=sys.stderr)
    return 0


# -- a backend's own history ----------------------------------------------------------------------


async def cmd_history(args: argparse.Namespace) -> int:
    async with _store(args) as (config, plugins, store):
        if args.backend not in config.backends:
            print(f"no backend named {args.backend!r}; configured: {', '.join(config.backends)}", file=sys.stderr)
            return 2
        try:
            async with _backend(config, plugins, args.backend) as backend:
                upstream = (await backend.list_turns(args.session) if args.session
                            else await backend.list_sessions(args.limit))
        except BackendError as exc:
            print(f"botkit backend history: {exc.message}", file=sys.stderr)
            return 1
        if args.session:
            local = [t for s in await store.find_sessions(args.session) if s["backend"] == args.backend
                     for t in await store.turns_of(s["id"])]
        else:
            local = [s for s in await store.list_sessions(limit=max(args.limit, 1000))
                     if s["backend"] == args.backend][:args.limit]
    if args.json:
        _print_json({"backend": args.backend, "session": args.session, "upstream": upstream, "local": local})
        return 0
    table = _turns_side_by_side(upstream, local) if args.session else _sessions_side_by_side(upstream, local)
    _console().print(table)
    return 0


def _upstream_id(item: dict[str, Any]) -> str:
    return str(item.get("session_id") or item.get("id") or "")


def _sessions_side_by_side(upstream: list[dict[str, Any]], local: list[dict[str, Any]]) -> Table:
    table = Table("backend session", "upstream", "local thread", "local turns", "last active here")
    here = {s["session_id"]: s for s in local if s["session_id"]}
    seen = set()
    for item in upstream:
        sid = _upstream_id(item)
        seen.add(sid)
        mine = here.get(sid)
        title = item.get("title") or item.get("first_query") or item.get("name") or ""
        table.add_row(_shown(sid), _short(str(title), 50), _shown(mine["thread"]) if mine else "(not here)",
                      str(mine["turn_count"]) if mine else "", _when(mine["last_active"]) if mine else "")
    for sid, mine in here.items():
        if sid not in seen:
            table.add_row(_shown(sid), "(not upstream)", _shown(mine["thread"]), str(mine["turn_count"]),
                          _when(mine["last_active"]))
    return table


def _turns_side_by_side(upstream: list[dict[str, Any]], local: list[dict[str, Any]]) -> Table:
    table = Table("#", "upstream question", "upstream answer", "local question", "local answer")
    for n in range(max(len(upstream), len(local))):
        theirs = upstream[n] if n < len(upstream) else {}
        mine = local[n] if n < len(local) else {}
        table.add_row(str(n + 1), _short(theirs.get("question") or theirs.get("query"), 50),
                      _short(theirs.get("answer"), 70), _short(mine.get("question"), 50), _short(mine.get("answer"), 70))
    return table
