"""Benchmark: questions through the real dispatcher, SQLite store and renderer.

The backend answers instantly in-process (`--chunks` pieces) and the adapter does
nothing but note the time, with no edit interval, so what is measured is botkit's
own overhead: dedupe, routing, the turn journal (each question durable before it is
accepted, each post and edit written ahead), thread workers, session lookup,
rendering, turn records (group-committed to SQLite on disk) and the hooks.

    python bench/dispatch.py --mode burst --chunks 1     # 10,000 turns over 1,000 threads at once
    python bench/dispatch.py --mode burst --chunks 20
    python bench/dispatch.py --mode seq --chunks 1       # one turn in flight: added latency

Figures printed: turns/s, added latency p50/p99 (inbound accepted -> first text handed to
the adapter; the backend's last chunk -> final edit handed over), edits per answer,
peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

from botkit import Adapter, Backend, Capabilities, Done, Inbound, MessageRef, Outgoing, TextDelta, ThreadKey, hookimpl
from botkit.bot import Bot, load
from botkit.config import Section


class InstantConfig(Section):
    chunks: int = 1


class InstantBackend(Backend):
    """Yields its answer without ever waiting; notes when the last chunk left."""

    last_chunk_at: dict[str, float] = {}

    async def stream(self, session, question):
        chunks = self.config.chunks
        for i in range(chunks):
            yield TextDelta(f"chunk {i} of the answer to {question.text}. ")
        InstantBackend.last_chunk_at[question.inbound.event_id] = time.perf_counter()
        yield Done()


class NullConfig(Section):
    pass


class NullAdapter(Adapter):
    platform = "null"
    capabilities = Capabilities(max_length=40_000, edit_interval=0.0, markup="plain")

    def __init__(self, name, config, bot) -> None:
        super().__init__(name, config, bot)
        self.calls = 0
        self.answers = 0
        self.first_text: list[float] = []
        self.final_lag: list[float] = []
        self._seen_text: set[str] = set()
        self._accepted: dict[str, float] = {}

    async def send(self, thread, message, reply_to=None):
        self._note(reply_to.event_id if reply_to else "", message)
        return MessageRef(thread, reply_to.event_id if reply_to else "x")

    async def edit(self, ref, message):
        self._note(ref.message_id, message)

    def _note(self, event_id: str, message: Outgoing) -> None:
        now = time.perf_counter()
        self.calls += 1
        if message.text and event_id not in self._seen_text:
            self._seen_text.add(event_id)
            self.first_text.append(now - self._accepted[event_id])
        if message.final:
            self.answers += 1
            self.final_lag.append(now - InstantBackend.last_chunk_at.pop(event_id))

    def inbound(self, n: int, threads: int) -> Inbound:
        event_id = f"e{n}"
        self._accepted[event_id] = time.perf_counter()
        return Inbound(event_id, ThreadKey("null", "w", "c", f"t{n % threads}"), "u", f"question {n}", adapter=self.name)


@hookimpl
def botkit_register_backends(register):
    register("instant", InstantBackend, InstantConfig)


@hookimpl
def botkit_register_adapters(register):
    register("null", NullAdapter, NullConfig)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "plugins": [str(Path(__file__).resolve())],
            "store": {"url": f"sqlite:///{tmp}/bench.db"},
            "adapters": {"null": {}},
            "backends": {"instant": {"chunks": args.chunks}},
            "dispatch": {"max_in_flight": args.in_flight, "max_queued": args.turns + 1},
            "logging": {"level": "WARNING"},
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        bot = Bot(*load(path))
        await bot.start()
        adapter: NullAdapter = bot.adapters["null"]  # type: ignore[assignment]
        gc.collect()
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
        await bot.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert adapter.answers == args.turns, f"{adapter.answers} answers for {args.turns} turns"
    print(f"mode={args.mode} chunks={args.chunks} turns={args.turns} threads={args.threads} "
          f"python={sys.version.split()[0]}")
    print(f"  turns/s                      {args.turns / elapsed:,.0f}")
    print(f"  accepted -> first text  ms   p50 {pct(adapter.first_text, .5):.3f}  p99 {pct(adapter.first_text, .99):.3f}")
    print(f"  last chunk -> final     ms   p50 {pct(adapter.final_lag, .5):.3f}  p99 {pct(adapter.final_lag, .99):.3f}")
    print(f"  adapter calls per answer     {adapter.calls / adapter.answers:.2f}")
    print(f"  peak RSS MB                  {rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["burst", "seq"], default="burst")
    parser.add_argument("--chunks", type=int, default=1)
    parser.add_argument("--turns", type=int, default=None, help="default: 10,000 burst, 2,000 seq")
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    if args.turns is None:
        args.turns = 10_000 if args.mode == "burst" else 2_000
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
