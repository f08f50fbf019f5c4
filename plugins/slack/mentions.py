"""A Slack message's text as the backend should read it.

Slack writes mentions and links as `<@U123>`, `<#C123|name>`, `<!here>`,
`<https://x|label>` and escapes `&<>`. The bot's own mention is dropped; other user and
channel mentions become `@name` / `#name` (looked up once, then cached); links keep
their label and URL; entities are unescaped.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable

log = logging.getLogger("botkit.slack")

_TOKEN = re.compile(r"<([^<>]+)>")

Lookup = Callable[[str], Awaitable[str | None]]


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The text without the bot's `<@UBOT>` (wherever it is), trimmed."""
    if not bot_user_id:
        return text.strip()
    return re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text).strip()


def mentioned_users(text: str) -> tuple[str, ...]:
    """User ids mentioned in `text`, in order, without repeats."""
    return tuple(dict.fromkeys(re.findall(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>", text)))


class Resolver:
    """Turns Slack's mention syntax into readable text, with cached name look-ups.

    `user_name` and `channel_name` call the Web API (users.info, conversations.info);
    a failed look-up falls back to the id, and is not retried for this process.
    """

    def __init__(self, user_lookup: Lookup, channel_lookup: Lookup) -> None:
        self._lookups = {"user": user_lookup, "channel": channel_lookup}
        self._cache: dict[tuple[str, str], str | None] = {}

    async def _name(self, kind: str, ident: str) -> str | None:
        key = (kind, ident)
        if key not in self._cache:
            try:
                self._cache[key] = await self._lookups[kind](ident)
            except Exception as exc:  # a missing scope or a deleted user must not stop the answer
                log.warning("slack: %s %s could not be looked up: %s", kind, ident, type(exc).__name__)
                self._cache[key] = None
        return self._cache[key]

    async def user_name(self, user_id: str) -> str | None:
        return await self._name("user", user_id)

    async def resolve(self, text: str) -> str:
        """`text` with every `<...>` token replaced by what a reader would see."""
        out, last = [], 0
        for m in _TOKEN.finditer(text):
            out.append(text[last:m.start()])
            out.append(await self._token(m.group(1)))
            last = m.end()
        out.append(text[last:])
        return html.unescape("".join(out))

    async def _token(self, token: str) -> str:
        target, _, label = token.partition("|")
        if target.startswith("@"):
            return "@" + (label or await self.user_name(target[1:]) or target[1:])
        if target.startswith("#"):
            return "#" + (label or await self._name("channel", target[1:]) or target[1:])
        if target.startswith("!"):
            special = target[1:].split("^", 1)[0]
            return label if label else "@" + special
        return f"{label} ({target})" if label and label != target else target
