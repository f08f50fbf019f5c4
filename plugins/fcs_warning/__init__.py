"""botkit built-in middleware: fcs_warning.

Warns the reader when the backend's factual-consistency score (FCS) is low, and can
replace a very poorly supported answer with a fallback (the store keeps the original).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from botkit import hookimpl
from botkit.config import Section


class FcsWarningConfig(Section):
    """`middlewares: fcs_warning:`; every key is optional."""

    #: a score below this gets the warning
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    #: the warning; may use {score} (0..1, e.g. {score:.0%})
    text: str = "⚠️ Parts of this answer may not be supported by the sources. Please check them."
    placement: Literal["above", "below"] = "below"
    #: show the score itself: on every scored answer, and appended to the warning
    show_score: bool = False
    score_text: str = "Factual consistency score: {score:.2f}"
    #: below this (lower) score the answer is replaced by `fallback`; None: never
    hide_below: float | None = Field(None, ge=0.0, le=1.0)
    fallback: str = "I couldn't find an answer to this that is well supported by the sources, sorry."

    @model_validator(mode="after")
    def _hide_below_under_threshold(self) -> FcsWarningConfig:
        if self.hide_below is not None and self.hide_below > self.threshold:
            raise ValueError("hide_below must not be above threshold")
        for name in ("text", "score_text"):
            try:
                getattr(self, name).format(score=0.5)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{name}: only {{score}} may be used in braces ({exc})") from None
        return self


@hookimpl
def botkit_register_middlewares(register) -> None:
    register("fcs_warning", "botkit_plugins.fcs_warning.middleware:FcsWarning", FcsWarningConfig)
