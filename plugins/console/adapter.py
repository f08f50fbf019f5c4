"""The console adapter's implementation: prompt_toolkit at a terminal, lines from a pipe."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from botkit import hookimpl
from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, Stopping, Unavailable
from botkit.markup import Markup
from botkit.events import Inbound, ThreadKey
from botkit.terminal import decodable, printable
from botkit_plugins.console import ConsoleConfig

if TYPE_CHECKING:
    from botkit.turn import Answer, Turn

_ERASE_LINE = "\x1b[2K\r"
_UP = "\x1b[1A"
#: the exit status of a console left with Ctrl-C (128 + SIGINT), as shells expect
EXIT_INTERRUPTED = 130


class HeldLog(logging.Handler):
    """Stands in for the root log handlers while the console owns the terminal.

    Lines logged while an answer streams are held and printed after it; others are written
    to `sys.stderr` as it is at that moment, which prompt_toolkit's `patch_stdout` points
    above the prompt while one is shown. Each line is filtered and formatted by the handler
    it replaces (secrets redacted, JSON or text as configured).
    """

    def __init__(self) -> None:
        super().__init__()
        self.inner: list[logging.Handler] = []
        self.held: list[str] | None = None

    def install(self) -> None:
        root = logging.getLogger()
        self.inner = list(root.handlers)
        for handler in self.inner:
            root.removeHandler(handler)
        root.addHandler(self)

    def uninstall(self) -> None:
        self.show_held()
        root = logging.getLogger()
        root.removeHandler(self)
        for handler in self.inner:
            root.addHandler(handler)

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self.inner:
            if record.levelno >= handler.level and handler.filter(record):
                line = handler.format(record)
                if self.held is not None:
                    self.held.append(line)
                else:
                    _write_err(line)

    def hold(self) -> None:
        self.held = []

    def show_held(self) -> None:
        held, self.held = self.held, None
        for line in held or ():
            _write_err(line)


def _write_err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class ConsoleAdapter(Adapter):
    platform = "console"
    config: ConsoleConfig

    def __init__(self, name: str, config: ConsoleConfig, bot, *, stdin: TextIO | None = None,
                 stdout: TextIO | None = None) -> None:
        super().__init__(name, config, bot)
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout
        self.interactive = config.interactive if config.interactive is not None else self.stdin.isatty()
        self.capabilities = Capabilities(max_length=1_000_000, edit_interval=0.05 if self.interactive else 0.0,
                                         markup=Markup.PLAIN)
        self.placeholder = "thinking…"
        # each run starts its own threads: a thread of an earlier run, kept in a file store,
        # would answer as if its answers were still on the screen
        self._run = uuid.uuid4().hex[:8]
        self._threads = itertools.count(1)
        self._thread = self._new_thread()
        self._shown: dict[str, str] = {}  # message id -> text on screen (interactive redraw)
        self._last_id: str | None = None
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._log = HeldLog()
        self._answering = False
        self._cancel_pending = False  # Ctrl-C came before the answer started streaming
        self._outcomes: dict[str, str | None] = {}  # event id asked by `ask` -> its answer's status

    async def start(self) -> None:
        if not self.config.read_input:
            return
        if self.interactive:
            self._log.install()
            self._task = asyncio.create_task(self._prompt_loop(), name="console-prompt")
        else:
            self._task = asyncio.create_task(self._pipe_loop(), name="console-input")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.interactive and self.config.read_input:
            self._log.uninstall()

    # -- questions -------------------------------------------------------------------------------

    def _new_thread(self) -> ThreadKey:
        return ThreadKey("console", "local", "console", f"{self._run}-{next(self._threads)}")

    def _inbound(self, text: str) -> Inbound:
        return Inbound(uuid.uuid4().hex, self._thread, self.config.user, decodable(text), adapter=self.name,
                       user_name=self.config.user, is_direct=True)

    async def ask(self, text: str) -> str | None:
        """Ask one question and wait for its answer (`botkit ask`); the answer's status, or None
        when there was no answer (a command, or a middleware refused it)."""
        inbound = self._inbound(text)
        self._outcomes[inbound.event_id] = None
        try:
            if await self.bot.submit(inbound):
                await self.bot.idle()
            return self._outcomes[inbound.event_id]
        finally:
            del self._outcomes[inbound.event_id]

    @hookimpl
    def botkit_answer_complete(self, turn: Turn, answer: Answer) -> None:
        if turn.inbound.event_id in self._outcomes:
            self._outcomes[turn.inbound.event_id] = answer.status

    async def _handle(self, line: str) -> bool:
        """One line typed or piped; False when it asks to leave."""
        text = line.strip()
        if text in ("/quit", "/exit"):
            return False
        if text == "/new":
            self._thread = self._new_thread()
            self._write(f"(new thread {self._thread.thread})\n")
        elif text:
            inbound = self._inbound(text)
            self._answering, self._cancel_pending = True, False
            if self.interactive:
                self._log.hold()
                # Ctrl-C is ours while the answer streams (the prompt, and the bot, set their own before)
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._interrupted)
            try:
                if await self.bot.submit(inbound):
                    await self.bot.idle()  # one question at a time, like a person at a terminal
            except Stopping:
                raise
            except Unavailable as exc:  # the store cannot write: nothing was taken, say so
                self._write(f"{exc.notice or exc}\n")
            finally:
                self._answering = False
                self._log.show_held()
        return True

    async def _pipe_loop(self) -> None:
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        if hasattr(self.stdin, "reconfigure"):
            self.stdin.reconfigure(errors="replace")  # bytes that are not UTF-8 become U+FFFD, not a crash

        def read() -> None:  # a daemon thread: a pending readline never blocks shutdown
            for line in self.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        try:
            while (line := await lines.get()) is not None:
                if not await self._handle(line):
                    break
        except Stopping:
            return
        if self.config.exit_at_eof:
            self.bot.request_stop()

    async def _prompt_loop(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history: History = InMemoryHistory()
        if self.config.history_file is not None:
            path = self.config.history_file.expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                history = FileHistory(str(path))
            except OSError as exc:
                logging.getLogger("botkit.console").warning("console history not kept: %s: %s", path, exc.strerror)
        session: PromptSession[str] = PromptSession(history=history)
        self._write("botkit console — ask a question; /new starts a new thread; Ctrl-C stops an answer; "
                    "Ctrl-D or /quit leaves.\n")
        status = 0
        try:
            while True:
                try:
                    with patch_stdout(raw=True):
                        line = await session.prompt_async(self.config.prompt)
                except KeyboardInterrupt:
                    status = EXIT_INTERRUPTED
                    break
                except EOFError:
                    break
                if not await self._handle(line):
                    break
        except Stopping:
            return
        if status or self.config.exit_at_eof:
            self.bot.request_stop(status)

    def _interrupted(self) -> None:
        """SIGINT (Ctrl-C) while no prompt reads keys: stop the answer; a second time, leave."""
        if not self._answering or self._cancel_pending:
            self.bot.request_stop(EXIT_INTERRUPTED)
            return
        self._cancel_pending = True
        self._cancel()

    def _cancel(self) -> None:
        """Stop the answer in progress if it is streaming; else when it starts to (send/edit)."""
        dispatcher: Any = self.bot.dispatcher
        if self._cancel_pending and dispatcher is not None and dispatcher.cancel(self._thread):
            self._cancel_pending = False

    # -- output ----------------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        if not self.interactive:
            return None
        return await super().show_progress(inbound)

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        ref = MessageRef(thread, f"c{next(self._ids)}")
        self._shown[ref.message_id] = ""
        self._last_id = ref.message_id
        await self.edit(ref, message)
        return ref

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        self._cancel()
        text = printable(message.plain(), keep_lines=True)
        if not self.interactive:
            if message.final:
                self._write(text.rstrip() + "\n\n")
            return
        old = self._shown.get(ref.message_id, "")
        if text.startswith(old) and ref.message_id == self._last_id:
            self._write(text[len(old):])  # streaming: only the new part
        else:
            self._redraw(old, text)
        self._shown[ref.message_id] = text
        if message.final:
            self._write("\n\n")
            self._shown.pop(ref.message_id, None)

    def _redraw(self, old: str, new: str) -> None:
        """Replace the last message on screen (it is always the one being edited)."""
        rows = old.count("\n")
        self._write(_ERASE_LINE + (_UP + _ERASE_LINE) * rows + new)

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
