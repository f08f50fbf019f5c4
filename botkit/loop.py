"""The event loop botkit runs on: uvloop when it is installed (`pip install botkit[fast]`).

uvloop schedules callbacks and wakes up from other threads (the SQLite writer) in C;
on the dispatch benchmark that is about a fifth less CPU per turn. Without it botkit
runs on asyncio's own loop, with the same behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor if uvloop is installed, else None (asyncio's default)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """"uvloop" or "asyncio": what `loop` is, for logs and benchmark figures."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, fast: bool = True) -> T:
    """`asyncio.run(main)`, on uvloop when `fast` and it is installed."""
    with asyncio.Runner(loop_factory=loop_factory() if fast else None) as runner:
        return runner.run(main)
