"""What a turn has on screen, as the journal keeps it (`JournalEntry.messages`).

The renderer writes ahead through `ScreenJournal`: before any post or edit the state it
is about to show is durable, so that recovery after a crash can finish or mark exactly
what a person may be looking at, and never show them less.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from botkit.adapters import MessageRef, Outgoing
from botkit.events import Note, NoteKind, Placement, ThreadKey
from botkit.store import JournalEntry, TurnStore


def shown(message: Outgoing, ref: MessageRef | None) -> dict[str, Any]:
    """One message of `JournalEntry.messages`: where it is (None: not posted yet) and what it reads."""
    return {"message_id": ref.message_id if ref else None, "data": ref.data if ref else {},
            "text": message.text, "notes": [[n.text, n.kind, n.placement] for n in message.notes],
            "status": message.status, "final": message.final}


def outgoing(message: dict[str, Any]) -> Outgoing:
    """What a journaled message reads, as the adapter delivers it."""
    notes = [Note(text, NoteKind(kind), Placement(placement)) for text, kind, placement in message["notes"]]
    return Outgoing(message["text"], notes, message["status"], message["final"])


def ref_of(thread: ThreadKey, message: dict[str, Any]) -> MessageRef | None:
    """How to edit a journaled message, or None if its post was never confirmed."""
    if message["message_id"] is None:
        return None
    return MessageRef(thread, message["message_id"], message["data"])


class ScreenJournal:
    """The renderer's `ScreenLog` for one journaled turn."""

    __slots__ = ("store", "entry")

    def __init__(self, store: TurnStore, entry: JournalEntry) -> None:
        self.store = store
        self.entry = entry

    # Each returns the store's awaitable as it is (no coroutine of its own: these run for
    # every delivery).

    def intend(self, messages: list[Outgoing], refs: list[MessageRef]) -> Awaitable[object]:
        entry = self.entry
        entry.messages = [shown(m, refs[i] if i < len(refs) else None) for i, m in enumerate(messages)] + \
            entry.messages[len(messages):]
        return self.store.journal_screen(entry, durable=True)

    def posted(self, index: int, ref: MessageRef) -> Awaitable[object]:
        message = self.entry.messages[index]
        message["message_id"], message["data"] = ref.message_id, ref.data
        return self.store.journal_screen(self.entry, durable=False)

    def withdrawn(self) -> Awaitable[object]:
        self.entry.messages = [m for m in self.entry.messages if m["message_id"] is not None]
        return self.store.journal_screen(self.entry, durable=False)
