"""Turns cut off mid-answer (a crash, a stop past the grace time, a replica that died).

The journal says what the bot may have put on screen for the turn. Recovery never
takes text away from a person: an answer whose final edit was intended is delivered
again as it was meant to read (an edit is idempotent) and recorded as complete; an
answer in progress keeps the text it had and gets a notice appended. A post that was
intended but never confirmed is looked for through the adapter (`find_orphan`), else
posted anew, so no placeholder is left reading "thinking…". The backend is never
asked twice for one turn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from botkit.adapters import Adapter, MessageRef, Outgoing, RateLimited
from botkit.events import Note, NoteKind
from botkit.pipeline.screen import outgoing, ref_of, shown
from botkit.store import JournalEntry, TurnStore
from botkit.turn import Answer, Turn, TurnStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from botkit.plugins import Plugins
    from botkit.render import DeliveryObserver

log = logging.getLogger("botkit.recovery")

INTERRUPTED_NOTICE = "This answer was interrupted when the bot restarted. Please ask again."
_ATTEMPTS = 4


async def resume(entry: JournalEntry, turn: Turn, store: TurnStore, plugins: Plugins,
                 observers: Sequence[DeliveryObserver] = ()) -> Answer:
    """Finish or mark `entry`'s answer, record it, close the journal entry.

    What recovery is about to show is written ahead too, so that a crash during recovery
    is recovered again without a second notice.
    """
    adapter = turn.adapter
    inbound = turn.inbound
    before = entry.messages
    marked = any(note[0] == INTERRUPTED_NOTICE for m in before for note in m["notes"])  # by a recovery cut off
    complete = bool(before) and all(m["final"] for m in before) and not marked
    messages = [outgoing(m) for m in before]
    if not complete and not marked:
        notice = Note(INTERRUPTED_NOTICE, kind=NoteKind.ERROR)
        if messages:
            last = messages[-1]
            messages[-1] = Outgoing(last.text, [*last.notes, notice], None, True)
        else:
            messages = [Outgoing("", [notice], None, True)]
    refs: list[MessageRef | None] = []
    for i, message in enumerate(messages):
        ref = ref_of(inbound.thread, before[i]) if i < len(before) else None
        if ref is None and i < len(before):
            ref = await _find(adapter, turn, outgoing(before[i]))
        refs.append(ref)
    entry.messages = [shown(message, ref) for message, ref in zip(messages, refs)]
    await store.journal_screen(entry, durable=True)
    delivered: list[MessageRef] = []
    for i, (message, ref) in enumerate(zip(messages, refs)):
        landed = await _deliver_or_post(adapter, turn, ref, message, entry.event_id, i, observers)
        if landed is None:
            continue
        delivered.append(landed)
        if landed is not ref:  # posted anew: remember where, so a second recovery edits it
            entry.messages[i]["message_id"], entry.messages[i]["data"] = landed.message_id, landed.data
            await store.journal_screen(entry, durable=False)
    # a final edit that was to carry a failure notice (a stop's, a backend's) was no complete answer
    notices = [note.text for m in messages for note in m.notes if note.kind == NoteKind.ERROR]
    whole = complete and not notices
    answer = Answer("".join(m.text for m in messages),
                    status=TurnStatus.COMPLETE if whole else TurnStatus.INTERRUPTED,
                    error=None if whole else notices[-1] if complete else "interrupted by a restart",
                    message_ids=[ref.message_id for ref in delivered], edits=len(delivered),
                    flags={"recovered": True} if len(delivered) == len(messages)
                    else {"recovered": True, "undelivered": True})
    log.info("turn %s recovered: %s", entry.event_id, "final edit delivered again" if complete else "marked interrupted")
    await plugins.answer_complete(turn, answer)
    session = await store.active_session(inbound.thread, entry.backend)
    answer.session_id = session.session_id
    await store.close_turn(entry, session, answer)
    return answer


async def _deliver_or_post(adapter: Adapter, turn: Turn, ref: MessageRef | None, message: Outgoing,
                           event_id: str, index: int, observers: Sequence[DeliveryObserver]) -> MessageRef | None:
    """Edit `ref` to read `message`; a message that can no longer be edited (an expired
    interaction) is said anew; None when neither worked."""
    try:
        return await _deliver(adapter, turn, ref, message, observers)
    except Exception:
        log.warning("recovery could not deliver message %d of turn %s%s", index + 1, event_id,
                    "; posting it anew" if ref is not None else "", exc_info=True)
    if ref is None:
        return None
    try:
        return await _deliver(adapter, turn, None, message, observers)
    except Exception:
        log.warning("recovery could not post message %d of turn %s", index + 1, event_id, exc_info=True)
        return None


async def _find(adapter: Adapter, turn: Turn, placeholder: Outgoing) -> MessageRef | None:
    try:
        return await adapter.find_orphan(turn.inbound, placeholder)
    except Exception:
        log.warning("%s could not look for the message of turn %s", adapter.name, turn.inbound.event_id,
                    exc_info=True)
        return None


async def _deliver(adapter: Adapter, turn: Turn, ref: MessageRef | None, message: Outgoing,
                   observers: Sequence[DeliveryObserver]) -> MessageRef:
    """Edit `ref` (or post, without one) to read `message`, waiting out 429s."""
    attempt = 0
    while True:
        try:
            if ref is None:
                landed = await adapter.send(turn.thread, message, reply_to=turn.inbound)
            else:
                await adapter.edit(ref, message)
                landed = ref
            for observer in observers:
                observer.delivered(adapter, sent=ref is None, final=message.final)
            return landed
        except RateLimited as exc:
            for observer in observers:
                observer.rate_limited(adapter, exc.retry_after)
            attempt += 1
            if attempt == _ATTEMPTS:
                raise
            await asyncio.sleep(min(exc.retry_after, 30.0))
