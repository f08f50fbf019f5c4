"""The `botkit` command: the core's subcommands (`main`), what every subcommand shares,
the core's and plugins' (`support`), and the history commands (`admin`, a plugin like any
other), shell completion, `botkit init` (`scaffold`) and `botkit check --online`."""

from botkit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
