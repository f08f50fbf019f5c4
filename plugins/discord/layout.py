"""How a message reads on Discord: notes in Discord's own markdown, within 2,000 characters.

Sources (and failure notices) are ordinary text; warnings, scores and other context
notes are subtext (`-# `, Discord's small grey line), one line each; the feedback prompt
is not shown, because the adapter adds 👍 and 👎 reactions to the message instead. The
core's renderer sized the answer counting notes as plain text, and subtext prefixes
make them longer, so notes are shortened (the last ones first) until the message fits.
"""

from __future__ import annotations

from collections.abc import Iterable

from botkit.adapters import Outgoing
from botkit.events import Note

MAX_LENGTH = 2000
SUBTEXT = "-# "
FEEDBACK = "feedback"
#: note kinds shown as normal text; every other kind but feedback is subtext
_PLAIN_KINDS = frozenset({"sources", "error"})
_ELLIPSIS = "…"


def wants_votes(message: Outgoing) -> bool:
    """True for a final answer the feedback middleware asks to be voted on."""
    return message.final and any(note.kind == FEEDBACK for note in message.notes)


def content(message: Outgoing, limit: int = MAX_LENGTH) -> str:
    """The message's text for Discord: never empty (Discord rejects that), never over `limit`."""
    body = message.text or message.status or ""
    above = _blocks(n for n in message.notes if n.placement == "above")
    below = _blocks(n for n in message.notes if n.placement != "above")
    text = _join(above, body, below)
    for blocks in (below, above):
        while len(text) > limit and blocks:
            _shorten(blocks, len(text) - limit)
            text = _join(above, body, below)
    if len(text) > limit:  # the answer alone is too long: the renderer should not let that happen
        text = text[:limit - len(_ELLIPSIS)] + _ELLIPSIS
    return text or _ELLIPSIS


def _blocks(notes: Iterable[Note]) -> list[list[str]]:
    """Notes as blocks of lines; consecutive subtext notes share a block, one line each."""
    blocks: list[list[str]] = []
    subtext_open = False
    for note in notes:
        if note.kind == FEEDBACK or not note.text.strip():
            continue
        if note.kind in _PLAIN_KINDS:
            blocks.append(note.text.strip("\n").splitlines())
            subtext_open = False
            continue
        lines = [SUBTEXT + line.strip() for line in note.text.splitlines() if line.strip()]
        if subtext_open:
            blocks[-1].extend(lines)
        else:
            blocks.append(lines)
            subtext_open = True
    return blocks


def _join(above: list[list[str]], body: str, below: list[list[str]]) -> str:
    parts = ["\n".join(block) for block in above] + [body] + ["\n".join(block) for block in below]
    return "\n\n".join(part for part in parts if part)


def _shorten(blocks: list[list[str]], excess: int) -> None:
    """Make the last block shorter by `excess` characters or more: drop its last line (whole
    lines, so no link is cut in half), cut a last remaining line short, or drop the block."""
    block = blocks[-1]
    if len(block) > 1:
        block.pop()
        return
    line = block[0]
    keep = len(line) - excess - len(_ELLIPSIS)
    if keep > (len(SUBTEXT) if line.startswith(SUBTEXT) else 0):
        block[0] = line[:keep].rstrip() + _ELLIPSIS
    else:
        blocks.pop()
