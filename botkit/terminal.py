"""Text from users and backends made safe to print on a terminal.

A question or an answer may hold bytes that were not UTF-8 (kept by Python as lone
surrogates, which cannot be written or stored) and control characters (an escape
sequence in an answer could clear the screen or retitle the window). Both are replaced
by visible characters; nothing is dropped.
"""

from __future__ import annotations

import re

#: control characters but tab and line feed
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


def decodable(text: str) -> str:
    """`text` with undecodable bytes and lone surrogates as U+FFFD (so it can be written anywhere)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _escaped_only(text) else "surrogatepass"
                           ).decode("utf-8", "replace")


def _escaped_only(text: str) -> bool:
    return all("\udc80" <= c <= "\udcff" for c in text if "\ud800" <= c <= "\udfff")


def printable(text: str, *, keep_lines: bool = False) -> str:
    """`text` as it may be printed: decodable, control characters shown as U+FFFD, line
    breaks kept with `keep_lines` (else spaces: one line stays one line)."""
    text = decodable(text).replace("\r\n", "\n")
    if not keep_lines:
        text = text.replace("\n", " ")
    return _CONTROL.sub(_REPLACEMENT, text)
