"""Low factual-consistency warnings: the note, the fallback, the turn flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from botkit.adapters import Surface
from botkit.events import Draft, Source, ThreadKey
from botkit.store import open_store
from botkit.testing import running_bot

from botkit_plugins.fcs_warning import FcsWarningConfig
from botkit_plugins.fcs_warning.middleware import FcsWarning

SURFACE = Surface("test", "test", "markdown", 4000)


def render(score: float | None, final: bool = True, **cfg) -> Draft:
    draft = Draft(text="The answer [1].", sources=[Source(1, "Doc", "https://d.io")], score=score, final=final)
    FcsWarning(FcsWarningConfig(**cfg)).botkit_render(draft, SURFACE)
    return draft


def test_warning_below_threshold_only() -> None:
    low = render(0.2)
    assert [(n.kind, n.placement) for n in low.notes] == [("warning", "below")]
    assert "may not be supported" in low.notes[0].text
    assert low.text == "The answer [1]."
    assert render(0.5).notes == []  # at the threshold: fine
    assert render(0.9).notes == []


def test_no_score_no_warning_and_no_reassurance() -> None:
    assert render(None).notes == []
    assert render(None, show_score=True).notes == []


def test_text_placement_and_score_are_configurable() -> None:
    draft = render(0.3, text="Low confidence ({score:.0%})", placement="above", show_score=True)
    [note] = draft.notes
    assert note.placement == "above"
    assert note.text == "Low confidence (30%) (Factual consistency score: 0.30)"
    [shown] = render(0.8, show_score=True).notes
    assert (shown.kind, shown.text) == ("score", "Factual consistency score: 0.80")


def test_hide_below_swaps_the_answer_and_drops_sources() -> None:
    draft = render(0.05, hide_below=0.1, fallback="No good answer.")
    assert draft.text == "No good answer."
    assert draft.sources == [] and draft.notes == []
    kept = render(0.15, hide_below=0.1)
    assert kept.text == "The answer [1]." and kept.notes[0].kind == "warning"


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="hide_below"):
        FcsWarningConfig(threshold=0.3, hide_below=0.4)
    with pytest.raises(ValidationError, match="score"):
        FcsWarningConfig(text="bad {field}")
    with pytest.raises(ValidationError):
        FcsWarningConfig(threshold=1.5)


def config(score: float | None, markup: str = "slack", **fcs) -> dict:
    return {
        "adapters": {"rec": {"type": "recording", "markup": markup}},
        "backends": {"b": {"type": "fake", "answer": "Proxies need HTTPS_PROXY [1].", "chunks": 3,
                           "sources": [{"title": "Proxy FAQ", "url": "https://d.io/proxy"}], "score": score}},
        "middlewares": {"fcs_warning": fcs, "citations": {}},
    }


async def stored_turns(tmp_path, thread: ThreadKey) -> list[dict]:
    """The turns as a fresh process reads them from the store the bot wrote."""
    store = open_store("sqlite:///botkit-test.db", base_dir=tmp_path)
    await store.open()
    try:
        record = await store.active_session(thread, "b")
        return await store.turns_of(record.id)
    finally:
        await store.close()


@pytest.mark.parametrize(("score", "warned"), [(0.2, True), (0.7, False), (None, False)])
@pytest.mark.parametrize("markup", ["plain", "markdown", "slack", "teams"])
async def test_end_to_end_warning_and_store_flag(score, warned, markup, tmp_path) -> None:
    async with running_bot(config(score, markup), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("proxy?")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
    [turn] = await stored_turns(tmp_path, rec.thread())
    assert final.final
    assert any(n.kind == "warning" for n in final.notes) is warned
    assert ("may not be supported" in final.plain()) is warned
    assert bool(turn["flags"].get("low_fcs")) is warned
    assert turn["score"] == score


async def test_end_to_end_hide_below_keeps_original_in_store(tmp_path) -> None:
    async with running_bot(config(0.05, hide_below=0.1, fallback="Sorry, no reliable answer."), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("proxy?")
        await bot.idle(10)
        final = rec.messages[rec.order[-1]]
    [turn] = await stored_turns(tmp_path, rec.thread())
    assert final.plain() == "Sorry, no reliable answer."  # no footer, no warning, no original
    assert turn["answer"] == "Proxies need HTTPS_PROXY [1]."
    assert turn["flags"]["low_fcs"] is True and turn["flags"]["fcs_hidden"] is True
