"""The console adapter's implementation (stdin/stdout)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import uuid
from typing import TextIO

from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, Stopping, Unavailable
from botkit.events import Inbound, ThreadKey
from botkit_plugins.console import ConsoleConfig

_ERASE_LINE = "\x1b[2K\r"
_UP = "\x1b[1A"


class ConsoleAdapter(Adapter):
    platform = "console"

    def __init__(self, name: str, config: ConsoleConfig, bot, *, stdin: TextIO | None = None,
                 stdout: TextIO | None = None) -> None:
        super().__init__(name, config, bot)
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout
        self.interactive = config.interactive if config.interactive is not None else self.stdin.isatty()
        self.capabilities = Capabilities(max_length=1_000_000, edit_interval=0.05 if self.interactive else 0.0,
                                         markup="plain")
        self.placeholder = "thinking…"
        self._threads = itertools.count(1)
        self._thread = ThreadKey("console", "local", "console", str(next(self._threads)))
        self._shown: dict[str, str] = {}  # message id -> text on screen (interactive redraw)
        self._last_id: str | None = None
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._read_loop(), name="console-input")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _read_loop(self) -> None:
        config: ConsoleConfig = self.config  # type: ignore[assignment]
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:  # a daemon thread: a pending readline never blocks shutdown
            for line in self.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        if self.interactive:
            self._write("botkit console — ask a question; /new starts a new thread, /quit leaves.\n")
        while True:
            if self.interactive:
                self._write(config.prompt)
            line = await lines.get()
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            text = line.strip()
            if not text:
                continue
            if text == "/new":
                self._thread = ThreadKey("console", "local", "console", str(next(self._threads)))
                self._write(f"(new thread {self._thread.thread})\n")
                continue
            inbound = Inbound(uuid.uuid4().hex, self._thread, config.user, text, adapter=self.name,
                              user_name=config.user, is_direct=True)
            try:
                if await self.bot.submit(inbound):
                    await self.bot.idle()  # one question at a time, like a person at a terminal
            except Stopping:
                break
            except Unavailable as exc:
                self._write(f"{exc.notice or exc}\n")
        if self.interactive:
            self._write("\n")
        if config.exit_at_eof:
            self.bot.request_stop()

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
        text = message.plain()
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
