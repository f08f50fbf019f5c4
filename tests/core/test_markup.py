"""Each markup's formatter: what middlewares write through `surface.formatter`."""

from __future__ import annotations

from botkit.adapters import Capabilities, Surface
from botkit.markup import Formatter, Markup, formatter_for


def test_link_escapes_characters_that_would_break_the_syntax() -> None:
    url = "https://x.io/a b|c<d>(e)"
    assert formatter_for("slack").link("[1]", url) == "<https://x.io/a b%7Cc%3Cd%3E(e)|[1]>"
    assert formatter_for("markdown").link("[1]", url) == "[[1]](<https://x.io/a%20b|c%3Cd%3E(e)>)"
    assert formatter_for("teams").link("[1]", url) == "[[1]](https://x.io/a%20b|c<d>%28e%29)"
    assert formatter_for("plain").link("[1]", url) == "[1]"
    assert formatter_for("slack").link("[1]", None) == "[1]"


def test_text_is_escaped_and_listed_in_each_markup() -> None:
    assert formatter_for("slack").escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert formatter_for("markdown").escape("*x* [y]") == r"\*x\* \[y\]"
    assert formatter_for("plain").source_link("Guide", "https://g.io") == "Guide — https://g.io"
    assert [formatter_for(m).bullet("x") for m in Markup] == ["x", "- x", "• x", "- x"]
    assert [formatter_for(m).heading("Sources") for m in Markup] == ["Sources:", "**Sources**", "*Sources*",
                                                                     "**Sources**"]


class Shouting(Formatter):
    def heading(self, text: str) -> str:
        return text.upper()


def test_a_surface_carries_its_platforms_formatter_or_the_markups_own() -> None:
    assert Surface("p", "a", "slack", 4000).formatter is formatter_for("slack")
    assert formatter_for("an unknown markup") is formatter_for("plain")
    custom = Capabilities(markup="zulip", formatter=Shouting())
    from botkit.adapters import Adapter

    cls = type("Zulip", (Adapter,), {"send": None, "edit": None, "platform": "zulip", "capabilities": custom})
    adapter = cls("z", None, None)  # type: ignore[arg-type]
    surface = adapter.surface
    assert surface.formatter.heading("Sources") == "SOURCES"
    assert (surface.platform, surface.adapter, surface.markup) == ("zulip", "z", "zulip")
    assert adapter.surface is surface  # made once: every answer asks for it
    adapter.capabilities = Capabilities(markup="plain")  # an adapter that learns its limits at start
    assert adapter.surface.formatter is formatter_for("plain")


def test_the_default_placeholder_is_set_apart_in_the_adapters_markup_and_one_given_is_kept() -> None:
    """An adapter for a plain-text platform no longer posts Markdown's underscores while it works."""
    from botkit.adapters import Adapter

    def adapter(markup: Markup, placeholder: str | None = None) -> Adapter:
        cls = type("Made", (Adapter,), {"send": None, "edit": None, "platform": "p",
                                        "capabilities": Capabilities(markup=markup), "placeholder": placeholder})
        return cls("a", None, None)  # type: ignore[arg-type]

    assert adapter(Markup.PLAIN).progress_text == "thinking…"
    assert adapter(Markup.MARKDOWN).progress_text == adapter(Markup.SLACK).progress_text == "_thinking…_"
    assert adapter(Markup.PLAIN, "working on it").progress_text == "working on it"
