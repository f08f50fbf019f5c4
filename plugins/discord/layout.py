"""How a message reads on Discord: notes in Discord's own markdown, within 2,000 characters,
and the buttons under a final answer.

Sources (and failure notices) are ordinary text; warnings, scores and other context
notes are subtext (`-# `, Discord's small grey line), one line each; the feedback prompt
is not shown, because the adapter shows 👍 and 👎 buttons (or reactions) instead. With
the sources button, a final answer's sources note is not in the text either: a "Sources"
button shows it to whoever clicks (`sources_text`). The core's renderer sized the answer
counting notes as plain text, and subtext prefixes make them longer, so notes are
shortened (the last ones first) until the message fits.
"""

from __future__ import annotations

from collections.abc import Iterable

from botkit.adapters import Outgoing
from botkit.events import Note

MAX_LENGTH = 2000
SUBTEXT = "-# "
FEEDBACK = "feedback"
SOURCES = "sources"
#: the buttons' custom ids: a vote is the part after the prefix ("up", "down")
VOTE_PREFIX = "botkit:vote:"
SOURCES_ID = "botkit:sources"
#: note kinds shown as normal text; every other kind but feedback is subtext
_PLAIN_KINDS = frozenset({"sources", "error"})
_ELLIPSIS = "…"


def wants_votes(message: Outgoing) -> bool:
    """True for a final answer the feedback middleware asks to be voted on."""
    return message.final and any(note.kind == FEEDBACK for note in message.notes)


def sources_text(message: Outgoing, limit: int = MAX_LENGTH) -> str | None:
    """What the Sources button shows: a final answer's sources notes, within `limit`."""
    if not message.final:
        return None
    text = "\n\n".join(n.text.strip("\n") for n in message.notes if n.kind == SOURCES and n.text.strip())
    if len(text) > limit:
        text = text[:limit - len(_ELLIPSIS)].rsplit("\n", 1)[0] + "\n" + _ELLIPSIS
    return text or None


def buttons(message: Outgoing, *, votes: bool, sources: bool) -> list[tuple[str, str | None, str | None]]:
    """The buttons under `message` as (custom_id, label, emoji): 👍/👎 when `votes` and the
    answer asks for feedback, "Sources" when `sources` and it has any; none before it is final."""
    row: list[tuple[str, str | None, str | None]] = []
    if votes and wants_votes(message):
        row += [(VOTE_PREFIX + "up", None, "👍"), (VOTE_PREFIX + "down", None, "👎")]
    if sources and sources_text(message):
        row.append((SOURCES_ID, "Sources", "📚"))
    return row


def content(message: Outgoing, limit: int = MAX_LENGTH, *, hide: frozenset[str] = frozenset()) -> str:
    """The message's text for Discord: never empty (Discord rejects that), never over `limit`.
    Notes of the kinds in `hide` are left out (shown otherwise, e.g. behind a button)."""
    body = message.text or message.status or ""
    notes = [n for n in message.notes if n.kind not in hide] if hide else message.notes
    above = _blocks(n for n in notes if n.placement == "above")
    below = _blocks(n for n in notes if n.placement != "above")
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
