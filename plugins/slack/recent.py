"""A bounded memory for what the Slack adapter remembers of recent threads and messages."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

#: entries kept per table; the oldest go first
MEMORY = 10_000


class Recent(OrderedDict):
    """A bounded insertion-ordered map: the oldest entries go first."""

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MEMORY:
            self.popitem(last=False)
