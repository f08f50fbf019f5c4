"""What every `botkit` subcommand shares, the core's and the plugins' (`botkit_cli`): where
the config is, the `-c` option that names it, and loading it with logging set up."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from botkit.bot import load, secrets_of
from botkit.config import DEFAULT_CONFIG, Config
from botkit.logs import setup_logging
from botkit.plugins import Plugins

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: where admin commands in a container find the deployment's config (the Dockerfile sets it)
CONFIG_ENV = "BOTKIT_CONFIG"


def config_path(given: str | None) -> Path:
    """-c if given, else $BOTKIT_CONFIG, else ./config.yaml if present, else the bundled default."""
    if given:
        return Path(given)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path("config.yaml")
    return local if local.is_file() else DEFAULT_CONFIG


def log_level(args: argparse.Namespace, configured: str) -> str:
    """`--log-level` if given, else the config's level moved by each -v (louder) and -q (quieter)."""
    if getattr(args, "log_level", None):
        return args.log_level
    step = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    return LEVELS[min(max(LEVELS.index(configured) - step, 0), len(LEVELS) - 1)]


CONFIG_HELP = "YAML config (default: $BOTKIT_CONFIG, else ./config.yaml, else the bundled default)"


def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`parser` with `-c/--config`: every command that reads the deployment's config has it
    after its name; `botkit -c FILE COMMAND` (the top parser's) is the same, unless repeated."""
    parser.add_argument("-c", "--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    parser.set_defaults(reads_config=True)
    return parser


def load_for_cli(args: argparse.Namespace, *, serving: bool = False) -> tuple[Config, Plugins]:
    """The config named by `-c` (validated, plugins loaded) with logging set up from it.

    `log.level` is the running bot's (`serving`: run, web). A one-shot command's output is
    its answer or listing, so it logs warnings and errors only, unless -v or --log-level
    asks for more: `botkit ask` is not preceded by the start-up's INFO lines."""
    config, plugins = load(config_path(getattr(args, "config", None)))
    settings = config.root.logging
    level = settings.level if serving else max(settings.level, "WARNING", key=LEVELS.index)
    setup_logging(log_level(args, level), settings.format, secrets_of(config), log_content=settings.content)
    return config, plugins
