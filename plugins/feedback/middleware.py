"""The feedback middleware: the prompt under answers, votes and comments into the store.

Votes go to the plugin's own table (`votes.Votes`); a vote on a message finds its turn
through the store's history (`turn_for_message`); a vote given as a message refers to
the thread's last answer, remembered here.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from botkit import hookimpl
from botkit.adapters import Outgoing, Surface
from botkit.events import Draft, Note, NoteKind, ThreadKey
from botkit.turn import Answer, Handled, Turn

from botkit_plugins.feedback import DOWN, FeedbackConfig, message_vote, normalize
from botkit_plugins.feedback.votes import Votes

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.feedback")

#: threads whose last answer is remembered for votes given as messages
_REMEMBERED_THREADS = 10_000


class Feedback:
    """Registered as a plugin (name "middleware:feedback") when `middlewares: feedback:` is configured."""

    def __init__(self, config: FeedbackConfig, bot: Bot) -> None:
        self.config = config
        self.bot = bot
        self._last_answer: OrderedDict[ThreadKey, tuple[str, str]] = OrderedDict()  # thread -> (event id, adapter)

    @hookimpl
    def botkit_render(self, draft: Draft, surface: Surface) -> None:
        if draft.final and not draft.failed and draft.text:
            draft.notes.append(Note(self.config.prompt, kind=NoteKind.FEEDBACK))

    @hookimpl
    def botkit_answer_complete(self, turn: Turn, answer: Answer) -> None:
        if answer.status != "complete":
            return
        self._last_answer[turn.thread] = (turn.inbound.event_id, turn.inbound.adapter)
        self._last_answer.move_to_end(turn.thread)
        while len(self._last_answer) > _REMEMBERED_THREADS:
            self._last_answer.popitem(last=False)

    @hookimpl
    async def botkit_reaction(self, thread: ThreadKey, message_id: str, user: str, reaction: str,
                              comment: str | None) -> None:
        """👍/👎 reactions and buttons on answers, from any adapter."""
        await self.record(thread, message_id, user, reaction, comment)

    @hookimpl
    async def botkit_message_received(self, turn: Turn) -> Handled | None:
        """Votes and comments given as messages, on the thread's last answer."""
        last = self._last_answer.get(turn.thread)
        if last is None:
            return None
        text = turn.inbound.text.strip()
        prefix = self.config.comment_prefix
        if prefix and text.lower().startswith(prefix.lower()):
            comment = text[len(prefix):].strip()
            if not comment:
                return None
            await self._store(last[0], turn.inbound.user, None, comment)
            return Handled(reply=self.config.thanks or None, reason="feedback comment")
        value = message_vote(text)
        if value is None:
            return None
        await self._store(last[0], turn.inbound.user, value, None)
        ask = value == DOWN and self.config.comment_request
        return Handled(reply=(self.config.comment_request if ask else self.config.thanks) or None,
                       reason=f"feedback {value}")

    async def record(self, thread: ThreadKey, message_id: str, user: str, value: object,
                     comment: str | None = None) -> bool:
        """A vote on the answer occupying `message_id` (see `submit_feedback`)."""
        vote = normalize(value)
        if vote is None:
            return False
        turn = await self.bot.store.turn_for_message(thread, message_id)
        if turn is None:
            log.info("feedback on %s in %s: not an answer the store knows", message_id, thread)
            return False
        await self._store(turn.event_id, user, vote, comment)
        if vote == DOWN and comment is None and self.config.comment_request:
            adapter = self.bot.adapters.get(turn.adapter)
            if adapter is not None:
                try:
                    await adapter.send(thread, Outgoing(self.config.comment_request, final=True))
                except Exception:
                    log.warning("could not ask %s for a feedback comment", adapter.name, exc_info=True)
        return True

    async def _store(self, event_id: str, user: str, value: str | None, comment: str | None) -> None:
        await Votes(self.bot.store).record(event_id, user, value, comment, time.time())
        log.info("feedback %s from %s on turn %s%s", value or "comment", user, event_id,
                 " with a comment" if comment else "")
