"""Bot Framework activities in and out: the thread a message belongs to, and what is sent.

Threads: a personal (1:1) or group chat is one thread (thread part ""); in a channel,
`conversation.id` carries `;messageid=<root>` and the root activity id is the thread.
A thread the bot starts itself in a channel is a conversation it creates there, whose
id is again `<channel>;messageid=<root>`.

Feedback: a final answer's feedback note becomes 👍/👎 `Action.Submit` buttons on an
Adaptive Card (the only card when notes go in the text); a click comes back as a
`message` whose `value` is the button's data, which is a vote, never a question.
"""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass
from typing import Any

from botkit.adapters import Outgoing
from botkit.events import Attachment, ThreadKey
from botkit_plugins.teams.files import attachments

PLATFORM = "teams"
#: channel conversation ids (`19:…@thread.tacv2`, older `…@thread.skype`); chats are `a:…` or `…@thread.v2`
_CHANNEL_ID = re.compile(r"^19:.+@thread\.(tacv2|skype)$")
_AT = re.compile(r"<at>(.*?)</at>", re.S)
_TAGS = re.compile(r"<[^>]+>")
#: the key of a feedback button's data, so a click is told apart from other card submits
FEEDBACK_KEY = "botkit_feedback"
_BUTTONS = (("👍", "up"), ("👎", "down"))


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where to post in a thread: JSON-able, kept in `MessageRef.data` so edits survive a restart."""

    service_url: str
    conversation_id: str
    conversation_type: str
    bot_id: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"service_url": self.service_url, "conversation_id": self.conversation_id,
                "conversation_type": self.conversation_type, "bot_id": self.bot_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        return cls(data["service_url"], data["conversation_id"], data.get("conversation_type", ""),
                   data.get("bot_id", ""))


@dataclass(frozen=True, slots=True)
class Message:
    """A user's message activity, normalized."""

    activity_id: str
    thread: ThreadKey
    conversation: Conversation
    user: str
    user_name: str | None
    text: str
    mentions: tuple[str, ...]
    is_direct: bool
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Reaction:
    """Reactions a user added to a message, or the vote of a feedback button they clicked
    (with the text they wrote, from Teams' own feedback form)."""

    thread: ThreadKey
    conversation: Conversation
    message_id: str
    user: str
    reactions: tuple[str, ...]
    comment: str | None = None


def guess_type(conversation_id: str) -> str:
    """"channel" or "chat" for a conversation the bot has not heard from yet, by its id."""
    return "channel" if _CHANNEL_ID.match(conversation_id) else "chat"


def split_thread_id(conversation_id: str) -> tuple[str, str]:
    """`<channel>;messageid=<root>` as (channel, root); root is "" for a chat."""
    channel, _, root = conversation_id.partition(";messageid=")
    return channel, root


def tenant_of(activity: dict[str, Any]) -> str:
    conversation = activity.get("conversation") or {}
    tenant = conversation.get("tenantId") or ((activity.get("channelData") or {}).get("tenant") or {}).get("id")
    return str(tenant or "")


def parse_message(activity: dict[str, Any]) -> Message | None:
    """The message in `activity`, or None when it is not one the bot should answer."""
    if activity.get("type") != "message" or feedback_value(activity) is not None:
        return None
    activity_id = activity.get("id")
    if not isinstance(activity_id, str):
        return None
    place = _place(activity, activity_id)
    if place is None:
        return None
    thread, conversation = place
    recipient = activity.get("recipient") or {}
    text, mentions = strip_mentions(str(activity.get("text") or ""), activity.get("entities") or [],
                                     str(recipient.get("id") or ""))
    files = attachments(activity)
    if not text and not files:
        return None
    sender = activity["from"]
    return Message(
        activity_id=activity_id,
        thread=thread,
        conversation=conversation,
        user=_user(activity),
        user_name=sender.get("name"),
        text=text,
        mentions=mentions,
        is_direct=conversation.conversation_type == "personal",
        attachments=files,
    )


def parse_reaction(activity: dict[str, Any]) -> Reaction | None:
    """Reactions added to a message (a `messageReaction`) or a click on a feedback button
    (a `message` whose `value` is the button's data), or None for anything else."""
    kind = activity.get("type")
    if kind == "messageReaction":
        added = activity.get("reactionsAdded") or []
        reactions = tuple(str(r["type"]) for r in added if isinstance(r, dict) and r.get("type"))
        message_id = activity.get("replyToId")
    elif kind == "message" and (value := feedback_value(activity)) is not None:
        reactions = (value,)
        data = activity.get("value") or {}
        message_id = data.get("message_id") or activity.get("replyToId")
    else:
        return None
    if not reactions or not isinstance(message_id, str) or not message_id:
        return None
    place = _place(activity, message_id)
    if place is None:
        return None
    thread, conversation = place
    return Reaction(thread, conversation, message_id, _user(activity), reactions)


def feedback_value(activity: dict[str, Any]) -> str | None:
    """The vote a feedback button sent ("up"/"down"), or None when `activity` is no such click."""
    value = activity.get("value")
    vote = value.get(FEEDBACK_KEY) if isinstance(value, dict) else None
    return vote if isinstance(vote, str) and vote else None


