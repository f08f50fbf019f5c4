"""botkit built-in middleware: feedback (👍/👎 on answers, recorded per turn in the store).

Platform-neutral by design. On every final answer the middleware adds a
`Note(kind="feedback")`: an adapter that has buttons or reactions shows them instead
of the note's text, and calls `submit_feedback` when a user clicks or reacts; other
adapters show the text, and the user answers with a message (👍, 👎, +1, -1, or
"feedback: what was wrong"), which the middleware takes in `botkit_message_received`.
`botkit feedback export --format csv|jsonl` writes what was recorded. Votes live in the
plugin's own table of the store (`votes.py`), shown by `botkit sessions show`, the
dashboard and `/metrics` through the turn-view hooks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botkit import hookimpl
from botkit.config import Section

from botkit_plugins.feedback.votes import TABLES, Votes

if TYPE_CHECKING:
    import argparse

    from botkit.bot import Bot
    from botkit.events import ThreadKey
    from botkit.store import Store

UP, DOWN = "up", "down"
_VALUES = {
    UP: {"👍", "+1", ":+1:", "thumbsup", ":thumbsup:", "thumbs_up", "up", "like", "yes", "helpful"},
    DOWN: {"👎", "-1", ":-1:", "thumbsdown", ":thumbsdown:", "thumbs_down", "down", "dislike", "no", "unhelpful"},
}
_SKIN_TONE = re.compile(r"(::skin-tone-\d|[\U0001F3FB-\U0001F3FF\uFE0F])")
#: a whole message that is a vote: only unmistakable tokens ("no" may answer a question)
_MESSAGE_VOTES = {"👍", "👎", "+1", "-1", ":+1:", ":-1:", ":thumbsup:", ":thumbsdown:"}


class FeedbackConfig(Section):
    """`middlewares: feedback:`; every key is optional."""

    #: shown under each final answer where the platform has no buttons/reactions; "" for none
    prompt: str = "Was this helpful? Reply 👍 or 👎."
    #: said after a 👎 (once), asking for a comment; "" to not ask
    comment_request: str = "Thanks. What was wrong or missing? Reply with “feedback: …” to tell us."
    #: a message starting with this is a comment on the last answer in its thread
    comment_prefix: str = "feedback:"
    #: said after a vote given as a message
    thanks: str = "Thanks for the feedback!"


def normalize(value: object) -> str | None:
    """A reaction name, emoji, button value or word as "up" or "down"; None if it is neither."""
    if isinstance(value, bool):
        return UP if value else DOWN
    text = _SKIN_TONE.sub("", str(value)).strip().lower()
    for result, names in _VALUES.items():
        if text in names:
            return result
    return None


def message_vote(text: str) -> str | None:
    """A whole chat message that is a vote ("👍", "-1", ":+1:"), as "up"/"down"; else None."""
    token = _SKIN_TONE.sub("", text).strip().lower()
    return normalize(token) if token in _MESSAGE_VOTES else None


async def submit_feedback(bot: Bot, thread: ThreadKey, message_id: str, user: str, value: object,
                          comment: str | None = None) -> bool:
    """Record a 👍/👎 on one of the bot's messages directly (adapters fire the
    `botkit_reaction` hook instead, which reaches this through the middleware).

    `message_id` is the id the adapter returned for the answer (`MessageRef.message_id`);
    `value` is anything `normalize` knows (a Slack reaction name, a Discord emoji, a button
    value). Returns False when feedback is not configured, the value is not a vote, or the
    message is not an answer. Adapters ignore the bot's own reactions.
    """
    middleware = bot.plugins.get("middleware:feedback")
    if middleware is None:
        return False
    return await middleware.record(thread, message_id, user, value, comment)


@hookimpl
def botkit_register_middlewares(register) -> None:
    register("feedback", "botkit_plugins.feedback.middleware:Feedback", FeedbackConfig)


@hookimpl
def botkit_register_tables(register) -> None:
    register(TABLES)


@hookimpl
async def botkit_turn_annotations(store: Store, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    return {event_id: {"feedback": votes} for event_id, votes in (await Votes(store).on_turns(event_ids)).items()}


@hookimpl
async def botkit_turn_tallies(store: Store, since: float | None, limit: int | None) -> dict[str, dict[str, int]]:
    return {"feedback": await Votes(store).counts(since=since, limit=limit)}


@hookimpl
def botkit_cli(commands: argparse._SubParsersAction) -> None:
    from botkit_plugins.feedback.export import add_command

    add_command(commands)
