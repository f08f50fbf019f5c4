"""botkit built-in plugin: a web chat, served by botkit's own HTTP server at `/chat`.

`adapters: {web: {}}` serves a chat page (static HTML, CSS and JavaScript shipped in this
package: no build step, nothing fetched from elsewhere) and a WebSocket the page talks to:
questions go up, every post and edit the renderer makes comes down as the message's full
state, so an answer grows on the page as it streams. Citations become links, the sources
are listed under the answer, the low-FCS warning and the progress status show, and each
answer has 👍/👎 buttons that fire `botkit_reaction` like Slack's or Teams' buttons.

Each browser keeps a random id in local storage; its hash and a conversation id are the
thread key, so a reload continues the conversation and "New conversation" starts another.
`<script src="https://HOST/chat/widget.js" async></script>` puts the same chat on another
site as a widget (an iframe of the page), for the sites named in `allowed_origins`.

`botkit web` runs a config (by default the bundled docs bot) with the web chat.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from botkit import hookimpl
from botkit.config import Section

PLATFORM = "web"


class WebConfig(Section):
    """`adapters.<name>` for `type: web`."""

    #: where the chat page is served; its script, styles and WebSocket live under it
    path: str = Field("/chat", pattern=r"^/[A-Za-z0-9._~/-]*$")
    #: the page's title and heading
    title: str = Field("botkit", min_length=1, max_length=200)
    #: shown in a conversation with nothing in it yet
    welcome: str = Field("Ask a question: answers come from the knowledge base, with their sources.",
                         max_length=2000)
    #: shown while the backend searches, before the first words of the answer
    progress_text: str = Field("Searching…", max_length=200)
    #: sites that may embed the chat with the widget script, as origins (https://docs.example.com),
    #: or "*" for any; the page itself is always allowed
    allowed_origins: list[str] = []
    #: the longest question taken, in characters
    max_question_chars: int = Field(4000, ge=1, le=100_000)
    #: seconds between edits of a growing answer
    edit_interval: float = Field(0.25, ge=0.05, le=10)
    #: answer characters per message; a longer answer continues in a new message
    max_length: int = Field(20_000, ge=1_000, le=1_000_000)
    #: earlier turns of the conversation shown when the page is opened again
    history: int = Field(50, ge=0, le=500)
    #: open chat connections at most (one per open page)
    max_connections: int = Field(1000, ge=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        checked = []
        for origin in origins:
            if origin == "*":
                checked.append(origin)
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
                    or parts.query or parts.fragment or "@" in parts.netloc:
                raise ValueError(f"not an origin: {origin!r} (write scheme://host[:port], e.g. https://docs.example.com,"
                                 " or \"*\")")
            checked.append(f"{parts.scheme}://{parts.netloc}".lower())
        return checked


@hookimpl
def botkit_register_adapters(register) -> None:  # noqa: ANN001 - pluggy passes the registrar
    register(PLATFORM, "botkit_plugins.web.adapter:WebAdapter", WebConfig)


# -- `botkit web` ---------------------------------------------------------------------------------


async def cmd_web(args: argparse.Namespace) -> int:
    """Run the config with the web chat: its own web adapter, or one added in place of the others."""
    from botkit.bot import Bot
    from botkit.cli.support import load_for_cli
    from botkit.config import Configured

    config, plugins = load_for_cli(args, serving=True)
    config.require("backends", purpose="botkit web")
    server = config.root.server
    if args.host is not None or args.port is not None:
        server = server.model_copy(update={k: v for k, v in (("host", args.host), ("port", args.port))
                                           if v is not None})
        config = dataclasses.replace(config, root=config.root.model_copy(update={"server": server}))
    webs = [name for name, item in config.adapters.items() if item.component.name == PLATFORM]
    if not webs:  # the bundled default chats in the terminal: here the browser takes its place
        component = plugins.adapters[PLATFORM]
        config = dataclasses.replace(config, adapters={PLATFORM: Configured(PLATFORM, component, WebConfig())})
        webs = [PLATFORM]
    bot = Bot(config, plugins)
    start = bot.start

    async def start_and_tell() -> None:  # the address is known once the server listens (port 0: any)
        await start()
        for name in webs:
            print(f"botkit: the web chat is at {bot.server.url}{_page(bot.adapters[name].config)}", flush=True)

    bot.start = start_and_tell  # type: ignore[method-assign]
    await bot.run_forever()
    return bot.exit_status


def _page(config: Any) -> str:
    return config.path.rstrip("/") or "/"


@hookimpl
def botkit_cli(commands: argparse._SubParsersAction) -> None:
    from botkit.cli.support import with_config

    parser = with_config(commands.add_parser("web", help="run the bot with the web chat (default: the bundled "
                                                         "docs bot)"))
    parser.add_argument("--host", default=None, help="address to listen on (default: the config's server.host)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: the config's server.port)")
    parser.set_defaults(func=cmd_web)
