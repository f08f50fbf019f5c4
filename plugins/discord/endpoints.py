"""Where discord.py connects: the REST base and gateway URL from the config.

discord.py keeps both as class attributes (`Route.BASE`, `DiscordWebSocket.DEFAULT_GATEWAY`;
webhooks and interaction callbacks build their URLs from the same `Route`), so they are
set while an adapter runs and the previous values are restored when the last one stops.
Adapters in one process must therefore agree on the endpoints.
"""

from __future__ import annotations

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

_users = 0
_active: tuple[str, str] | None = None
_saved: tuple[str, yarl.URL] | None = None


def acquire(api_url: str, gateway_url: str) -> None:
    """Point discord.py at `api_url` and `gateway_url` until the matching `release()`."""
    global _users, _active, _saved
    wanted = (api_url.rstrip("/"), gateway_url)
    if _users and wanted != _active:
        raise RuntimeError("discord adapters in one process must use the same api_url and gateway_url")
    if not _users:
        _saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = wanted[0]
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        _active = wanted
    _users += 1


def release() -> None:
    """Undo one `acquire()`; the last one restores discord.py's own values."""
    global _users, _active, _saved
    if _users == 0:
        return
    _users -= 1
    if _users == 0 and _saved is not None:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = _saved
        _active = _saved = None
