"""Fakes and fixtures for testing botkit and its plugins through the real dispatcher.

This module is itself a plugin (name it under `plugins:` or let `running_bot` do it):
it registers a scripted backend `fake` and an in-memory adapter `recording`.

    async with running_bot({"adapters": {"rec": {"type": "recording"}},
                            "backends": {"b": {"type": "fake", "answer": "Hi [1]"}}}, tmp_path) as bot:
        await bot.adapters["rec"].inject("hello")
        await bot.idle(5)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import glob
import importlib
import itertools
import json
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from aiohttp import web
from pydantic import Field

from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, RateLimited
from botkit.backends import Backend, Question, Session
from botkit.bot import Bot, load
from botkit.config import Section
from botkit.extras import install_hint
from botkit.events import (AnswerEvent, Attachment, Done, Failed, Inbound, Score, SessionInfo, Source, Sources, Status,
                           TextDelta, ThreadKey)
from botkit.files import FileNotRead
from botkit.markup import Markup
from botkit.plugins import await_me_maybe, hookimpl


# -- the scripted backend ---------------------------------------------------------------


class FakeSource(Section):
    title: str
    url: str | None = None
    snippet: str | None = None


class FakeBackendConfig(Section):
    #: the answer; "{question}" is replaced by the question, "{turn}" by the turn number
    answer: str = "You asked: {question}"
    chunks: int = Field(1, ge=1)
    sources: list[FakeSource] = []
    score: float | None = None
    #: yield Failed after this many chunks
    fail_after: int | None = None
    #: seconds to wait before each chunk
    delay: float = 0.0
    #: up to this many seconds more before each chunk, at random (latencies as real backends have)
    jitter: float = Field(0.0, ge=0)
    #: give the session id in SessionInfo on the first turn (like Vectara)
    session_prefix: str = "fake-session-"
    #: read every file on the question (`Question.read`); what it got is in `FakeBackend.files`
    read_files: bool = False
    #: a progress status before the answer (a backend saying it searches), None: none
    status: str | None = None


class FakeBackend(Backend):
    """Streams its configured answer in `chunks` pieces; records every call.

    Tests may set `gate` (an asyncio.Event) to hold every answer until it is set, `midway`
    to hold it after its first chunk, `script` (a callable (session, question) -> list of events) to say anything,
    or `steps` (an asyncio.Queue) to feed the answer's events one at a time, up to a `Done` or `Failed`.
    """

    def __init__(self, name: str, config: FakeBackendConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.calls: list[tuple[str | None, str]] = []
        self.gate: asyncio.Event | None = None
        self.midway: asyncio.Event | None = None  # set: after its first chunk an answer waits for it
        self.script: Callable[[Session, Question], list[AnswerEvent]] | None = None
        self.steps: asyncio.Queue | None = None
        self.deleted: list[str] = []
        self.ended: list[str] = []
        #: with `read_files`: (file name, its content, or why it could not be read)
        self.files: list[tuple[str, bytes | str]] = []
        self._ids = itertools.count(1)

    async def end_session(self, session_id: str) -> None:
        self.ended.append(session_id)

    async def delete_session(self, session_id: str) -> bool:
        self.deleted.append(session_id)
        return True

    async def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        config: FakeBackendConfig = self.config  # type: ignore[assignment]
        self.calls.append((session.session_id, question.text))
        if self.gate is not None:
            await self.gate.wait()
        if config.read_files:
            for attachment in question.attachments:
                try:
                    self.files.append((attachment.name, await question.read(attachment)))
                except FileNotRead as exc:
                    self.files.append((attachment.name, exc.reason))
        if self.script is not None:
            for event in self.script(session, question):
                yield event
            return
        if self.steps is not None:
            while True:
                event = await self.steps.get()
                yield event
                if isinstance(event, (Done, Failed)):
                    return
        if session.session_id is None:
            yield SessionInfo(f"{config.session_prefix}{next(self._ids)}")
        if config.status is not None:
            yield Status(config.status)
        if config.sources:
            yield Sources([Source(i, s.title, s.url, s.snippet) for i, s in enumerate(config.sources, start=1)])
        text = config.answer.replace("{question}", question.text).replace("{turn}", str(session.turn_count + 1))
        size = -(-len(text) // config.chunks)
        for n, start in enumerate(range(0, len(text), size)):
            if config.fail_after is not None and n >= config.fail_after:
                yield Failed("the fake backend failed on purpose")
                return
            if config.delay or config.jitter:
                await asyncio.sleep(config.delay + random.uniform(0, config.jitter))
            yield TextDelta(text[start:start + size])
            if n == 0 and self.midway is not None:
                await self.midway.wait()
        if config.score is not None:
            yield Score(config.score)
        yield Done()


# -- the recording adapter -----------------------------------------------------------------


class RecordingConfig(Section):
    max_length: int = 4000
    edit_interval: float = 0.0
    markup: Markup = Markup.MARKDOWN
    #: false: a platform whose messages cannot be edited (answers are sent once, complete)
    can_edit: bool = True
    platform: str = "test"
    workspace: str = "w1"
    channel: str = "c1"
    #: post a placeholder as progress (else show nothing until the first text)
    placeholder: bool = True
    #: a name: adapters with the same one share their posted messages, like a platform that
    #: outlives a bot restarting in the same process (crash and recovery tests)
    world: str | None = None


@dataclass
class _World:
    """The messages a recording "platform" holds: they outlive a bot that restarts."""

    messages: dict[str, Outgoing] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    replied_to: dict[str, str] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


_WORLDS: dict[str, _World] = {}


def copy_world(name: str) -> str:
    """What the recording platform `name` holds now, kept under a new name that a restarted
    bot can be given (`world:`): the platform as a crash at this moment leaves it."""
    copied = f"{name}-after"
    _WORLDS[copied] = copy.deepcopy(_WORLDS[name])
    return copied


@dataclass(frozen=True, slots=True)
class Delivery:
    """One post or edit the recording adapter was asked for; `at` is `time.monotonic()` when it
    was asked (the clock of `Inbound.received_at`), so a test can see what came when."""

    kind: str  # "send" | "edit"
    message_id: str
    message: Outgoing
    at: float


class RecordingAdapter(Adapter):
    """Keeps every message it was asked to post or edit (`deliveries`); `inject` plays the user.

    `fail_next` makes the next send/edit raise `RateLimited(retry_after)` for each
    value it holds (tests of 429 handling).
    """

    platform = "test"

    def __init__(self, name: str, config: RecordingConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.platform = config.platform
        self.capabilities = Capabilities(config.max_length, config.edit_interval, config.markup,
                                         can_edit=config.can_edit)
        # what is on the "platform": kept across bot restarts in one process when `world` is named
        world = _WORLDS.setdefault(config.world, _World()) if config.world else _World()
        self.messages: dict[str, Outgoing] = world.messages
        self.order: list[str] = world.order  # message ids in posting order
        self.replied_to: dict[str, str] = world.replied_to  # message id -> event id of the question it answers
        self.deliveries: list[Delivery] = []
        self.fail_next: list[float] = []
        #: when set to Events, a post (a final edit) is on the platform but does not return until
        #: set: a test holds the moment after the platform took it, before the bot knows
        self.hold_send: asyncio.Event | None = None
        self.hold_final: asyncio.Event | None = None
        #: what `download` serves: an attachment's url -> its content
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []  # urls downloaded, in order
        self.changed = asyncio.Condition()
        self._ids = world.ids
        self._events = itertools.count(1)

    def thread(self, thread: str = "t1") -> ThreadKey:
        config: RecordingConfig = self.config  # type: ignore[assignment]
        return ThreadKey(self.platform, config.workspace, config.channel, thread)

    async def inject(self, text: str, *, thread: str = "t1", event_id: str | None = None, user: str = "u1",
                     direct: bool = False, attachments: tuple[Attachment, ...] = ()) -> bool:
        """Deliver a user's message as the platform would; returns what `submit` said.
        Attachments are downloaded from `files` (by their url)."""
        inbound = Inbound(event_id or f"ev{next(self._events)}", self.thread(thread), user, text,
                          adapter=self.name, is_direct=direct, attachments=attachments)
        return await self.bot.submit(inbound)

    async def download(self, attachment: Attachment, limit: int) -> bytes:
        self.downloads.append(attachment.url or "")
        content = self.files.get(attachment.url or "")
        if content is None:
            raise FileNotRead("the platform no longer has it")
        return content[:limit + 1]

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        if not self.config.placeholder:  # type: ignore[attr-defined]
            return None
        return await super().show_progress(inbound)

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        self._maybe_fail()
        message_id = f"m{next(self._ids)}"
        self.order.append(message_id)  # as a platform has it: the reply is in its thread when it shows
        if reply_to is not None:
            self.replied_to[message_id] = reply_to.event_id
        await self._record("send", message_id, message)
        if self.hold_send is not None:
            await self.hold_send.wait()
        return _ref(thread, message_id)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        self._maybe_fail()
        await self._record("edit", ref.message_id, message)
        if message.final and self.hold_final is not None:
            await self.hold_final.wait()

    async def find_orphan(self, inbound: Inbound, placeholder: Outgoing) -> MessageRef | None:
        """The message posted in answer to `inbound` that still reads `placeholder`, as a
        platform that can list a thread's messages finds it."""
        for message_id, event_id in self.replied_to.items():
            if event_id == inbound.event_id and self.messages[message_id] == placeholder:
                return _ref(inbound.thread, message_id)
        return None

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise RateLimited(self.fail_next.pop(0))

    @property
    def calls(self) -> list[tuple[str, str, Outgoing]]:
        """`deliveries` without their times: ("send"|"edit", message id, message)."""
        return [(d.kind, d.message_id, d.message) for d in self.deliveries]

    async def _record(self, kind: str, message_id: str, message: Outgoing) -> None:
        self.messages[message_id] = message
        self.deliveries.append(Delivery(kind, message_id, message, time.monotonic()))
        async with self.changed:
            self.changed.notify_all()

    def texts(self) -> list[str]:
        """Every message as it reads now (`plain()`), in posting order."""
        return [self.messages[m].plain() for m in self.order]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds after some send/edit; TimeoutError otherwise."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)


