"""Chaos: SIGKILL the real bot while it answers, and count what people would notice.

    python bench/chaos.py crash --runs 10                  # kill the bot, restart it on the same SQLite store
    python bench/chaos.py replicas --replicas 3 --runs 10  # 3 bots on one PostgreSQL; kill one, no restart
    python bench/chaos.py diskfull --runs 10               # the SQLite store's disk is full for a while
    python bench/chaos.py dbdown --runs 10                 # 2 bots on one PostgreSQL, which stops for a while
    python bench/chaos.py crash --botkit-python /tmp/venv-before/bin/python   # another install of botkit

Each run starts `botkit run` (the console script of `--botkit-python`) against two loopback
fakes living in this process, so a kill takes neither them nor what they recorded: the fake
Slack of plugins/slack/testing.py (HTTP Events API, signed) and a slow OpenAI-compatible
backend (bench/chaos_fakes.py). `--threads` people each ask `--questions` questions in
their own thread, one after another, each once the previous delivery got its HTTP 200;
a delivery that is refused or not answered 200 is retried the way Slack does (same
event_id, `X-Slack-Retry-Num`) until `--ack-timeout`. In replicas mode every delivery goes
to two replicas at once. At a random moment under load one process gets SIGKILL; crash
mode restarts it, replicas mode leaves the others to take over. Diskfull mode kills nothing:
for `--fault-seconds` the bot cannot write a byte to any file (its file-size limit is set to
one byte from outside, `prlimit`: SQLite's commits fail as on a full disk), then it can
again; `refused` counts the deliveries it answered 503 meanwhile. Dbdown mode kills no bot
either: the PostgreSQL server of `--replicas` bots is shut down at once (`pg_ctl stop -m
immediate`, every connection cut) and started again `--fault-seconds` later. Once every acked question
is answered, marked or told to ask again (or `--settle` seconds passed), the bots are
stopped and the run is judged from what the fakes saw (bench/chaos_eval.py):

    tried, acked      questions sent / acknowledged with a 200
    answered          the complete answer is on screen in the question's thread
    marked            the answer cut off shows what it had plus an "interrupted" notice
    re-answered       acked before the kill, answered by another process than the killed one in a
                      thread the killed one had (crash: all; replicas: where the kill cut an answer off)
    told              a notice says "ask again" (resolved, but reported)
    stuck             bot messages left reading the placeholder ("thinking…") or nothing   (failure)
    erased            bot messages whose answer text was later taken away                    (failure)
    lost              acked, but neither answered, marked nor told                           (failure)
    duplicated        answered twice, or the backend asked twice                             (failure)
    out-of-order      a later question of its thread reached the backend or the screen first (failure)

The `killed` column says which process got the SIGKILL and how many backend requests had
been made by then (`p0@57`); `--details N` lists what failed where, `--json` keeps it all.
Exit status: 0 when no run had a failure, 1 when one had, 2 when the tool could not run.
Config keys the bot under test may or may not know (e.g. `recovery: {lease_ttl: 5}`) go
in with `--bot-config-extra`, merged into the generated config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from botkit.testing import PostgresServer, child_processes, free_port, postgres_server
from botkit_plugins.slack.testing import BOT_USER, FakeSlack, event_callback, sign
from chaos_eval import Counts, Question, Screen, evaluate, unresolved
from chaos_fakes import API_KEY_PREFIX, ChaosBackend

SECRET = "chaos-signing-secret"
#: prefix of every bot process' Slack token; the rest names the process, so each call is attributable
TOKEN_PREFIX = "xoxb-chaos-"
#: run the `botkit` console script of whichever Python runs this (argv follows)
LAUNCH = ("import sys; from importlib.metadata import entry_points; sys.argv[0] = 'botkit'; "
          "sys.exit(entry_points(group='console_scripts', name='botkit')['botkit'].load()())")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
#: a Slack delivery that is not answered within this many seconds has failed (Slack's deadline)
SLACK_DEADLINE = 3.0


class ToolError(Exception):
    """The run could not happen (a bot did not start...): not a finding about the bot."""


#: modes that kill no bot: what the killed column says instead, and what the refusals were during
FAULTS = {"diskfull": ("disk full", "the disk was full"), "dbdown": ("db down", "the database was down")}


@dataclass(slots=True)
class Settings:
    mode: str
    runs: int
    threads: int
    questions: int
    replicas: int
    seed: int
    settle: float
    ack_timeout: float
    fault_seconds: float
    python: str
    extra: dict[str, Any]
    logs: Path | None
    json: Path | None
    details: int


@dataclass(slots=True)
class RunResult:
    run: int
    killed: str
    asks_at_kill: int  # backend requests made when the kill landed
    settled: bool
    seconds: float
    counts: Counts
    findings: list[str]
    refused: int  # deliveries answered 503 (diskfull: while the store could not write)


# -- the bot processes ---------------------------------------------------------------------


class BotProcess:
    """One `botkit run` process; its Slack token and backend key carry its name."""

    def __init__(self, name: str, python: str, config: Path, port: int) -> None:
        self.name = name
        self.python = python
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = config.parent / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
        env.update(NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", CHAOS_SLACK_TOKEN=TOKEN_PREFIX + self.name,
                   CHAOS_API_KEY=API_KEY_PREFIX + self.name)
        self.proc = await asyncio.create_subprocess_exec(
            self.python, "-c", LAUNCH, "run", "-c", str(self.config), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=self.config.parent,
            start_new_session=True)
        self._output = asyncio.create_task(self._keep_output())

    async def _keep_output(self) -> None:
        """The bot's output into its log file, written by this process: in diskfull mode the
        bot itself cannot write to a file."""
        assert self.proc is not None and self.proc.stdout is not None
        with self.log.open("ab") as log:
            while line := await self.proc.stdout.readline():
                log.write(line)
                log.flush()

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float) -> None:
        """Until /readyz answers 200; ToolError if the process exits or the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                assert self.proc is not None
                raise ToolError(f"bot {self.name} exited with status {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(self.url + "/readyz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise ToolError(f"bot {self.name} not ready within {timeout:g} s:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def wait(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        if self._output is not None:
            await self._output

    async def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (the bot drains), SIGKILL if it is still there after `grace` seconds."""
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), grace)
        except TimeoutError:
            self.proc.send_signal(signal.SIGKILL)
            await self.wait()

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output().splitlines()[-lines:]) or "(no log)"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, mappings key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = deep_merge(merged[key], value)
        merged[key] = value
    return merged


def bot_config(fake: FakeSlack, backend: ChaosBackend, store_url: str, port: int,
               extra: dict[str, Any]) -> dict[str, Any]:
    """The deployment under test: Slack over HTTP events, the OpenAI-compatible backend.

    Token and key come from the environment, so one file serves every process of a run.
    """
    config = {
        "store": {"url": store_url},
        "server": {"host": "127.0.0.1", "port": port},
        "adapters": {"slack": {"type": "slack", "bot_token": "${CHAOS_SLACK_TOKEN}", "signing_secret": SECRET,
                               "api_url": fake.api_url, "edit_interval": 0.25}},
        "backends": {"rag": {"type": "openai", "base_url": backend.url + "/v1", "model": "chaos",
                             "api_key": "${CHAOS_API_KEY}", "max_connections": 100}},
    }
    return deep_merge(config, extra)


# -- the people asking -----------------------------------------------------------------------


def questions_of(run: int, threads: int, per_thread: int) -> tuple[list[Question], dict[str, int]]:
    """Every question of a run, and each thread's root ts -> thread number."""
    questions = [Question(t, i, f"r{run}-t{t:03d}-q{i}", f"Ev{run:02d}T{t:03d}Q{i}")
                 for t in range(threads) for i in range(per_thread)]
    return questions, {_ts(t, 0): t for t in range(threads)}


def _ts(thread: int, index: int) -> str:
    return f"{1600000000 + thread}.{100 + index:06d}"


class People:
    """The load: one task per thread asking its questions in order, delivering like Slack."""

    def __init__(self, fake: FakeSlack, session: aiohttp.ClientSession, targets: list[str], copies: int,
                 ack_timeout: float) -> None:
        self.fake = fake
        self.session = session
        self.targets = targets
        self.copies = copies
        self.ack_timeout = ack_timeout
        self.killed = False
        self.refused = 0  # deliveries answered 503: not taken, to be delivered again

    async def ask(self, questions: list[Question], rng: random.Random) -> None:
        """One person's thread; stops at a question that is never acked (nothing to follow up on)."""
        await asyncio.sleep(rng.uniform(0, 0.5))  # people do not all start at once
        for question in questions:
            if not await self.deliver(question, rng):
                return
            await asyncio.sleep(rng.uniform(0, 0.3))  # time to type the next one

    async def deliver(self, question: Question, rng: random.Random) -> bool:
        """Send the event until some bot answers 200, retrying like Slack; True once acked."""
        event = {"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER}> {question.text}", "channel": "C1",
                 "ts": _ts(question.thread, question.index), "event_ts": _ts(question.thread, question.index)}
        if question.index:
            event["thread_ts"] = _ts(question.thread, 0)
        body = json.dumps(event_callback(event, question.event_id))
        question.sent_at = len(self.fake.calls)
        # the message is in the channel before its event is delivered, as conversations.replies will show
        self.fake.add_message(event["channel"], event["text"], ts=event["ts"], thread_ts=event.get("thread_ts"))
        deadline = time.monotonic() + self.ack_timeout
        reason = ""
        for attempt in range(1_000):
            headers = sign(body, SECRET)
            if attempt:
                headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}
            targets = rng.sample(self.targets, min(self.copies, len(self.targets)))
            statuses = await asyncio.gather(*(self._post(url, body, headers) for url in targets))
            self.refused += statuses.count(503)
            if 200 in statuses:
                question.acked = True
                question.acked_before_kill = not self.killed
                return True
            reason = "http_error" if any(statuses) else "connection_failed"
            backoff = min(1.0, 0.05 * 2 ** attempt)
            if time.monotonic() + backoff > deadline:
                break
            await asyncio.sleep(backoff)
        return False

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> int | None:
        try:
            async with self.session.post(url + "/slack/events", data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=SLACK_DEADLINE)) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None


