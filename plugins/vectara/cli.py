"""`botkit vectara ...`: Vectara chat history and administration from the command line.

    botkit vectara -c config.yaml chats [--limit N]
    botkit vectara -c config.yaml chat CHAT_ID
    botkit vectara -c config.yaml turns CHAT_ID
    botkit vectara -c config.yaml delete CHAT_ID
    botkit vectara -c config.yaml disable-turn CHAT_ID TURN_ID

Output is JSON (one document per command) so it can be piped to jq.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botkit.backends import BackendError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("vectara", help="list, show, delete Vectara chats and disable turns")
    parser.add_argument("-c", "--config", help="YAML config (default: ./config.yaml, else the bundled default)")
    parser.add_argument("--backend", help="which vectara backend (needed when several are configured)")
    actions = parser.add_subparsers(dest="vectara_action", required=True)
    chats = actions.add_parser("chats", help="list chats (newest pages first, as Vectara lists them)")
    chats.add_argument("--limit", type=int, default=50)
    for name, help_text in (("chat", "show one chat"), ("turns", "list a chat's turns"),
                            ("delete", "delete a chat upstream")):
        actions.add_parser(name, help=help_text).add_argument("chat_id")
    disable = actions.add_parser("disable-turn", help="disable a turn and every later one")
    disable.add_argument("chat_id")
    disable.add_argument("turn_id")
    parser.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    from botkit.bot import load
    from botkit.cli import config_path

    from .backend import VectaraBackend

    config, _ = load(config_path(args.config))
    candidates = {name: c for name, c in config.backends.items() if c.component.name == "vectara"}
    if args.backend:
        candidates = {k: v for k, v in candidates.items() if k == args.backend}
    if len(candidates) != 1:
        known = ", ".join(n for n, c in config.backends.items() if c.component.name == "vectara") or "none"
        print(f"botkit vectara: name one vectara backend with --backend (configured: {known})", file=sys.stderr)
        return 2
    name, configured = next(iter(candidates.items()))
    backend = VectaraBackend(name, configured.settings, None)
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
