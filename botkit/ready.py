"""`Ready`: an awaitable whose result is known when it is made.

What a hot-path method returns when it has nothing to wait for (a write nobody waits for,
an answer from memory, a free slot) while its callers `await` it: a coroutine would cost a
frame, and a future a loop callback, per call.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Generic, TypeVar

T = TypeVar("T")


class Ready(Generic[T]):
    __slots__ = ("result",)

    def __init__(self, result: T) -> None:
        self.result = result

    def __await__(self) -> Generator[None, None, T]:
        return self.result
        yield  # a generator, never suspended


DONE: Ready[None] = Ready(None)
