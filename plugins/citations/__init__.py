"""botkit built-in middleware: citations.

Turns the backend's `[N]` markers into links in the platform's markup and adds a footer
listing the cited sources. The work is in `botkit_plugins.citations.render` (pure
functions) and `botkit_plugins.citations.middleware` (the hook).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from botkit import hookimpl
from botkit.config import Section


class CitationsConfig(Section):
    """`middlewares: citations:`; every key is optional."""

    #: numeric: `[N]` linked to source N; footnotes: superscript numbers per document,
    #: links in the footer; none: markers removed and no footer.
    style: Literal["numeric", "footnotes", "none"] = "numeric"
    #: at most this many footer entries; the rest is summed up as "and N more"
    max_sources: int = Field(5, ge=1)
    #: e.g. "https://docs.example.com/{doc.id}#{part.section}"; None: the source's own url
    url_pattern: str | None = None
    #: e.g. "{doc.title} ({part.page})"; None: the source's own title
    title_pattern: str | None = None
    #: heading of the footer; "" for none
    footer_title: str = "Sources"
    #: what stands for the entries left out; `{n}` is their number
    more_text: str = "and {n} more"
    #: a title longer than this is cut with "…"
    max_title_length: int = Field(120, ge=10)


@hookimpl
def botkit_register_middlewares(register) -> None:
    register("citations", "botkit_plugins.citations.middleware:Citations", CitationsConfig)
