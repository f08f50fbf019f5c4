"""`botkit run | check | ask | plugins | sessions | backend`, plus subcommands plugins add with `botkit_cli`.

Exit status 2 means the deployment is wrong (config or plugin), with every problem
printed as `file:line: key: message`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from botkit.admin import add_commands as add_admin_commands
from botkit.backends import BackendError, Question, Session
from botkit.bot import Bot, load, secrets_of
from botkit.config import DEFAULT_CONFIG, Config, ConfigError
from botkit.events import Done, Failed, Sources, TextDelta, ThreadKey
from botkit.logs import setup_logging
from botkit.loop import run as run_loop
from botkit.plugins import PluginError, Plugins, load_plugins
from botkit.store import store_for

EXIT_CONFIG = 2


def config_path(given: str | None) -> Path:
    """-c if given, else ./config.yaml if present, else the bundled default."""
    if given:
        return Path(given)
    local = Path("config.yaml")
    return local if local.is_file() else DEFAULT_CONFIG


def load_for_cli(args: argparse.Namespace) -> tuple[Config, Plugins]:
    """The config named by `-c` (validated, plugins loaded) with logging set up from it."""
    config, plugins = load(config_path(args.config))
    settings = config.root.logging
    setup_logging(args.log_level or settings.level, settings.format, secrets_of(config), log_content=settings.content)
    return config, plugins


async def cmd_run(args: argparse.Namespace) -> int:
    bot = Bot(*load_for_cli(args))
    await bot.run_forever()
    return 0


async def cmd_check(args: argparse.Namespace) -> int:
    config, plugins = load_for_cli(args)
    for configured in config.adapters.values():
        configured.component.load()
    for configured in config.backends.values():
        configured.component.load()
    print(f"config {config.path}: ok")
    print("adapters:    " + ", ".join(f"{n} ({c.component.name})" for n, c in config.adapters.items()))
    print("backends:    " + ", ".join(f"{n} ({c.component.name})" for n, c in config.backends.items()))
    print("middlewares: " + (", ".join(config.middlewares) or "none"))
    for route in config.root.routes or []:
        match = {k: v for k, v in route.model_dump().items() if v is not None and k != "backend"}
        print(f"route: {match or 'everything else'} -> {route.backend}")
    print(f"store:       {store_for(config)!r}")
    return 0


async def cmd_ask(args: argparse.Namespace) -> int:
    """One turn against a backend, printed as it streams (no adapter, no store)."""
    config, _ = load_for_cli(args)
    name = args.backend or next(iter(config.backends))
    if name not in config.backends:
        print(f"no backend named {name!r}; configured: {', '.join(config.backends)}", file=sys.stderr)
        return EXIT_CONFIG
    item = config.backends[name]
    backend = item.component.load()(name, item.settings, None)
    question = Question(args.question, "cli")
    session = Session(ThreadKey("cli", "local", "ask", "1"), name)
    sources = []
    status = 0
    await backend.start()
    try:
        session.session_id = await backend.create_session(session, question)
        async for event in backend.stream(session, question):
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Sources):
                sources = event.sources
            elif isinstance(event, Failed):
                print(f"\nerror: {event.message}", file=sys.stderr)
                status = 1
                break
            elif isinstance(event, Done):
                break
    except BackendError as exc:
        print(f"\nerror: {exc.message}", file=sys.stderr)
        status = 1
    finally:
        await backend.close()
    print()
    for source in sources:
        print(f"[{source.index}] {source.title}" + (f" — {source.url}" if source.url else ""))
    return status


async def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = load_plugins()
    for name, source in plugins.plugin_versions():
        print(f"{name:<14} {source}")
    for kind, table in (("adapter", plugins.adapters), ("backend", plugins.backends),
                        ("middleware", plugins.middlewares)):
        for type_name, component in sorted(table.items()):
            print(f"  {kind:<10} {type_name:<14} from {component.plugin}")
    return 0


def build_parser(plugins: Plugins | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botkit", description="RAG chat backends as bots on chat platforms")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", help="YAML config (default: ./config.yaml, else the bundled default)")
        return p

    with_config(commands.add_parser("run", help="run the bot")).set_defaults(func=cmd_run)
    with_config(commands.add_parser("check", help="validate the config and plugins, show what would run")
                ).set_defaults(func=cmd_check)
    ask = with_config(commands.add_parser("ask", help="ask one question of a backend"))
    ask.add_argument("--backend", help="backend name from the config (default: the first)")
    ask.add_argument("question")
    ask.set_defaults(func=cmd_ask)
    commands.add_parser("plugins", help="list loaded plugins and what they register").set_defaults(func=cmd_plugins)
    add_admin_commands(commands, with_config)
    if plugins is not None:
        plugins.call_sync("botkit_cli", commands=commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        plugins = load_plugins()
        parser = build_parser(plugins)
    except PluginError as exc:
        print(f"botkit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    args = parser.parse_args(argv)
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
        print(f"botkit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
