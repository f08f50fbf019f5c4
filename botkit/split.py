"""Splitting an answer that is longer than a platform message allows.

Cuts at the best boundary before the limit: a paragraph, then a line, then a sentence,
then a word; never inside a link. A code block too long for one message is closed at a
line and reopened (with its language) in the next piece, so every piece renders.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)(\S*)", re.M)
_LINK = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)|<[^<>\s][^<>\n]*>|https?://\S+")
_SENTENCE = re.compile(r"[.!?][)\]\"']?\s")
_FENCE_RESERVE = 4  # room for the "\n```" that closes a code block cut in two


def split_text(text: str, limit: int) -> list[str]:
    """`text` as pieces of at most `limit` characters each, cut at readable boundaries."""
    if limit <= 2 * _FENCE_RESERVE + 8:
        raise ValueError(f"message limit too small to split into: {limit}")
    pieces: list[str] = []
    while len(text) > limit:
        cut, fence = _find_cut(text, limit)
        head, rest = text[:cut].rstrip(), text[cut:]
        if fence is not None:
            head += "\n" + fence[0]
            rest = f"{fence[0]}{fence[1]}\n" + rest.lstrip("\n")
        else:
            rest = rest.lstrip()
        pieces.append(head)
        text = rest
    pieces.append(text)
    return pieces


def _open_fence_at(text: str, pos: int) -> tuple[str, str] | None:
    """The (marker, language) of the code block open at `pos`, or None outside code."""
    open_fence = None
    for m in _FENCE.finditer(text, 0, pos):
        if open_fence is None:
            open_fence = (m.group(1), m.group(2))
        elif m.group(1) == open_fence[0]:
            open_fence = None
    return open_fence


def _find_cut(text: str, limit: int) -> tuple[int, tuple[str, str] | None]:
    window = text[: limit - _FENCE_RESERVE - 8]
    floor = len(window) // 4
    links = [m.span() for m in _LINK.finditer(text, 0, limit)]

    def in_link(pos: int) -> bool:
        return any(a < pos < b for a, b in links)

    for pattern in ("\n\n", "\n"):
        pos = window.rfind(pattern)
        while pos > floor:
            cut = pos + len(pattern)
            if _open_fence_at(text, cut) is None and not in_link(cut):
                return cut, None
            pos = window.rfind(pattern, 0, pos)
    for m in reversed(list(_SENTENCE.finditer(window, floor))):
        if _open_fence_at(text, m.end()) is None and not in_link(m.end()):
            return m.end(), None
    # inside a long code block: cut at its last line that fits, close and reopen the fence
    pos = window.rfind("\n")
    if pos > floor:
        fence = _open_fence_at(text, pos + 1)
        if fence is not None:
            return pos + 1, fence
    pos = window.rfind(" ")
    while pos > floor and in_link(pos + 1):
        pos = window.rfind(" ", 0, pos)
    cut = pos + 1 if pos > floor else len(window)
    return cut, _open_fence_at(text, cut)