def _place(activity: dict[str, Any], root: str) -> tuple[ThreadKey, Conversation] | None:
    """The thread `activity` happened in and where to reply there; None for the bot's own
    activities and malformed ones. In a channel, `root` is the thread's root when the
    conversation id does not name one (the activity is, or refers to, a top-level post)."""
    conversation = activity.get("conversation") or {}
    sender = activity.get("from") or {}
    recipient = activity.get("recipient") or {}
    conversation_id = conversation.get("id")
    if not _is_path_segment(conversation_id) or not sender.get("id") or not activity.get("serviceUrl"):
        return None
    if recipient.get("id") and sender.get("id") == recipient.get("id"):
        return None  # our own activity echoed back
    kind = conversation.get("conversationType") or "personal"
    if kind == "channel":
        channel, known_root = split_thread_id(conversation_id)
        root = known_root or root
        thread = ThreadKey(PLATFORM, tenant_of(activity), channel, root)
        reply_conversation = f"{channel};messageid={root}"
    else:
        thread = ThreadKey(PLATFORM, tenant_of(activity), conversation_id, "")
        reply_conversation = conversation_id
    return thread, Conversation(str(activity["serviceUrl"]), reply_conversation, kind, str(recipient.get("id") or ""))


def _is_path_segment(conversation_id: object) -> bool:
    """Replies go to `v3/conversations/{id}/…`: an empty or dot-only id would name another URL."""
    return isinstance(conversation_id, str) and conversation_id.strip(".") != ""


def _user(activity: dict[str, Any]) -> str:
    sender = activity["from"]
    return str(sender.get("aadObjectId") or sender["id"])


def strip_mentions(text: str, entities: list[Any], bot_id: str) -> tuple[str, tuple[str, ...]]:
    """Remove the bot's `<at>` mention; keep other people's names as plain text."""
    mentioned: list[str] = []
    for entity in entities:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        who = entity.get("mentioned") or {}
        if who.get("id") == bot_id and isinstance(entity.get("text"), str):
            text = text.replace(entity["text"], " ")
        elif who.get("id"):
            mentioned.append(str(who["id"]))
    text = _AT.sub(r"\1", text)
    text = html.unescape(_TAGS.sub("", text))
    return " ".join(text.split()), tuple(mentioned)


# -- outgoing ---------------------------------------------------------------------------


def message_activity(message: Outgoing, *, card: bool, message_id: str = "") -> dict[str, Any]:
    """A `message` activity showing `message`: notes in the text, or in an Adaptive Card.

    A feedback note is shown as buttons on a card either way; their data names
    `message_id` when it is known (an edit), else a click's `replyToId` tells.
    """
    feedback = any(note.kind == "feedback" for note in message.notes)
    notes = [note for note in message.notes if note.kind != "feedback"]
    shown = dataclasses.replace(message, notes=notes)
    if not (card and notes) and not feedback:
        return {"type": "message", "text": shown.plain(), "textFormat": "markdown"}
    content: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5",
                               "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": []}
    if card:
        text = message.text or message.status or ""
        content["body"] = [{"type": "TextBlock", "text": note.text, "wrap": True, "size": "Small",
                            "isSubtle": note.kind != "warning"} for note in notes]
    else:
        text = shown.plain()
    if feedback:
        content["actions"] = [feedback_button(title, vote, message_id) for title, vote in _BUTTONS]
    return {"type": "message", "text": text, "textFormat": "markdown",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": content}]}


def feedback_button(title: str, vote: str, message_id: str) -> dict[str, Any]:
    data = {FEEDBACK_KEY: vote, "message_id": message_id} if message_id else {FEEDBACK_KEY: vote}
    return {"type": "Action.Submit", "title": title, "data": data}


def new_thread_parameters(channel: str, tenant: str, bot_id: str, activity: dict[str, Any]) -> dict[str, Any]:
    """The body of `POST v3/conversations` that starts a thread in a channel with `activity`."""
    channel_data: dict[str, Any] = {"channel": {"id": channel}}
    if tenant:
        channel_data["tenant"] = {"id": tenant}
    return {"isGroup": True, "channelData": channel_data, "activity": activity, "bot": {"id": bot_id}}


def stream_activity(kind: str, text: str, sequence: int, stream_id: str | None) -> dict[str, Any]:
    """A `typing` activity of Teams streaming: informative or streaming, full text so far."""
    info: dict[str, Any] = {"type": "streaminfo", "streamType": kind, "streamSequence": sequence}
    if stream_id:
        info["streamId"] = stream_id
    return {"type": "typing", "text": text, "entities": [info]}


def final_stream_activity(message: Outgoing, stream_id: str, *, card: bool) -> dict[str, Any]:
    """The closing `message` of a stream: `streamType` final and no sequence."""
    activity = message_activity(message, card=card, message_id=stream_id)
    activity["entities"] = [{"type": "streaminfo", "streamId": stream_id, "streamType": "final"}]
    return activity
