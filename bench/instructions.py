"""Instructions per turn, botkit's and the floor's, counted by valgrind: figures that do not
move with the machine's load.

On a shared machine the same code's CPU per turn moved by half within minutes, which hides
any change of a few percent. Instructions executed do not move. Each figure is the count of
a run of `--turns` turns minus that of a run of a third as many, divided by the difference,
so that start-up (imports, opening the store) cancels out. The SQLite store's process is
counted apart (its work runs on another core, beside the event loop's). The floor is bench/dispatch.py's
(a bare asyncio + pluggy loop), counted the same way; the ratio is the floor's instructions
over botkit's, comparable to dispatch.py's ratio of turns per second.

    python bench/instructions.py                               # burst, 1 chunk, 3,000 turns over 1,000 threads
    python bench/instructions.py --turns 6000 --threads 100    # any bench/dispatch.py arguments after these

Needs valgrind (Debian: apt-get install valgrind). Runs botkit under callgrind, about 50
times slower than normal: a few minutes. Counted on the plain asyncio loop (uvloop's C code
would be counted too, but is not what a change to botkit moves).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DISPATCH = Path(__file__).with_name("dispatch.py")


def instructions(argv: list[str]) -> tuple[int, int]:
    """Instructions the benchmark's process executed, and those of the processes it started
    (the SQLite store's), by callgrind's counts."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.Popen(["valgrind", "--tool=callgrind", "--trace-children=yes",
                                f"--callgrind-out-file={tmp}/out.%p", sys.executable, str(DISPATCH), *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, stderr = run.communicate()
        if run.returncode:
            sys.exit(f"bench/dispatch.py {' '.join(argv)} failed under valgrind:\n{stderr[-2000:]}")
    counts = {int(pid): int(n) for pid, n in re.findall(r"^==(\d+)== Collected : (\d+)", stderr, re.MULTILINE)}
    if run.pid not in counts:
        sys.exit(f"valgrind printed no count:\n{stderr[-2000:]}")
    return counts.pop(run.pid), sum(counts.values())


def per_turn(argv: list[str], turns: int) -> tuple[float, float]:
    small = turns // 3
    (own, started), (own_small, started_small) = (instructions([*argv, "--turns", str(n)]) for n in (turns, small))
    return (own - own_small) / (turns - small), (started - started_small) / (turns - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=3000)
    parser.add_argument("--mode", choices=["burst", "seq"], default="burst")
    parser.add_argument("--threads", type=int, default=1000)
    args, rest = parser.parse_known_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    # pymalloc: counted as Python allocates without a preloaded library (under valgrind's own malloc)
    common = ["--mode", args.mode, "--threads", str(args.threads), "--loop", "asyncio", "--allocator", "pymalloc"]
    botkit, store = per_turn([*common, "--no-floor", "--chunks", "1", *rest], args.turns)
    floor, _ = per_turn([*common, "--floor-only"], args.turns)
    print(f"mode={args.mode} turns={args.turns} threads={args.threads} {' '.join(rest)}".rstrip())
    print(f"  botkit instructions per turn   {botkit:,.0f}  (and {store:,.0f} in the store's process)")
    print(f"  floor instructions per turn    {floor:,.0f}")
    print(f"  ratio to the floor             {floor / botkit:.3f}")


if __name__ == "__main__":
    main()
