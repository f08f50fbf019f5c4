"""`botkit vectara ...`: Vectara chat history and administration from the command line.

    botkit vectara chats [--limit N] [-c config.yaml]
    botkit vectara chat CHAT_ID [-c config.yaml]
    botkit vectara turns CHAT_ID [-c config.yaml]
    botkit vectara delete CHAT_ID [-c config.yaml]
    botkit vectara disable-turn CHAT_ID TURN_ID [-c config.yaml]

Output is JSON (one document per command) so it can be piped to jq.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botkit.backends import BackendError
from botkit.cli.support import load_for_cli, with_config


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("vectara", help="list, show, delete Vectara chats and disable turns")
    actions = parser.add_subparsers(dest="vectara_action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        """A subcommand taking `-c` and `--backend` after it, like every other botkit command."""
        sub = with_config(actions.add_parser(name, help=help_text))
        sub.add_argument("--backend", help="which vectara backend (needed when several are configured)")
        return sub

    action("chats", "list chats (newest pages first, as Vectara lists them)").add_argument(
        "--limit", type=int, default=50)
    for name, help_text in (("chat", "show one chat"), ("turns", "list a chat's turns"),
                            ("delete", "delete a chat upstream")):
        action(name, help_text).add_argument("chat_id")
    disable = action("disable-turn", "disable a turn and every later one")
    disable.add_argument("chat_id")
    disable.add_argument("turn_id")
    parser.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    from botkit.bot import Bot

    from .backend import VectaraBackend

    config, plugins = load_for_cli(args)
    candidates = {name: c for name, c in config.backends.items() if c.component.name == "vectara"}
    if args.backend:
        candidates = {k: v for k, v in candidates.items() if k == args.backend}
    if len(candidates) != 1:
        known = ", ".join(n for n, c in config.backends.items() if c.component.name == "vectara") or "none"
        print(f"botkit vectara: name one vectara backend with --backend (configured: {known})", file=sys.stderr)
        return 2
    name, configured = next(iter(candidates.items()))
    backend = VectaraBackend(name, configured.settings, Bot(config, plugins))
    await backend.start()
    try:
        result: Any
        action = args.vectara_action
        if action == "chats":
            result = await backend.list_sessions(args.limit)
        elif action == "chat":
            result = await backend.get_chat(args.chat_id)
        elif action == "turns":
            result = await backend.list_turns(args.chat_id)
        elif action == "delete":
            result = {"deleted": await backend.delete_chat(args.chat_id)}
        else:
            result = await backend.disable_turn(args.chat_id, args.turn_id)
    except BackendError as exc:
        print(f"botkit vectara: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await backend.close()
    print(json.dumps(result, indent=2))
    return 0
