"""The citations middleware: links markers on every edit, adds the footer on the final one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botkit import hookimpl
from botkit.adapters import Surface
from botkit.events import Draft, Note, NoteKind

from botkit_plugins.citations.render import footer, hide_partial_marker, resolve, rewrite

if TYPE_CHECKING:
    from botkit.bot import Bot

    from botkit_plugins.citations import CitationsConfig

#: the footer's share of a message, so it never crowds out the answer
_FOOTER_SHARE = 4
_FOOTER_MIN, _FOOTER_MAX = 200, 2900


class Citations:
    """Registered as a plugin when `middlewares: citations:` is configured."""

    def __init__(self, config: CitationsConfig, bot: Bot | None = None) -> None:
        self.config = config

    @hookimpl
    def botkit_render(self, draft: Draft, surface: Surface) -> None:
        cfg = self.config
        text = draft.text if draft.final else hide_partial_marker(draft.text)
        refs = resolve(draft.sources, cfg.url_pattern, cfg.title_pattern)
        fmt = surface.formatter
        draft.text, entries = rewrite(text, refs, fmt, cfg.style)
        if not draft.final or cfg.style == "none" or not entries:
            return
        budget = max(_FOOTER_MIN, min(_FOOTER_MAX, surface.max_length // _FOOTER_SHARE))
        draft.notes.append(Note(
            footer(entries, fmt, cfg.style, max_sources=cfg.max_sources, budget=budget,
                   title=cfg.footer_title, more_text=cfg.more_text, title_limit=cfg.max_title_length),
            kind=NoteKind.SOURCES,
        ))
