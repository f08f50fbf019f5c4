"""Benchmark: questions through the real dispatcher, store and renderer, against a floor.

The backend answers in-process (`--chunks` pieces, `--chunk-delay` seconds apart) and the
adapter does nothing but note the time, so what is measured is botkit's own overhead:
dedupe, routing, the turn journal (each question durable before it is accepted, each
post and edit written ahead), thread workers, session lookup, rendering, turn records
(group-committed) and the hooks.

The floor is measured in the same process, on the same event loop, before and after
botkit (each the median of several runs): a bare asyncio + pluggy loop that does nothing
but dispatch (a task per delivery calls a hook, whose implementation awaits one send).
botkit's ratio to it is the figure to compare across machines. In burst mode a second bound,
the journal floor, is measured on a store of the same kind: the store's durable steps for each
turn alone (claimed and journaled, started, written ahead, posted, closed with its record) with
nothing around them. botkit's ratio to it is the share of a turn's cost that is the journal's;
the rest is the pipeline's (routing, workers, runner, renderer, hooks).

    python bench/dispatch.py --mode burst --chunks 1                  # 10,000 turns over 1,000 threads at once
    python bench/dispatch.py --mode burst --turns 100000 --threads 100000 --idle 10
    python bench/dispatch.py --mode burst --turns 100000 --idle 10     # memory that comes back
    python bench/dispatch.py --mode burst --turns 100000 --idle 10 --allocator pymalloc   # ... and Python's own
    python bench/dispatch.py --mode burst --postgres                   # a throwaway PostgreSQL (botkit.testing)
    python bench/dispatch.py --mode seq --chunks 1                     # one turn in flight: added latency
    python bench/dispatch.py --mode burst --chunks 20 --chunk-delay 0.05 --edit-interval 0.25 --turns 200

Figures printed: turns/s and the floor's, the ratio, the journal floor and the ratio to it,
CPU µs per turn (every thread of the process, and apart that of the processes it started:
the SQLite store's, which commits on the machine's other core), the SQLite store's time
writing batches per turn, with `--postgres` the statements its server ran per turn (round
trips), added latency p50/p99 (inbound accepted -> first text handed to the adapter; the
backend's last chunk -> final edit handed over), adapter calls and edits per answer (with
the bound ceil(stream time / interval) + 1), RSS before, after, after `--idle` s (and apart,
the processes it started).

To compare two commits, install each in a virtualenv of its own (`PYTHONPATH=old/tree` does
not win over an editable install: the new code runs twice) and alternate their runs, e.g.
`farm-bench --vs "old-venv/bin/python old/bench/dispatch.py ..." -- python bench/dispatch.py ...`:
on a shared machine the same code's CPU per turn moves by half within minutes. For changes
of a few percent, count instructions instead (`valgrind --tool=callgrind`, a run of 3,000
turns minus one of 1,000, so that start-up cancels out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pluggy
import yaml

from botkit import Adapter, Backend, Capabilities, Done, Inbound, MessageRef, Outgoing, TextDelta, ThreadKey, hookimpl
from botkit import allocator
from botkit.bot import Bot, load
from botkit.config import Section
from botkit.loop import loop_factory, loop_name
from botkit.pipeline.screen import ScreenJournal
from botkit.store import JournalEntry, open_store
from botkit.testing import child_processes
from botkit.turn import Answer


class InstantConfig(Section):
    chunks: int = 1
    chunk_delay: float = 0.0


class InstantBackend(Backend):
    """Yields its answer, `chunk_delay` s between chunks; notes when the last chunk left."""

    last_chunk_at: dict[str, float] = {}

    async def stream(self, session, question):
        chunks, delay = self.config.chunks, self.config.chunk_delay
        for i in range(chunks):
            if delay and i:
                await asyncio.sleep(delay)
            yield TextDelta(f"chunk {i} of the answer to {question.text}. ")
        InstantBackend.last_chunk_at[question.inbound.event_id] = time.perf_counter()
        yield Done()


class NullConfig(Section):
    edit_interval: float = 0.0


class NullAdapter(Adapter):
    platform = "null"

    def __init__(self, name, config, bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(max_length=40_000, edit_interval=config.edit_interval, markup="plain")
        self.calls = 0
        self.answers = 0
        # per turn, indexed by the number in its event id: flat arrays, so that what the
        # benchmark keeps does not pin the memory botkit gives back (the RSS figures)
        self.edits = array("H")
        self.first_text = array("d")
        self.final_lag = array("d")
        self._accepted = array("d")

    async def send(self, thread, message, reply_to=None):
        self._note(reply_to.event_id if reply_to else "", message)
        return MessageRef(thread, reply_to.event_id if reply_to else "x")

    async def edit(self, ref, message):
        self._note(ref.message_id, message)

    def _note(self, event_id: str, message: Outgoing) -> None:
        now = time.perf_counter()
        self.calls += 1
        n = int(event_id[1:])
        if message.text:
            if not self.edits[n]:
                self.first_text.append(now - self._accepted[n])
            self.edits[n] += 1
        if message.final:
            self.answers += 1
            self.final_lag.append(now - InstantBackend.last_chunk_at.pop(event_id))

    def expect(self, turns: int) -> None:
        self.edits = array("H", bytes(2 * turns))
        self._accepted = array("d", bytes(8 * turns))

    def inbound(self, n: int, threads: int) -> Inbound:
        self._accepted[n] = time.perf_counter()
        return Inbound(f"e{n}", ThreadKey("null", "w", "c", f"t{n % threads}"), "u", f"question {n}", adapter=self.name)


@hookimpl
def botkit_register_backends(register):
    register("instant", InstantBackend, InstantConfig)


@hookimpl
def botkit_register_adapters(register):
    register("null", NullAdapter, NullConfig)


# -- the floor: asyncio + pluggy and nothing else -------------------------------------------

_floor_spec = pluggy.HookspecMarker("floor")
_floor_impl = pluggy.HookimplMarker("floor")


class _FloorSpec:
    @_floor_spec
    def on_message(self, thread: str, text: str):
        """An awaitable that answers the message."""


class _Echo:
    def __init__(self) -> None:
        self.sent = 0

    async def send(self, thread: str, text: str) -> None:
        self.sent += 1

    @_floor_impl
    def on_message(self, thread: str, text: str):
        return self.send(thread, f"echo: {text}")


async def floor(turns: int, threads: int, mode: str) -> float:
    """Turns per second of the bare dispatch loop, delivered as botkit's are in `mode`: the
    median of at least five runs and half a second (one run of a burst takes about 0.1 s, so
    a single scheduler hiccup on a shared machine moved it by half)."""
    rates: list[float] = []
    spent = 0.0
    while len(rates) < 5 or spent < 0.5:
        elapsed = await floor_once(turns, threads, mode)
        rates.append(turns / elapsed)
        spent += elapsed
    return statistics.median(rates)


async def floor_once(turns: int, threads: int, mode: str) -> float:
    """Seconds the bare dispatch loop takes for `turns`."""
    pm = pluggy.PluginManager("floor")
    pm.add_hookspecs(_FloorSpec)
    echo = _Echo()
    pm.register(echo)

    async def deliver(n: int) -> None:
        for answer in pm.hook.on_message(thread=f"t{n % threads}", text=f"question {n}"):
            await answer

    gc.collect()
    started = time.perf_counter()
    if mode == "burst":
        await asyncio.gather(*(deliver(n) for n in range(turns)))
    else:
        for n in range(turns):
            await asyncio.create_task(deliver(n))
    elapsed = time.perf_counter() - started
    assert echo.sent == turns
    return elapsed


# -- the journal floor: the store's durable steps and nothing else --------------------------


async def journal_floor(url: str, turns: int, threads: int) -> float:
    """Turns per second of a store's durable steps alone, as botkit takes them for each turn
    (its event claimed and journaled, the turn started, its answer written ahead, posted and
    closed with its record), a task per delivery and one worker per thread, and nothing
    else: no routing, backend, renderer or hooks. What the turn journal costs: the bound of
    botkit's throughput on that store (burst mode)."""
    store = open_store(url)
    await store.open()
    workers: dict[str, asyncio.Task] = {}
    kicked: set[str] = set()  # threads given a turn while their worker runs
    posted = 0

    async def work(thread: ThreadKey) -> None:
        nonlocal posted
        key = thread.key
        try:
            if store.shared:
                await store.take_thread(thread)
            while True:
                kicked.discard(key)
                entries = await store.pending(thread)
                if not entries and key not in kicked:
                    return
                for entry in entries:
                    await store.start_turn(entry)
                    session = await store.active_session(thread, entry.backend)
                    message = Outgoing(f"the answer to {entry.query}", final=True)
                    screen = ScreenJournal(store, entry)
                    await screen.intend([message], [])
                    ref = MessageRef(thread, entry.event_id)
                    posted += 1
                    await screen.posted(0, ref)
                    session.turn_count += 1
                    await store.close_turn(entry, session, Answer(message.text, message_ids=[ref.message_id]))
        finally:
            if store.shared:
                await store.release_thread(thread, force=True)
            del workers[key]

    def kick(thread: ThreadKey) -> None:
        if thread.key in workers:
            kicked.add(thread.key)
        else:
            workers[thread.key] = asyncio.create_task(work(thread))

    async def deliver(n: int) -> None:
        inbound = Inbound(f"e{n}", ThreadKey("null", "w", "c", f"t{n % threads}"), "u", f"question {n}",
                          adapter="null")
        await store.admit(JournalEntry(inbound, "instant", inbound.text), lambda: kick(inbound.thread))

    try:
        gc.collect()
        started = time.perf_counter()
        await asyncio.gather(*(deliver(n) for n in range(turns)))
        while workers:
            await asyncio.gather(*list(workers.values()))
        await store.flush()
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    assert posted == turns, f"{posted} answers for {turns} turns"
    return turns / elapsed


