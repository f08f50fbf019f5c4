"""The console adapter: chat with the bot in a terminal, or pipe questions through it.

Interactive (stdin is a terminal): a prompt, the answer growing in place as it streams,
`/new` for a new thread, `/quit` or Ctrl-D to leave. Piped: one question per line,
each final answer printed, and the bot stops at the end of input.
"""

from __future__ import annotations

from botkit import hookimpl
from botkit.config import Section


class ConsoleConfig(Section):
    #: None: interactive when stdin is a terminal
    interactive: bool | None = None
    prompt: str = "you> "
    user: str = "console-user"
    #: stop the bot when input ends (Ctrl-D, end of a pipe)
    exit_at_eof: bool = True


@hookimpl
def botkit_register_adapters(register) -> None:
    register("console", "botkit_plugins.console.adapter:ConsoleAdapter", ConsoleConfig)
