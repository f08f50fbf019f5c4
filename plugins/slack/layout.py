"""How an `Outgoing` looks in Slack: the answer in a `markdown` block, notes as context blocks.

The feedback note (`kind="feedback"`, from the feedback middleware) is shown as 👍/👎
buttons instead of its text: Block Kit buttons in an `actions` block, or, where a native
stream ends (`chat.stopStream`), Slack's own `feedback_buttons` in a `context_actions`
block. The adapter turns clicks on either into `botkit_reaction`.

Slack's `markdown` block renders the standard Markdown backends write (bold, lists,
code, `[text](url)` links), so the answer needs no Markdown-to-mrkdwn converter. Notes
come from `botkit_render` hooks written for markup "slack" (mrkdwn, `<url|text>`
links) and go into context blocks, where mrkdwn is native; a `<url|text>` link a hook
put into the answer text itself is turned into its Markdown form. Limits (spec §1):
12,000 characters per markdown block, 3,000 per context element, 10 elements per
context block, 50 blocks, 40,000 characters of `text`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from botkit.adapters import Outgoing
from botkit.events import Note

MARKDOWN_BLOCK_MAX = 12_000
CONTEXT_ELEMENT_MAX = 3_000
CONTEXT_ELEMENTS_MAX = 10
BLOCKS_MAX = 50
TEXT_MAX = 40_000

#: button value -> action_id of the feedback buttons (the value is what `botkit_reaction` gets)
FEEDBACK_ACTIONS = {"up": "botkit_feedback_up", "down": "botkit_feedback_down"}
_FEEDBACK_EMOJI = {"up": "👍", "down": "👎"}
#: the action_id of the native feedback buttons; their values are "up" and "down" too
NATIVE_FEEDBACK_ACTION = "botkit_feedback"
_FEEDBACK_LABELS = {"up": "Helpful", "down": "Not helpful"}

_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)\|([^>]+)>")


def to_markdown(text: str) -> str:
    """Answer text for a markdown block or a stream: `<url|text>` becomes `[text](url)`."""
    return _SLACK_LINK.sub(lambda m: f"[{m.group(2)}]({m.group(1)})", text)


def pieces(text: str, limit: int) -> list[str]:
    """`text` cut into parts of at most `limit` characters, preferring line ends."""
    out = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut + 1 if cut > limit // 2 else limit
        out.append(text[:cut])
        text = text[cut:]
    if text:
        out.append(text)
    return out


def feedback_block() -> dict[str, Any]:
    """The 👍/👎 buttons that stand for the feedback note."""
    return {"type": "actions", "block_id": "botkit_feedback", "elements": [
        {"type": "button", "action_id": action_id, "value": value,
         "text": {"type": "plain_text", "text": _FEEDBACK_EMOJI[value], "emoji": True}}
        for value, action_id in FEEDBACK_ACTIONS.items()]}


def native_feedback_block() -> dict[str, Any]:
    """Slack's own 👍/👎 for AI answers (`feedback_buttons` in a `context_actions` block)."""
    def button(value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": _FEEDBACK_EMOJI[value]}, "value": value,
                "accessibility_label": _FEEDBACK_LABELS[value]}

    return {"type": "context_actions", "elements": [
        {"type": "feedback_buttons", "action_id": NATIVE_FEEDBACK_ACTION,
         "positive_button": button("up"), "negative_button": button("down")}]}


def note_blocks(notes: list[Note], *, native_feedback: bool = False) -> list[dict[str, Any]]:
    """One context block per note (more when a note is longer than one block holds);
    the feedback note as buttons (`native_feedback`: Slack's feedback buttons)."""
    blocks = []
    for note in notes:
        if note.kind == "feedback":
            blocks.append(native_feedback_block() if native_feedback else feedback_block())
            continue
        elements = [{"type": "mrkdwn", "text": part} for part in pieces(note.text, CONTEXT_ELEMENT_MAX)]
        for i in range(0, len(elements), CONTEXT_ELEMENTS_MAX):
            blocks.append({"type": "context", "elements": elements[i:i + CONTEXT_ELEMENTS_MAX]})
    return blocks


def layout(message: Outgoing) -> tuple[str, list[dict[str, Any]]]:
    """(`text`, `blocks`) for chat.postMessage/chat.update: `text` is the notification fallback."""
    body = message.text or message.status or ""
    main = [{"type": "markdown", "text": part} for part in pieces(to_markdown(body), MARKDOWN_BLOCK_MAX)]
    above = note_blocks([n for n in message.notes if n.placement == "above"])
    below = note_blocks([n for n in message.notes if n.placement != "above"])
    blocks = (above + main + below)[:BLOCKS_MAX]
    # the notification text leaves out the feedback prompt: it asks for the buttons' answer in words
    shown = dataclasses.replace(message, notes=[n for n in message.notes if n.kind != "feedback"])
    return shown.plain()[:TEXT_MAX] or " ", blocks
