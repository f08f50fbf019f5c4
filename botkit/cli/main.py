"""`botkit run | check | ask | init | plugins | completion | sessions | backend`, plus
subcommands plugins add with `botkit_cli`.

Exit status 2 means the deployment is wrong (config or plugin), with every problem
printed as `file:line: key: message`; 1 is any other failure, told in one line; 130 is
Ctrl-C. `-v`/`-q`/`--log-level` work before or after the subcommand, and `-c` comes after
the subcommand of every command that reads a config.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import SecretStr

from botkit import allocator
from botkit.allocator import ALLOCATOR_ENV, ALLOCATORS
from botkit.backends import Backend, BackendError, Question, Session
from botkit.bot import Bot, StartupError, describe
from botkit.cli.support import CONFIG_HELP, LEVELS, load_for_cli, log_level, with_config
from botkit.config import (Config, ConfigError, Configured, MetricsConfig, Route, ServerConfig,
                           StoreConfig, routes_of)
from botkit.events import Done, Failed, Sources, TextDelta, ThreadKey
from botkit.logs import redact
from botkit.loop import run as run_loop
from botkit.plugins import PluginError, Plugins, load_plugins
from botkit.store import store_for
from botkit.terminal import printable

EXIT_CONFIG = 2
#: the status of a command whose reader closed the pipe (128 + SIGPIPE), as shell tools exit
EXIT_BROKEN_PIPE = 141
#: the adapter `botkit run` uses when the config names none, and the one `botkit ask` answers through
CONSOLE = "console"
def with_console(config: Config, plugins: Plugins, **settings: Any) -> Config:
    """`config` with the console as its only adapter, configured with `settings`."""
    component = plugins.adapters[CONSOLE]
    return dataclasses.replace(config, adapters={
        CONSOLE: Configured(CONSOLE, component, component.config_model(**settings))})


async def cmd_run(args: argparse.Namespace) -> int:
    config, plugins = load_for_cli(args, serving=True)
    config.require("backends", purpose="botkit run")
    if not config.adapters:  # a config with only a backend: chat with it in the terminal
        config = with_console(config, plugins)
    bot = Bot(config, plugins)
    await bot.run_forever()
    return bot.exit_status


async def cmd_check(args: argparse.Namespace) -> int:
    config, plugins = load_for_cli(args)
    config.require("backends", purpose="botkit run")
    console_default = not config.adapters
    if console_default:
        config = with_console(config, plugins)
    bot = Bot(config, plugins)
    bot.build()  # every component created as `run` would (not started: no network)
    await plugins.routes(bot.server)
    print(f"config {config.path}: ok")
    print("adapters:    " + ", ".join(f"{n} ({c.component.name})" for n, c in config.adapters.items())
          + (" (none configured: the console)" if console_default else ""))
    print("backends:    " + ", ".join(f"{n} ({c.component.name})" for n, c in config.backends.items()))
    print("middlewares: " + (", ".join(config.middlewares) or "none"))
    if config.sections:
        print("sections:    " + ", ".join(config.sections))
    for route in routes_of(config):
        match = {k: v for k, v in route.model_dump().items() if v is not None and k != "backend"}
        print(f"route: {match or 'everything else'} -> {route.backend}")
    print(f"store:       {store_for(config)!r}")
    if bot.serves_http:
        metrics = "" if config.root.metrics.enabled is False else f", {config.root.metrics.path}"
        print(f"server:      listens on http://{bot.server.host}:{bot.server.port} (/healthz, /readyz{metrics})")
    else:
        print("server:      none (nothing needs one; give server: {port: 3000} for /healthz and /metrics)")
    if args.online:
        from botkit.cli.online import check_online

        return await check_online(bot)
    return 0


def console_backend(config: Config) -> str:
    """The backend the routes give a question typed in the console."""
    for route in routes_of(config):
        if route.adapter in (None, CONSOLE) and route.workspace is None and route.channel is None \
                and route.direct is not False:
            return route.backend
    return next(iter(config.backends))


async def cmd_ask(args: argparse.Namespace) -> int:
    """One question, answered as the console would show it (or the backend's own output with --raw)."""
    config, plugins = load_for_cli(args)
    config.require("backends", purpose="botkit ask")
    name = args.backend or console_backend(config)
    if name not in config.backends:
        print(f"botkit ask: no backend named {name!r}; configured: {', '.join(config.backends)}", file=sys.stderr)
        return EXIT_CONFIG
    question = printable(args.question, keep_lines=True).strip()
    root = config.root.model_copy(update={
        "routes": [Route(backend=name)], "schedule": [], "server": ServerConfig(enabled=False),
        "metrics": MetricsConfig(enabled=False), "store": StoreConfig(url=SecretStr("sqlite:///:memory:"))})
    config = with_console(dataclasses.replace(config, root=root), plugins, read_input=False,
                          interactive=sys.stdout.isatty())
    bot = Bot(config, plugins)
    await bot.start()  # every backend: one may need another (openai's retrieval.backend)
    try:
        if args.raw:
            return await _ask_raw(bot.backends[name], question)
        status = await bot.adapters[CONSOLE].ask(question)  # type: ignore[attr-defined]
    finally:
        await bot.stop()
    return 0 if status in (None, "complete") else 1


async def _ask_raw(backend: Backend, text: str) -> int:
    """What the backend streams, as it is: text with its [N] markers, then every source it returned."""
    question = Question(text, "cli")
    session = Session(ThreadKey("cli", "local", "ask", "1"), backend.name)
    sources = []
    status = 0
    try:
        session.session_id = await backend.create_session(session, question)
        async for event in backend.stream(session, question):
            if isinstance(event, TextDelta):
                sys.stdout.write(printable(event.text, keep_lines=True))
                sys.stdout.flush()
            elif isinstance(event, Sources):
                sources = event.sources
            elif isinstance(event, Failed):
                print(f"\nerror: {printable(event.message)}", file=sys.stderr)
                status = 1
                break
            elif isinstance(event, Done):
                break
    except BackendError as exc:
        print(f"\nerror: {printable(exc.message)}", file=sys.stderr)
        status = 1
    print()
    for source in sources:
        print(printable(f"[{source.index}] {source.title}" + (f" — {source.url}" if source.url else "")))
    return status


async def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = load_for_cli(args)[1] if args.config else load_plugins()
    tables = (("adapter", plugins.adapters), ("backend", plugins.backends), ("middleware", plugins.middlewares),
              ("section", plugins.sections))
    if args.json:
        print(json.dumps({
            "plugins": [{"name": name, "source": source} for name, source in plugins.plugin_versions()],
            "components": [{"kind": kind, "type": type_name, "plugin": component.plugin}
                           for kind, table in tables for type_name, component in sorted(table.items())],
            "tables": [{"namespace": namespace, "plugin": plugins.table_owners[namespace],
                        "migrations": len(declared.migrations)} for namespace, declared in sorted(plugins.tables.items())],
        }, indent=2))
        return 0
    for name, source in plugins.plugin_versions():
        print(f"{name:<14} {source}")
    for kind, table in tables:
        for type_name, component in sorted(table.items()):
            print(f"  {kind:<10} {type_name:<14} from {component.plugin}")
    for namespace, declared in sorted(plugins.tables.items()):
        print(f"  {'tables':<10} {namespace:<14} from {plugins.table_owners[namespace]}"
              f" ({len(declared.migrations)} migration{'' if len(declared.migrations) == 1 else 's'})")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from botkit.cli.completion import script

    sys.stdout.write(script(args.parser, args.shell))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from botkit.cli.scaffold import write_config

    return write_config(load_plugins(), args)


def _level(text: str) -> str:
    level = text.upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"not a log level: {text!r} (one of {', '.join(LEVELS).lower()})")
    return level


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v/-q/--log-level on `parser`; below the top, unset unless given there."""
    options = parser._option_string_actions  # noqa: SLF001 - argparse has no public query
    if "--log-level" in options:
        return
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", type=_level, metavar="LEVEL", default=default,
                        help="debug, info, warning or error (default: the config's log.level)")
    if "-v" not in options:
        parser.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                            help="more log output (repeat for more)")
    if "-q" not in options:
        parser.add_argument("-q", "--quiet", action="count", default=0 if top else argparse.SUPPRESS,
                            help="less log output")


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every subcommand's parser below it."""
    found = [parser]
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in dict.fromkeys(action.choices.values()):
                found += parsers(sub)
    return found


