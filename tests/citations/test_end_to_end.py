"""Citations through the real dispatcher and renderer, for every markup flavour."""

from __future__ import annotations

import re

import pytest

from botkit.testing import running_bot

ANSWER = "Install with pip [1]. Behind a proxy set HTTPS_PROXY [3][1]. Ignore [7]. Done [2]."
SOURCES = [
    {"title": "Install guide", "url": "https://docs.example.com/install"},
    {"title": "Changelog", "url": "https://docs.example.com/changes"},
    {"title": "Proxy FAQ", "url": "https://docs.example.com/proxy"},
    {"title": "Never cited", "url": "https://docs.example.com/never"},
]
LINK = {
    "slack": "<https://docs.example.com/proxy|[3]>",
    "markdown": "[[3]](<https://docs.example.com/proxy>)",
    "teams": "[[3]](https://docs.example.com/proxy)",
    "plain": "[3]",
}


def config(markup: str, **citations) -> dict:
    return {
        "adapters": {"rec": {"type": "recording", "markup": markup}},
        "backends": {"b": {"type": "fake", "answer": ANSWER, "chunks": len(ANSWER), "sources": SOURCES,
                         "delay": 0.001}},
        "middlewares": {"citations": citations},
    }


@pytest.mark.parametrize("markup", ["plain", "markdown", "slack", "teams"])
async def test_streamed_and_final_edits_carry_correct_links(markup: str, tmp_path) -> None:
    async with running_bot(config(markup), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("how do I install?")
        await bot.idle(10)
    answer_calls = [m for _, _, m in rec.calls if m.text]
    assert len(answer_calls) > 3  # it really streamed
    final = answer_calls[-1]
    assert final.final
    assert LINK[markup] in final.text
    assert "[7]" not in final.text and "Ignore." in final.text
    for message in answer_calls:
        assert not re.search(r"\[\d*$", message.text), message.text  # no half-arrived marker shown
        assert "[7]" not in message.text
        if markup != "plain":
            for link in re.findall(r"<https[^>]*>|\]\((?:<[^>]*>|[^)]*)\)", message.text):
                assert link in final.text
    [footer] = [n for n in final.notes if n.kind == "sources"]
    assert len(footer.text.splitlines()) == 1 + 3  # heading and the three cited documents
    assert footer.text.index("Install guide") < footer.text.index("Proxy FAQ") < footer.text.index("Changelog")
    assert "Never cited" not in footer.text
    # only the final message has the footer
    assert all(not n.kind == "sources" for m in answer_calls[:-1] for n in m.notes)


async def test_style_none_and_max_sources_end_to_end(tmp_path) -> None:
    async with running_bot(config("markdown", style="none"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("q")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
    assert final.text == "Install with pip. Behind a proxy set HTTPS_PROXY. Ignore. Done."
    assert final.notes == []


async def test_max_sources_end_to_end(tmp_path) -> None:
    async with running_bot(config("slack", max_sources=1, more_text="+{n} more"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("q")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
    [footer] = final.notes
    assert footer.text.splitlines() == ["*Sources*", "• [1] <https://docs.example.com/install|Install guide>",
                                        "+2 more"]
