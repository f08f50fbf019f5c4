"""The console adapter: chat with the bot in a terminal, or pipe questions through it.

Interactive (stdin is a terminal): a prompt with line editing and history
(prompt_toolkit), the answer growing in place as it streams, `/new` for a new thread.
Ctrl-C stops the answer in progress; Ctrl-C at the prompt leaves (exit status 130),
`/quit` or Ctrl-D too (0). Log lines never land inside an answer: they are held while
it streams and printed above the prompt. Piped: one question per line, each final
answer printed, and the bot stops at the end of input.
"""

from __future__ import annotations

from pathlib import Path

from botkit import hookimpl
from botkit.config import Section


class ConsoleConfig(Section):
    #: None: interactive when stdin is a terminal
    interactive: bool | None = None
    prompt: str = "you> "
    user: str = "console-user"
    #: stop the bot when input ends (Ctrl-D, end of a pipe)
    exit_at_eof: bool = True
    #: questions typed at the prompt, kept between runs (None: this run only)
    history_file: Path | None = Path("~/.local/state/botkit/console_history")
    #: read questions from stdin; `botkit ask` turns this off and asks its one question itself
    read_input: bool = True


@hookimpl
def botkit_register_adapters(register) -> None:
    register("console", "botkit_plugins.console.adapter:ConsoleAdapter", ConsoleConfig)
