"""`botkit check --online`: sign in to every configured platform and backend, say what works."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from botkit.backends import BackendError
from botkit.bot import describe
from botkit.logs import redact
from botkit.terminal import printable

if TYPE_CHECKING:
    from botkit.bot import Bot

#: seconds one sign-in may take before it counts as failed
TIMEOUT = 20.0


def _reason(exc: BaseException) -> str:
    """Why a sign-in failed, for the operator: a backend's message is worded for the people
    asking (Vectara's "not reachable right now" for a key it refused), its status is not."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, BackendError) and exc.status in (401, 403):
        return f"the credentials were refused (HTTP {exc.status})"
    said = describe(exc)
    if isinstance(exc, BackendError) and exc.status is not None and f"HTTP {exc.status}" not in said:
        return f"{said} (HTTP {exc.status})"
    return said


def _failed(what: str, exc: BaseException) -> bool:
    print(f"{what}: FAILED: {printable(redact(_reason(exc)))}")
    return False


async def _try(what: str, step: Awaitable[str | None]) -> bool:
    try:
        said = await asyncio.wait_for(step, TIMEOUT)
    except Exception as exc:  # whatever went wrong is the answer to "does it work?"
        return _failed(what, exc)
    print(f"{what}: " + (printable(redact(said)) if said else "ok (nothing to sign in to)"))
    return True


async def check_online(bot: Bot) -> int:
    """Each adapter's and backend's `verify()`; exit status 1 when any failed."""
    ok = True
    for name, adapter in bot.adapters.items():
        ok &= await _try(f"adapter {name}", adapter.verify())
    for name, backend in bot.backends.items():
        try:
            await asyncio.wait_for(backend.start(), TIMEOUT)
        except Exception as exc:
            ok = _failed(f"backend {name}", exc)
            continue
        try:
            ok &= await _try(f"backend {name}", backend.verify())
        finally:
            await backend.close()
    return 0 if ok else 1
