"""The bot's own Discord messages: which answer each one is, for reactions and clicks on it.

The core records an answer under the ids the adapter returned (`MessageRef.message_id`;
for a slash command's original response that is the interaction's id, not the
message's), so the adapter remembers, per Discord message it posted, the thread and that
id, whether it already added the 👍/👎 reactions, and what its Sources button shows.
Bounded: the oldest are forgotten (a click then finds the answer in the store).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from botkit.events import ThreadKey

#: the reactions added under final answers for users to click
VOTES = ("👍", "👎")
_REMEMBERED = 10_000


@dataclass(slots=True)
class Posted:
    thread: ThreadKey
    message_id: str  # as returned in MessageRef.message_id
    voted: bool = False
    sources: str | None = None  # what the Sources button shows


class PostedMessages:
    """Discord message id -> `Posted`, the most recently used last."""

    def __init__(self, limit: int = _REMEMBERED) -> None:
        self._limit = limit
        self._posted: OrderedDict[int, Posted] = OrderedDict()

    def remember(self, discord_id: int, thread: ThreadKey, message_id: str) -> Posted:
        posted = self._posted.get(discord_id)
        if posted is None:
            posted = self._posted[discord_id] = Posted(thread, message_id)
            while len(self._posted) > self._limit:
                self._posted.popitem(last=False)
        self._posted.move_to_end(discord_id)
        return posted

    def get(self, discord_id: int) -> Posted | None:
        return self._posted.get(discord_id)