def _ref(thread: ThreadKey, message_id: str) -> MessageRef:
    return MessageRef(thread, message_id, {"thread": thread.thread})


@hookimpl
def botkit_register_backends(register) -> None:
    register("fake", FakeBackend, FakeBackendConfig)


@hookimpl
def botkit_register_adapters(register) -> None:
    register("recording", RecordingAdapter, RecordingConfig)


# -- waiting in tests -------------------------------------------------------------------------


async def read_until(stream: asyncio.StreamReader, pattern: str | re.Pattern[str], seen: list[str]) -> re.Match[str]:
    """Read a process's output (`botkit run` in a test) line by line, each kept in `seen`,
    until one matches `pattern`; AssertionError with everything read when it ends first."""
    while line := (await stream.readline()).decode():
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError("botkit exited early:\n" + "".join(seen))


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, *,
                     every: float = 0.01) -> None:
    """Until `check()` holds (it may be async), looked at every `every` seconds.

    For conditions nothing signals: a lease running out in the database, a file growing,
    a flag another task flips. Bounded: `TimeoutError` after `timeout` seconds.
    """
    async with asyncio.timeout(timeout):
        while not await await_me_maybe(check()):
            await asyncio.sleep(every)


# -- fake servers ------------------------------------------------------------------------------