# -- botkit ---------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # (a child that has ended)
        return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of `pids` so far (user and system)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pct(values: array, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


@contextlib.contextmanager
def store_urls(args: argparse.Namespace, tmp: str) -> Iterator[Callable[[str], str]]:
    """A new, empty store's URL for each name: a file in `tmp`, or a database of one throwaway
    PostgreSQL server (`--store-url`: that one, for botkit's run only)."""
    if args.postgres:
        from botkit.testing import postgres_server

        settings = {"shared_preload_libraries": "pg_stat_statements"} if counts_statements() else {}
        with postgres_server(settings=settings) as server:
            yield server.create_database
    elif args.store_url:
        yield lambda name: args.store_url
    else:
        yield lambda name: f"sqlite:///{tmp}/{name}.db"


def counts_statements() -> bool:
    """Whether the throwaway PostgreSQL can count the statements it runs: pg_stat_statements is
    installed beside it (Debian's postgresql package has it; elsewhere it may be apart)."""
    from botkit.testing import postgres_binaries

    bindir = postgres_binaries()
    return bindir is not None and (bindir.parent / "lib" / "pg_stat_statements.so").exists()


class StatementCount:
    """The statements a PostgreSQL server runs for a database (its pg_stat_statements, which
    the throwaway server of `--postgres` loads): round trips as the server saw them, every
    batch one, whatever the client library does around them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = None

    async def __aenter__(self) -> Self:
        import asyncpg

        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.conn.close()

    async def now(self) -> int:
        """Statements run so far (a reading counts in the next one)."""
        return await self.conn.fetchval(
            "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    floor_before = floor_after = None
    if not args.no_floor:
        floor_before = await floor(args.turns, args.threads, args.mode)
    async with contextlib.AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        new_store = stack.enter_context(store_urls(args, tmp))
        url = new_store("bench")
        config = {
            "plugins": [str(Path(__file__).resolve())],
            "store": {"url": url},
            "adapters": {"null": {"edit_interval": args.edit_interval}},
            "backends": {"instant": {"chunks": args.chunks, "chunk_delay": args.chunk_delay}},
            "dispatch": {"max_in_flight": args.in_flight, "max_queued": args.turns + 1,
                         "max_queued_per_thread": args.turns + 1},
            "logging": {"level": "WARNING"},
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        bot = Bot(*load(path))
        await bot.start()
        statements = await stack.enter_async_context(StatementCount(url)) if args.postgres and counts_statements() else None
        adapter: NullAdapter = bot.adapters["null"]  # type: ignore[assignment]
        adapter.expect(args.turns)
        gc.collect()
        helpers = child_processes()  # the SQLite store's process
        rss_before, helpers_rss_before = rss_mb(), sum(map(rss_mb, helpers))
        commits = getattr(bot.store, "commit_seconds", None)  # the SQLite store's
        committed_before = dict(commits) if commits else {}
        statements_before = await statements.now() if statements else 0
        cpu_started, helpers_cpu_started = time.process_time(), cpu_seconds(helpers)
        started = time.perf_counter()
        if args.mode == "burst":
            await asyncio.gather(*(bot.submit(adapter.inbound(n, args.threads)) for n in range(args.turns)))
            await bot.idle()
        else:
            for n in range(args.turns):
                await bot.submit(adapter.inbound(n, args.threads))
                await bot.idle()
        await bot.store.flush()
        elapsed = time.perf_counter() - started
        cpu, helpers_cpu = time.process_time() - cpu_started, cpu_seconds(helpers) - helpers_cpu_started
        statements_run = await statements.now() - statements_before - 1 if statements else None  # (not the first reading)
        committing = {where: seconds - committed_before[where] for where, seconds in commits.items()} if commits else {}
        rss_after = rss_mb()
        live_sessions = await bot.store.count_sessions()
        if args.idle:
            await asyncio.sleep(args.idle)
            gc.collect()
        rss_idle, helpers_rss = rss_mb(), sum(map(rss_mb, helpers))
        journal_rate = None
        if not args.no_floor and args.mode == "burst" and not args.store_url:
            # (before the bot stops: with the garbage collector as botkit tunes it)
            journal_rate = await journal_floor(new_store("journal"), args.turns, args.threads)
        await bot.stop()
    if not args.no_floor:
        floor_after = await floor(args.turns, args.threads, args.mode)
    assert adapter.answers == args.turns, f"{adapter.answers} answers for {args.turns} turns"
    rate = args.turns / elapsed
    edits = adapter.edits
    print(f"mode={args.mode} chunks={args.chunks} turns={args.turns} threads={args.threads} "
          f"store={url.split(':', 1)[0]} loop={loop_name(loop)} allocator={allocator.in_use()} "
          f"python={sys.version.split()[0]}")
    print(f"  turns/s                      {rate:,.0f}")
    if floor_before and floor_after:
        floor_rate = (floor_before + floor_after) / 2
        print(f"  floor turns/s                {floor_rate:,.0f}  (before {floor_before:,.0f}, after {floor_after:,.0f})")
        print(f"  ratio to the floor           {rate / floor_rate:.3f}")
        if journal_rate:
            print(f"  journal floor turns/s        {journal_rate:,.0f}  (the store's durable steps alone:"
                  f" {journal_rate / floor_rate:.3f} of the floor)")
            print(f"  ratio to the journal floor   {rate / journal_rate:.3f}")
    print(f"  CPU us per turn              {cpu / args.turns * 1e6:,.0f}"
          + (f"  (and {helpers_cpu / args.turns * 1e6:,.0f} in the processes it started)" if helpers else ""))
    if committing:
        print(f"  store writes us per turn     {committing['process'] / args.turns * 1e6:,.1f} in the store's process"
              f" (busy {committing['process'] / elapsed:.0%} of the run)")
    if statements_run is not None:
        print(f"  database statements per turn {statements_run / args.turns:.3f}  (round trips, as the PostgreSQL"
              f" server counted them: {statements_run:,} for {args.turns:,} turns)")
    print(f"  accepted -> first text  ms   p50 {pct(adapter.first_text, .5):.3f}  p99 {pct(adapter.first_text, .99):.3f}")
    print(f"  last chunk -> final     ms   p50 {pct(adapter.final_lag, .5):.3f}  p99 {pct(adapter.final_lag, .99):.3f}")
    print(f"  adapter calls per answer     {adapter.calls / adapter.answers:.2f}")
    if args.edit_interval > 0:
        bound = math.ceil(args.chunk_delay * (args.chunks - 1) / args.edit_interval) + 1
        print(f"  edits per answer             mean {sum(edits) / len(edits):.2f}  max {max(edits)}"
              f"  (bound ceil(stream / interval) + 1 = {bound})")
    else:
        print(f"  edits per answer             mean {sum(edits) / len(edits):.2f}  max {max(edits)}")
    print(f"  RSS MB                       before {rss_before:.0f}  after {rss_after:.0f}  "
          f"after {args.idle:g} s idle {rss_idle:.0f}  ({live_sessions:,} live sessions)"
          + (f"  (and {helpers_rss_before:.0f} -> {helpers_rss:.0f} in the processes it started)" if helpers else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["burst", "seq"], default="burst")
    parser.add_argument("--chunks", type=int, default=1)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds the backend waits between chunks")
    parser.add_argument("--edit-interval", type=float, default=0.0, help="the adapter's edit interval, seconds")
    parser.add_argument("--turns", type=int, default=None, help="default: 10,000 burst, 2,000 seq")
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--store-url", help="sqlite:///path.db or postgresql://...; default: SQLite in a temp dir")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server (botkit.testing)")
    parser.add_argument("--idle", type=float, default=0.0, help="seconds idle before the last RSS reading")
    parser.add_argument("--loop", choices=["auto", "asyncio"], default="auto", help="auto: uvloop when installed")
    parser.add_argument("--allocator", choices=allocator.ALLOCATORS, default="auto",
                        help="as `botkit run --allocator` (default auto: jemalloc where it is installed; the"
                             " process re-executes itself)")
    parser.add_argument("--no-floor", action="store_true", help="skip measuring the floor")
    parser.add_argument("--floor-only", action="store_true",
                        help="run the floor once and nothing else (bench/instructions.py counts it)")
    args = parser.parse_args()
    try:
        allocator.ensure(args.allocator, [str(Path(__file__).resolve()), *sys.argv[1:]])
    except allocator.AllocatorError as exc:
        sys.exit(f"bench/dispatch.py: {exc}")
    if args.turns is None:
        args.turns = 10_000 if args.mode == "burst" else 2_000
    with asyncio.Runner(loop_factory=loop_factory() if args.loop == "auto" else None) as runner:
        if args.floor_only:
            elapsed = runner.run(floor_once(args.turns, args.threads, args.mode))
            print(f"floor turns/s {args.turns / elapsed:,.0f}")
        else:
            runner.run(run(args))


if __name__ == "__main__":
    main()
