"""How notes read on Discord and how a message is kept within 2,000 characters."""

from __future__ import annotations

from botkit.adapters import Outgoing
from botkit.events import Note

from botkit_plugins.discord.layout import content, wants_votes

SOURCES = Note("**Sources**\n1. [Router guide](https://docs.example.com/router)", kind="sources")
WARNING = Note("⚠️ Check the sources.", kind="warning")
PROMPT = Note("Was this helpful? Reply 👍 or 👎.", kind="feedback")


def test_context_notes_are_subtext_lines_sources_normal_text_and_no_prompt() -> None:
    message = Outgoing("The answer.", [Note("Answered from the 2024 docs", kind="context", placement="above"),
                                       SOURCES, WARNING, Note("Score: 0.20\nmodel: x", kind="score"), PROMPT],
                       final=True)
    assert content(message) == (
        "-# Answered from the 2024 docs\n\n"
        "The answer.\n\n"
        "**Sources**\n1. [Router guide](https://docs.example.com/router)\n\n"
        "-# ⚠️ Check the sources.\n-# Score: 0.20\n-# model: x"
    )
    assert wants_votes(message)
    assert not wants_votes(Outgoing("The answer.", [PROMPT]))  # not final
    assert not wants_votes(Outgoing("The answer.", [WARNING], final=True))


def test_failure_notice_is_normal_text_and_status_or_ellipsis_fill_empty_messages() -> None:
    assert content(Outgoing("Half an ans", [Note("The backend failed.", kind="error")])) == \
        "Half an ans\n\nThe backend failed."
    assert content(Outgoing("", status="_thinking…_")) == "_thinking…_"
    assert content(Outgoing("", [PROMPT], final=True)) == "…"


def test_notes_are_shortened_last_first_to_fit() -> None:
    text = "a" * 1900
    sources = Note("Sources\n" + "\n".join(f"{i}. https://docs.example.com/page{i}" for i in range(1, 6)),
                   kind="sources")
    message = Outgoing(text, [sources, Note("w" * 300, kind="warning")], final=True)
    out = content(message)
    assert len(out) <= 2000
    # the warning, last, went first; then whole source lines, never half a link
    assert out == text + "\n\nSources\n1. https://docs.example.com/page1\n2. https://docs.example.com/page2"

    one_line = content(Outgoing("b" * 1950, [Note("x" * 100, kind="warning")]))
    assert len(one_line) == 2000 and one_line.endswith("…") and "\n\n-# xxx" in one_line


def test_answer_alone_over_the_limit_is_cut() -> None:
    out = content(Outgoing("c" * 2500))
    assert len(out) == 2000 and out.endswith("…")


def test_buttons_stand_for_the_prompt_and_the_sources_of_a_final_answer_only() -> None:
    from botkit_plugins.discord.layout import buttons, sources_text

    final = Outgoing("The answer.", [SOURCES, WARNING, PROMPT], final=True)
    assert buttons(final, votes=True, sources=True) == [
        ("botkit:vote:up", None, "👍"), ("botkit:vote:down", None, "👎"), ("botkit:sources", "Sources", "📚")]
    assert buttons(final, votes=False, sources=True) == [("botkit:sources", "Sources", "📚")]
    assert buttons(Outgoing("The answer.", [SOURCES, PROMPT]), votes=True, sources=True) == []  # not final
    assert sources_text(final) == SOURCES.text
    assert content(final, hide=frozenset({"sources"})) == "The answer.\n\n-# ⚠️ Check the sources."
    many = Outgoing("x", [Note("**Sources**\n" + "\n".join(f"{i}. [T{i}](https://e.x/{i})" for i in range(300)),
                               kind="sources")], final=True)
    shown = sources_text(many)
    assert shown is not None and len(shown) <= 2000 and shown.endswith("\n…")
