"""How text is marked up where an answer is shown: middlewares ask the surface's formatter
(`surface.formatter.link(...)`) instead of switching on markup names, so a platform with a
markup of its own brings its formatter and every middleware writes for it."""

from __future__ import annotations

import re
from enum import StrEnum


class Markup(StrEnum):
    PLAIN = "plain"  #: no markup (the console)
    MARKDOWN = "markdown"  #: CommonMark as Discord and the web show it
    SLACK = "slack"  #: Slack's mrkdwn
    TEAMS = "teams"  #: Teams' Markdown subset


class Formatter:
    """Plain text: nothing is marked up, links show their address where it matters."""

    markup: Markup = Markup.PLAIN

    def escape(self, text: str) -> str:
        """`text` shown as it is, whatever characters the markup gives a meaning."""
        return text

    def link(self, label: str, url: str | None) -> str:
        """`label` (already escaped) linking to `url` within running text."""
        return label

    def source_link(self, title: str, url: str | None) -> str:
        """A source's `title` (already escaped) and where it is: a list line, readable without markup."""
        return f"{title} — {url}" if url else title

    def bullet(self, line: str) -> str:
        return line

    def heading(self, text: str) -> str:
        return f"{text}:"

    def emphasis(self, text: str) -> str:
        """`text` (already escaped) set apart from the answer, as a progress note is."""
        return text


class MarkdownFormatter(Formatter):
    markup = Markup.MARKDOWN
    _SPECIAL = re.compile(r"([\\`*_~\[\]<>|])")

    def escape(self, text: str) -> str:
        return self._SPECIAL.sub(r"\\\1", text)

    def link(self, label: str, url: str | None) -> str:
        if url is None:
            return label
        # the <...> form needs no escaping of ( ) and keeps Discord from embedding the page
        return f"[{label}](<{url.replace(' ', '%20').replace('<', '%3C').replace('>', '%3E')}>)"

    def source_link(self, title: str, url: str | None) -> str:
        return self.link(title, url)

    def bullet(self, line: str) -> str:
        return f"- {line}"

    def heading(self, text: str) -> str:
        return f"**{self.escape(text)}**"

    def emphasis(self, text: str) -> str:
        return f"_{text}_"


class TeamsFormatter(MarkdownFormatter):
    markup = Markup.TEAMS

    def link(self, label: str, url: str | None) -> str:
        if url is None:
            return label
        return f"[{label}]({url.replace(' ', '%20').replace('(', '%28').replace(')', '%29')})"


class SlackFormatter(Formatter):
    markup = Markup.SLACK

    def escape(self, text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def link(self, label: str, url: str | None) -> str:
        if url is None:
            return label
        return f"<{url.replace('|', '%7C').replace('<', '%3C').replace('>', '%3E')}|{label}>"

    def source_link(self, title: str, url: str | None) -> str:
        return self.link(title, url)

    def bullet(self, line: str) -> str:
        return f"• {line}"

    def heading(self, text: str) -> str:
        return f"*{self.escape(text)}*"

    def emphasis(self, text: str) -> str:
        return f"_{text}_"


_FORMATTERS = {f.markup: f for f in (Formatter(), MarkdownFormatter(), TeamsFormatter(), SlackFormatter())}


def formatter_for(markup: str) -> Formatter:
    """The built-in formatter of `markup` (plain text for one botkit does not know)."""
    return _FORMATTERS.get(markup) or _FORMATTERS[Markup.PLAIN]