def _version() -> str:
    try:
        return version("botkit")
    except PackageNotFoundError:
        return "unknown"


def build_parser(plugins: Plugins | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botkit", description="RAG chat backends as bots on chat platforms")
    parser.add_argument("--version", action="version",
                        version=f"botkit {_version()} (Python {sys.version.split()[0]})")
    parser.add_argument("-c", "--config", help=CONFIG_HELP + "; also after the command")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = with_config(commands.add_parser("run", help="run the bot"))
    # read by `allocator_asked` before this parser exists (choosing one re-executes the command);
    # here for --help and completion
    run.add_argument("--allocator", choices=ALLOCATORS,
                     help="memory allocator: jemalloc gives memory back after a burst; auto takes it where "
                          f"libjemalloc2 is installed (default: ${ALLOCATOR_ENV}, else auto)")
    run.set_defaults(func=cmd_run)
    check = with_config(commands.add_parser("check", help="validate the config and plugins, show what would run"))
    check.add_argument("--online", action="store_true",
                       help="also sign in to each platform and backend and say what works")
    check.set_defaults(func=cmd_check)
    ask = with_config(commands.add_parser("ask", help="ask one question, answered as the bot would"))
    ask.add_argument("--backend", help="backend name from the config (default: the one the routes give the console)")
    ask.add_argument("--raw", action="store_true",
                     help="the backend's own output: text with [N] markers and every source it returned")
    ask.add_argument("question")
    ask.set_defaults(func=cmd_ask)
    init = commands.add_parser("init", help="write a commented config for the platforms and backend you choose")
    init.add_argument("adapters", nargs="*", metavar="ADAPTER",
                      help=f"platforms to answer on (default: {CONSOLE}); "
                           + ", ".join(sorted(plugins.adapters) if plugins else []))
    init.add_argument("--backend", default="local", metavar="TYPE",
                      help="backend type: " + ", ".join(sorted(plugins.backends) if plugins else []))
    init.add_argument("-o", "--output", default="config.yaml",
                      help="file to write (default: config.yaml; - for stdout)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=cmd_init)
    listing = with_config(commands.add_parser("plugins", help="list loaded plugins and what they register"))
    listing.add_argument("--json", action="store_true", help="print JSON instead of a list")
    listing.set_defaults(func=cmd_plugins)
    completion = commands.add_parser("completion", help="print a shell completion script",
                                     description="bash: `source <(botkit completion bash)`; zsh: "
                                                 "`source <(botkit completion zsh)`; fish: "
                                                 "`botkit completion fish | source`")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    completion.set_defaults(func=cmd_completion, parser=parser)
    if plugins is not None:
        plugins.cli(commands)
    for i, each in enumerate(parsers(parser)):
        _add_common(each, top=i == 0)
    return parser


def allocator_asked(argv: list[str]) -> str | None:
    """The allocator `botkit run` is asked to run on ("auto" if none), or None for any other
    command (which keeps what it was started with). Read before the plugins load, since
    choosing one re-executes the command (re-executed after loading them, it started 0.9 s
    later than on pymalloc; now 0.5 s)."""
    early = argparse.ArgumentParser(prog="botkit", add_help=False)
    for option in (("-c", "--config"), ("--log-level",), ("--allocator",)):
        early.add_argument(*option)
    known, rest = early.parse_known_args(argv)
    command = next((word for word in rest if not word.startswith("-")), None)
    if command != "run":
        return None
    return known.allocator or os.environ.get(ALLOCATOR_ENV) or "auto"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        asked = allocator_asked(argv)
        if asked is not None:  # the process may be replaced here
            allocator.ensure(asked, ["-m", "botkit.cli", *argv])
    except allocator.AllocatorError as exc:
        print(f"botkit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        plugins = load_plugins()
        parser = build_parser(plugins)
    except PluginError as exc:
        print(f"botkit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    args = parser.parse_args(argv)
    if args.config is not None and not getattr(args, "reads_config", False):
        parser.error(f"botkit {args.command} reads no config (-c)")
    try:
        result = args.func(args)
        if inspect.isawaitable(result):
            result = run_loop(result)
        return int(result or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except PluginError as exc:
        print(f"botkit: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"botkit: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `botkit sessions export | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail flushing at exit
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug or an environment problem: one line, the traceback only with -v
        if log_level(args, "WARNING") == "DEBUG":
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        print(f"botkit: {redact(describe(exc))} (run with -vv for the traceback)", file=sys.stderr)
        return 1