async def serve_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 at a free port: how every fake remote API here listens.

    Returns the runner (call `cleanup()` to stop) and the port.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@dataclass(slots=True)
class Recorded:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None


@dataclass(slots=True)
class Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


async def send_stream(request: web.Request, parts: Iterable[str | bytes], *, content_type: str = "text/event-stream",
                      gate: asyncio.Event | None = None, pace: float = 0.0) -> web.StreamResponse:
    """Write `parts` as one streamed response, `pace` seconds apart; with `gate`, wait for
    it after the first part."""
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
    await response.prepare(request)
    for n, part in enumerate(parts):
        if pace and n:
            await asyncio.sleep(pace)  # a model generating, token after token
        await response.write(part.encode() if isinstance(part, str) else part)
        if n == 0 and gate is not None:
            await gate.wait()
    await response.write_eof()
    return response


class FakeServer(ABC):
    """A remote HTTP API faked on loopback: the base of every built-in backend's fake, and of a
    plugin author's.

    It records every request (`requests`, `calls`, `wait_requests`) and can be told to fail the
    next ones (`fail_next`: status, body, `Retry-After`; `drop_next`: a broken connection) or to
    replay raw stream bytes (`streams`, e.g. a captured fixture) instead of what the subclass's
    routes would generate.

        class FakeEcho(FakeServer):
            def add_routes(self, router):
                router.add_post("/v1/echo", self.echo)
            async def echo(self, request):
                return await send_stream(request, words("Hello there"), gate=self.gate)

        async with FakeEcho() as fake:
            config = {"type": "echo", "base_url": fake.url}
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        #: how many of the next requests get a stream whose connection breaks before its first byte
        self.drops = 0
        #: raw bodies replayed, in order, by the next streaming requests instead of generated ones
        self.streams: list[bytes] = []
        #: set to hold generated streams after their first event until the test releases them
        self.gate: asyncio.Event | None = None
        #: seconds between the parts of a generated stream
        self.pace = 0.0
        self.received = asyncio.Condition()
        self.app = web.Application(middlewares=[self._record])
        self.add_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Mount the API this fake speaks."""

    async def start(self) -> str:
        self._runner, port = await serve_loopback(self.app)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def fail_next(self, status: int, body: Any = None, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.failures.extend(Failure(status, body, headers) for _ in range(times))

    def drop_next(self, times: int = 1) -> None:
        """The next requests get `200 text/event-stream` and then a dropped connection, no event."""
        self.drops += times

    def calls(self, method: str, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    async def wait_requests(self, count: int, timeout: float = 5) -> None:
        async with self.received:
            await asyncio.wait_for(self.received.wait_for(lambda: len(self.requests) >= count), timeout)

    def replay(self) -> bytes | None:
        """The next scripted raw stream, if any."""
        return self.streams.pop(0) if self.streams else None

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            raw = await request.read()
        except ConnectionResetError:  # the client is gone (a bot killed mid-request): nothing to answer
            return web.Response(status=499)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        async with self.received:
            self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                          dict(request.headers), body))
            self.received.notify_all()
        if self.drops:
            self.drops -= 1
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            assert request.transport is not None
            request.transport.abort()
            return response
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure.body, (dict, list)):
                return web.json_response(failure.body, status=failure.status, headers=failure.headers)
            return web.Response(status=failure.status, text=failure.body or "", headers=failure.headers)
        return await handler(request)


