"""The memory allocator botkit runs on: jemalloc where it is installed, else Python's own (pymalloc).

pymalloc gives an arena (1 MiB) back to the system only once every object in it is freed.
After a burst, the few objects that live on (a session's last timestamp, a cache entry)
are scattered over the arenas the burst filled, so the memory stays taken: 123 MB after
a 100,000-turn burst over 1,000 threads and 10 s idle, from 72 before (bench/dispatch.py).
With jemalloc (`PYTHONMALLOC=malloc`, the library preloaded) freed pages go back a second
after they are free, even while botkit idles: 93-95 MB, at the same throughput or better
(ten paired bursts: ratio to the floor 0.080 against pymalloc's 0.077). glibc's malloc gave
the memory back too, at a third less throughput; mimalloc only when told to decommit at
once, and then at a fifth less.

The allocator is chosen when the process starts, so taking jemalloc re-executes the command
with the library preloaded. `botkit run` does that by default ("auto") wherever the library is
installed, as it takes uvloop wherever that is: Debian `apt-get install libjemalloc2` (the
Docker image has it). `--allocator pymalloc` keeps Python's own; a process started with
`PYTHONMALLOC` set (a memory checker) is left as it is.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

#: what can be asked for; `in_use` may also say "malloc" (glibc's)
ALLOCATORS = ("auto", "pymalloc", "jemalloc")
#: what `botkit run --allocator` defaults to; unset: "auto", jemalloc where it is installed
ALLOCATOR_ENV = "BOTKIT_ALLOCATOR"
#: one background thread purges while the loop idles; one arena, as botkit allocates on one
#: thread (the SQLite store writes in a process of its own, which inherits this); freed pages go back after
#: a second (jemalloc's default is ten) and are not kept "muzzy"
JEMALLOC_CONF = "background_thread:true,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0"
#: set on the re-executed process: had the preload not taken there, it must not re-execute again
_REEXECUTED = "BOTKIT_ALLOCATOR_REEXECUTED"


class AllocatorError(RuntimeError):
    """The allocator asked for cannot be had here (the message says why and what to install)."""


def jemalloc_library() -> str | None:
    """The path of the installed libjemalloc, or None."""
    for folder in (f"/usr/lib/{os.uname().machine}-linux-gnu", "/usr/local/lib", "/usr/lib", "/usr/lib64"):
        candidate = Path(folder) / "libjemalloc.so.2"
        if candidate.is_file():
            return str(candidate)
    return ctypes.util.find_library("jemalloc")  # asks ldconfig: a soname, which the loader finds too


def in_use() -> str:
    """What allocates Python's objects in this process: "pymalloc", "jemalloc" or "malloc"."""
    if os.environ.get("PYTHONMALLOC") != "malloc":
        return "pymalloc"
    try:
        with open("/proc/self/maps") as maps:
            return "jemalloc" if "libjemalloc" in maps.read() else "malloc"
    except OSError:  # not Linux
        return "malloc"


def ensure(allocator: str, argv: Sequence[str]) -> None:
    """Return if `allocator` is in use; else re-execute `argv` (a `python` command line
    without the interpreter) on it, or raise AllocatorError. "auto" asks for jemalloc where
    it is installed and nothing else has been chosen, and is never an error."""
    if allocator not in ALLOCATORS:
        raise AllocatorError(f"unknown allocator {allocator!r} (one of {', '.join(ALLOCATORS)})")
    reexecuted = os.environ.pop(_REEXECUTED, None)  # not inherited by what this process starts
    if allocator == "auto":
        if reexecuted or "PYTHONMALLOC" in os.environ or jemalloc_library() is None:
            return  # (a preload that did not take is not worth refusing to start over)
        allocator = "jemalloc"
    if in_use() == allocator:
        return
    if allocator == "pymalloc":  # PYTHONMALLOC=malloc from outside: asked not to use it
        env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
        env["LD_PRELOAD"] = " ".join(p for p in os.environ.get("LD_PRELOAD", "").split() if "jemalloc" not in p)
        _exec(argv, env)
    library = jemalloc_library()
    if library is None:
        raise AllocatorError("jemalloc is not installed (Debian: apt-get install libjemalloc2)")
    if reexecuted:
        raise AllocatorError(f"{library} was preloaded but is not in use (a setuid program or a loader that "
                             "ignores LD_PRELOAD?)")
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join([library, *env.get("LD_PRELOAD", "").split()])
    env["PYTHONMALLOC"] = "malloc"
    env.setdefault("MALLOC_CONF", JEMALLOC_CONF)  # an operator's own settings win
    _exec(argv, env)


def _exec(argv: Sequence[str], env: dict[str, str]) -> NoReturn:
    env[_REEXECUTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)