# -- one run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(settings: Settings, run: int) -> Iterator[Path]:
    """A temporary folder for the run's config, SQLite store and logs; logs kept with --logs."""
    path = Path(tempfile.mkdtemp(prefix="botkit-chaos-"))
    try:
        yield path
    finally:
        if settings.logs is not None:
            keep = settings.logs / f"run-{run:02d}"
            keep.mkdir(parents=True, exist_ok=True)
            for log in path.glob("*.log"):
                shutil.copy(log, keep / log.name)
        shutil.rmtree(path, ignore_errors=True)


def more_calls_than(count: int) -> Callable[[FakeSlack], bool]:
    return lambda fake: len(fake.calls) > count


async def settle(fake: FakeSlack, screen: Screen, questions: list[Question], roots: dict[str, int],
                 timeout: float) -> bool:
    """Wait until every acked question is resolved and no message is stuck; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        screen.update(fake.calls)
        if unresolved(screen, questions, roots) == 0:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await fake.wait_for(more_calls_than(len(fake.calls)), timeout=remaining)
        except TimeoutError:
            return False


@contextlib.asynccontextmanager
async def running(bots: list[BotProcess]) -> AsyncIterator[list[BotProcess]]:
    """Whatever happens, no bot process outlives the run."""
    try:
        yield bots
    finally:
        await asyncio.gather(*(bot.stop() for bot in bots), return_exceptions=True)


async def strike(settings: Settings, rng: random.Random, bots: list[BotProcess], backend: ChaosBackend,
                 people: People, session: aiohttp.ClientSession, pg: PostgresServer | None) -> tuple[BotProcess, int]:
    """SIGKILL one bot (diskfull: fill its disk for a while; dbdown: stop the database for a while)
    at a random moment under load:
    after a random number of backend requests, plus a random fraction of a second. Replicas mode picks a replica that is
    streaming an answer; crash mode restarts the bot on the same config and store.
    Returns the victim and how many backend requests had been made."""
    target = rng.randint(1, max(1, int(settings.threads * settings.questions * 0.7)))
    with contextlib.suppress(TimeoutError):
        await backend.wait_requests(target, timeout=settings.ack_timeout)
    await asyncio.sleep(rng.uniform(0, 0.4))
    if settings.mode == "diskfull":
        asks = len(backend.asks)
        await fill_the_disk(bots[0], settings.fault_seconds)
        return bots[0], asks
    if settings.mode == "dbdown":
        asks = len(backend.asks)
        assert pg is not None
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(settings.fault_seconds)
        await asyncio.to_thread(pg.start)
        return bots[0], asks
    answering = [bot for bot in bots if backend.streaming[bot.name] > 0]
    victim = bots[0] if settings.mode == "crash" else rng.choice(answering or bots)
    victim.kill()
    people.killed = True
    asks = len(backend.asks)
    await victim.wait()
    if settings.mode == "crash":
        bots.append(BotProcess("p1", settings.python, victim.config, victim.port))
        await bots[-1].start()
        await bots[-1].wait_ready(session, 60)
    return victim, asks


async def fill_the_disk(bot: BotProcess, seconds: float) -> None:
    """For `seconds`, `bot` cannot write past the first byte of any file, as on a full disk
    (its RLIMIT_FSIZE, set from outside, and its store's process's: Python ignores SIGXFSZ,
    so writes fail with EFBIG)."""
    assert bot.proc is not None
    pids = [bot.proc.pid, *child_processes(bot.proc.pid)]
    before = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in pids}
    for pid, (_, hard) in before.items():
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        await asyncio.sleep(seconds)
    finally:
        if bot.alive:
            for pid, limits in before.items():
                with contextlib.suppress(ProcessLookupError):
                    resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)


async def one_run(settings: Settings, run: int, pg: PostgresServer | None) -> RunResult:
    """Start the bots, load them, kill one, let the rest settle, judge."""
    started = time.monotonic()
    questions, roots = questions_of(run, settings.threads, settings.questions)
    crash = settings.mode == "crash"
    single = settings.mode in ("crash", "diskfull")  # one bot on SQLite
    with workdir(settings, run) as folder:
        async with FakeSlack() as fake, ChaosBackend(random.Random(f"{settings.seed}:{run}:backend")) as backend, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session, \
                running([]) as bots:
            if single:
                store = f"sqlite:///{folder / 'store.db'}"
            else:
                assert pg is not None
                store = pg.create_database(f"chaos_{run}")
            for name in ["p0"] if single else [f"r{n}" for n in range(settings.replicas)]:
                port = free_port()
                config = folder / f"config-{name}.yaml"
                config.write_text(yaml.safe_dump(bot_config(fake, backend, store, port, settings.extra)))
                bots.append(BotProcess(name, settings.python, config, port))
            await asyncio.gather(*(bot.start() for bot in bots))
            for bot in bots:  # they start side by side; one at a time is only how they are waited for
                await bot.wait_ready(session, 60)

            people = People(fake, session, [bot.url for bot in bots], 1 if single else 2, settings.ack_timeout)
            load = asyncio.gather(*(people.ask([q for q in questions if q.thread == t],
                                               random.Random(f"{settings.seed}:{run}:{t}"))
                                    for t in range(settings.threads)))
            try:
                victim, asks_at_kill = await strike(settings, random.Random(f"{settings.seed}:{run}"), bots,
                                                    backend, people, session, pg)
                await load
            finally:
                load.cancel()  # only if the strike failed: the load ends by itself
            screen = Screen(TOKEN_PREFIX)
            settled = await settle(fake, screen, questions, roots, settings.settle)
            await asyncio.gather(*(bot.stop() for bot in bots))
            screen.update(fake.calls)
            killed = "" if settings.mode in FAULTS else victim.name
            counts, findings = evaluate(screen, questions, roots, backend.asks, killed=killed, crash=crash)
    return RunResult(run, killed or FAULTS[settings.mode][0], asks_at_kill, settled, time.monotonic() - started, counts, findings,
                     people.refused)


# -- reporting -------------------------------------------------------------------------------

_COLUMNS = [("tried", "tried"), ("acked", "acked"), ("answered", "answered"), ("marked", "marked"),
            ("re_answered", "re-answered"), ("told", "told"), ("stuck", "stuck"), ("erased", "erased"),
            ("lost", "lost"), ("duplicated", "duplicated"), ("out_of_order", "out-of-order")]


def _line(run: str, killed: str, cells: list[str], seconds: str) -> str:
    """Six figures, a bar, the five failures: one row of the table."""
    return f"{run:>5} {killed:>10} " + " ".join(cells[:6]) + " | " + " ".join(cells[6:]) + f" {seconds:>6}"


def header() -> str:
    return _line("run", "killed", [f"{title:>{max(5, len(title))}}" for _, title in _COLUMNS], "secs")


def row(run: str, killed: str, counts: Counts, seconds: float) -> str:
    values = counts.as_dict()
    return _line(run, killed, [f"{values[name]:>{max(5, len(title))}}" for name, title in _COLUMNS], f"{seconds:.1f}")


async def chaos(settings: Settings) -> list[RunResult]:
    """All runs, printing a line per run as it ends."""
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        try:
            # (dbdown: commits must outlive the server's immediate shutdown, as on any real server)
            durable = {"synchronous_commit": "on"} if settings.mode == "dbdown" else None
            pg = stack.enter_context(postgres_server(max_connections=500, settings=durable)) \
                if settings.mode in ("replicas", "dbdown") else None
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            raise ToolError(f"no PostgreSQL server for the replicas: {exc}") from exc
        print(header(), flush=True)
        for run in range(1, settings.runs + 1):
            result = await one_run(settings, run, pg)
            results.append(result)
            note = "" if result.settled else f"  (not settled in {settings.settle:g} s)"
            print(row(str(run), f"{result.killed}@{result.asks_at_kill}", result.counts, result.seconds) + note,
                  flush=True)
            if settings.mode in FAULTS:
                print(f"      refused {result.refused} deliveries (503) while {FAULTS[settings.mode][1]}", flush=True)
            for finding in result.findings[:settings.details]:
                print(f"      {finding}")
    return results


def parse_args(argv: list[str] | None) -> Settings:
    """The command line; errors exit with status 2 (argparse's)."""
    parser = argparse.ArgumentParser(description="Kill the bot under load and count what people would notice.")
    parser.add_argument("mode", choices=["crash", "replicas", "diskfull", "dbdown"],
                        help="crash: kill the bot and restart it; replicas: kill one of --replicas bots for good;"
                             " diskfull: the bot cannot write files for --fault-seconds; dbdown: the PostgreSQL"
                             " of --replicas bots is down for --fault-seconds")
    parser.add_argument("--runs", type=int, default=10, help="runs, each with fresh fakes, store and bots")
    parser.add_argument("--threads", type=int, default=50, help="threads asking at the same time")
    parser.add_argument("--questions", type=int, default=4, help="questions per thread, one after another")
    parser.add_argument("--replicas", type=int, default=3, help="bot processes in replicas mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=90.0,
                        help="seconds to wait, after the load, for every acked question to be resolved")
    parser.add_argument("--ack-timeout", type=float, default=30.0,
                        help="seconds a delivery is retried before Slack would give up on it")
    parser.add_argument("--fault-seconds", type=float, default=5.0,
                        help="diskfull, dbdown: how long the disk is full, the database down")
    parser.add_argument("--botkit-python", default=sys.executable,
                        help="the Python whose botkit runs (e.g. another virtualenv's)")
    parser.add_argument("--bot-config-extra", default="",
                        help="YAML/JSON (or a file holding it) merged into the bot's config")
    parser.add_argument("--logs", type=Path, help="keep each run's bot logs in this folder")
    parser.add_argument("--json", type=Path, help="also write the figures (and every finding) to this file")
    parser.add_argument("--details", type=int, default=0, metavar="N",
                        help="print up to N findings (what was lost, erased... where) under each run")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 1 or args.questions < 1 or args.replicas < 2:
        parser.error("--runs, --threads and --questions must be at least 1, --replicas at least 2")
    raw = args.bot_config_extra
    if raw and Path(raw).is_file():
        raw = Path(raw).read_text()
    extra = yaml.safe_load(raw) if raw else {}
    if not isinstance(extra, dict):
        parser.error("--bot-config-extra must be a mapping")
    return Settings(args.mode, args.runs, args.threads, args.questions, args.replicas, args.seed, args.settle,
                    args.ack_timeout, args.fault_seconds, args.botkit_python, extra, args.logs, args.json, args.details)


def main(argv: list[str] | None = None) -> int:
    """Run, print the totals, write --json; the exit status says whether anything failed."""
    settings = parse_args(argv)
    try:
        results = asyncio.run(chaos(settings))
    except ToolError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    total = sum((r.counts for r in results), Counts())
    print(row("total", "", total, sum(r.seconds for r in results)))
    failed = {name: getattr(total, name) for name in Counts.FAILURES if getattr(total, name)}
    print("FAILED: " + ", ".join(f"{n} {name.replace('_', '-')}" for name, n in failed.items()) if failed else "ok")
    if settings.json is not None:
        settings.json.write_text(json.dumps({
            "mode": settings.mode, "threads": settings.threads, "questions": settings.questions,
            "replicas": settings.replicas if settings.mode in ("replicas", "dbdown") else 1, "seed": settings.seed,
            "runs": [{"run": r.run, "killed": r.killed, "asks_at_kill": r.asks_at_kill, "settled": r.settled,
                      "refused": r.refused,
                      "seconds": round(r.seconds, 1), **r.counts.as_dict(), "findings": r.findings}
                     for r in results],
            "total": total.as_dict()}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