def openai_chunk(delta: dict[str, Any], finish_reason: str | None = None, usage: dict[str, Any] | None = None,
                 model: str = "model") -> str:
    """One `data:` event of an OpenAI chat-completions stream."""
    chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
             "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    if usage is not None:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


def words(text: str, parts: int = 3) -> list[str]:
    """`text` cut into about `parts` pieces at spaces (each keeps its leading space)."""
    tokens = text.split(" ")
    size = max(1, -(-len(tokens) // parts))
    pieces = [" ".join(tokens[i:i + size]) for i in range(0, len(tokens), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


#: the loopback fakes of the built-in platforms and backends, imported only when started (a
#: plugin author without slack-bolt or the Teams extra can still start the others)
BUILT_IN_FAKES = {
    "slack": "botkit_plugins.slack.testing:FakeSlack",
    "discord": "botkit_plugins.discord.testing:FakeDiscord",
    "teams": "botkit_plugins.teams.testing:FakeBotFramework",
    "vectara": "botkit_plugins.vectara.fake:FakeVectara",
    "openai": "botkit_plugins.openai.fake:FakeOpenAI",
    "ragflow": "botkit_plugins.ragflow.fake:FakeRagflow",
    "llamacloud": "botkit_plugins.llamacloud.fake:FakeLlamaCloud",
}


class LoopbackFakes:
    """Starts fakes of the built-in platforms and backends on 127.0.0.1; `close` stops them all.

        slack = await fakes.start("slack")            # a FakeSlack: configure api_url=slack.api_url
        vectara = await fakes.start("vectara", api_key="zqt_test")
    """

    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()

    async def start(self, name: str, **options: Any) -> Any:
        """A started fake of `name` (a key of `BUILT_IN_FAKES`), built with `options`."""
        if name not in BUILT_IN_FAKES:
            raise KeyError(f"no loopback fake {name!r}; there are: {', '.join(BUILT_IN_FAKES)}")
        module, _, cls = BUILT_IN_FAKES[name].partition(":")
        try:
            fake = getattr(importlib.import_module(module), cls)(**options)
        except ImportError as exc:
            hint = install_hint(name)
            raise RuntimeError(f"the {name} fake needs {exc.name!r}" + (f": {hint}" if hint else "")) from exc
        if hasattr(fake, "__aenter__"):
            return await self._stack.enter_async_context(fake)
        await fake.start()
        self._stack.push_async_callback(fake.close)
        return fake

    async def close(self) -> None:
        await self._stack.aclose()


# -- running a bot in a test -----------------------------------------------------------------


def write_config(config: dict[str, Any], directory: Path) -> Path:
    """Write `config` as a YAML deployment in `directory` (store there, this plugin loaded)."""
    data = dict(config)
    data.setdefault("store", {"url": "sqlite:///botkit-test.db"})
    plugins = list(data.get("plugins") or [])
    if "botkit.testing" not in plugins:
        plugins.append("botkit.testing")
    data["plugins"] = plugins
    data.setdefault("server", {"host": "127.0.0.1", "port": 0})
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running_bot(config: dict[str, Any], tmp_path: Path, *, grace: float = 5.0) -> AsyncIterator[Bot]:
    """A started `Bot` for `config` (a dict shaped like the YAML), stopped on exit."""
    bot = Bot(*load(write_config(config, tmp_path)))
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop(grace)


# -- a throwaway PostgreSQL -------------------------------------------------------------------


POSTGRES_USER = "botkit"


@dataclass(slots=True)
class PostgresServer:
    """A PostgreSQL server started by `postgres_server`, on 127.0.0.1."""

    bindir: Path
    socket_dir: Path  # its unix socket: local connections need no password (trust)
    port: int
    password: str | None
    data: Path
    options: str  # what `pg_ctl start -o` is given
    run_as: list[str] = field(default_factory=list)  # (as root: runuser -u postgres --)

    def stop(self) -> None:
        """Shut the server down at once (connections cut, as in a crash or a failover)."""
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate",
                        "-w"], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start it again, on the same port and files."""
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "start", "-D", str(self.data), "-w", "-t", "30",
                        "-l", str(self.data.parent / "log"), "-o", self.options],
                       check=True, capture_output=True, timeout=60)

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL (with the password when the server asks for one)."""
        subprocess.run([str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                        "-U", POSTGRES_USER, name], check=True, capture_output=True, timeout=30)
        return self.url(name)

    def url(self, database: str, *, password: str | None = None) -> str:
        password = self.password if password is None else password
        user = f"{POSTGRES_USER}:{quote(password, safe='')}" if password else POSTGRES_USER
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def child_processes(pid: int | str = "self") -> list[int]:
    """The processes `pid` started and that run now (a bot's: its SQLite store's process)."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as listed:
            found += map(int, listed.read().split())
    return found


def free_port() -> int:
    """A TCP port nothing listens on right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def postgres_server(*, password: str | None = None, max_connections: int = 200,
                    settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL, yield it, stop it and delete its files (also on errors).

    The distribution's binaries, a data directory in a temporary folder, 127.0.0.1 on a free
    port and a unix socket; durability off (it holds test data). With `password`, TCP
    connections must give it (scram), so tests can prove a client passes it; without, they
    are trusted. `settings` are more server settings (`-c name=value`). PostgreSQL refuses to
    run as root: as root it runs as `postgres`.
    """
    bindir = postgres_binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="botkit-pg-"))
    run_as: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        owner = (account.pw_uid, account.pw_gid)
        os.chown(base, *owner)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    auth = ["--auth=trust"]
    if password is not None:
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        if owner is not None:
            os.chown(pwfile, *owner)
        auth = [f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256"]

    try:
        subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", POSTGRES_USER, *auth, "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, timeout=60)
        port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
                   f" -c full_page_writes=off -c max_connections={max_connections}"
                   + "".join(f" -c {name}={value}" for name, value in (settings or {}).items()))
        server = PostgresServer(bindir, base, port, password, data, options, run_as)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- a real browser ----------------------------------------------------------------------------

#: Debian's Chromium (`apt-get install chromium`); Playwright's own browser download is not used
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's) driven by Playwright for Python: a
    `playwright.async_api.Browser`, closed on exit. Needs `playwright` (a dev dependency)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()
