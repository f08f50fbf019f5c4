"""botkit built-in plugin: the Vectara chat backend (`type: vectara`).

Registers the backend lazily (httpx is imported only when one is configured) and the
`botkit vectara` admin subcommand for chat history.
"""

from __future__ import annotations

import argparse

from botkit import hookimpl

from .config import VectaraConfig

__all__ = ["VectaraConfig"]


@hookimpl
def botkit_register_backends(register) -> None:  # noqa: ANN001 - pluggy passes the registry's callable
    register("vectara", "botkit_plugins.vectara.backend:VectaraBackend", VectaraConfig)


@hookimpl
def botkit_cli(commands: argparse._SubParsersAction) -> None:
    from .cli import add_parser

    add_parser(commands)
