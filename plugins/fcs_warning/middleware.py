"""The fcs_warning middleware: a note on low scores, a fallback on very low ones, turn flags."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botkit import hookimpl
from botkit.adapters import Surface
from botkit.events import Draft, Note, NoteKind
from botkit.turn import Answer, Turn

if TYPE_CHECKING:
    from botkit.bot import Bot

    from botkit_plugins.fcs_warning import FcsWarningConfig

log = logging.getLogger("botkit.fcs_warning")


class FcsWarning:
    """Registered as a plugin when `middlewares: fcs_warning:` is configured."""

    def __init__(self, config: FcsWarningConfig, bot: Bot | None = None) -> None:
        self.config = config

    def hidden(self, score: float | None) -> bool:
        limit = self.config.hide_below
        return score is not None and limit is not None and score < limit

    def low(self, score: float | None) -> bool:
        return score is not None and score < self.config.threshold

    # first, so that a swapped answer reaches the citations middleware without markers or sources
    @hookimpl(tryfirst=True)
    def botkit_render(self, draft: Draft, surface: Surface) -> None:
        score, cfg = draft.score, self.config
        if score is None:
            return  # no score, no verdict: neither a warning nor reassurance
        if self.hidden(score):
            draft.text = cfg.fallback
            draft.sources = []
            return
        shown_score = cfg.score_text.format(score=score) if cfg.show_score else ""
        if self.low(score):
            warning = cfg.text.format(score=score)
            draft.notes.append(Note(f"{warning} ({shown_score})" if shown_score else warning,
                                    kind=NoteKind.WARNING, placement=cfg.placement))
        elif shown_score:
            draft.notes.append(Note(shown_score, kind=NoteKind.SCORE, placement=cfg.placement))

    @hookimpl
    def botkit_answer_complete(self, turn: Turn, answer: Answer) -> None:
        """Mark the turn for review: `low_fcs`, and `fcs_hidden` when the reader got the fallback."""
        if not self.low(answer.score):
            return
        answer.flags["low_fcs"] = True
        if self.hidden(answer.score):
            answer.flags["fcs_hidden"] = True
        log.info("turn %s has a low factual-consistency score %.2f%s", turn.inbound.event_id, answer.score,
                 " (answer replaced by the fallback)" if self.hidden(answer.score) else "")
