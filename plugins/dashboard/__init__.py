"""botkit built-in plugin: the operator dashboard, at `/dashboard` on botkit's HTTP server.

A top-level section turns it on (it is neither an adapter nor a middleware):

    dashboard:
      token: "${BOTKIT_DASHBOARD_TOKEN}"

Without the token a request gets 401 and a login form, and none of the data; scripts send
`Authorization: Bearer <token>`, people log in with it once (an HttpOnly, SameSite=Strict
cookie derived from the token: changing the token logs everyone out). It shows turns over
time per adapter and backend, failures and timeouts, time to first text and total time
(median, p95), 👍/👎 counts and rate, answers with a low factual-consistency score,
questions the backend could not answer, and the latest questions with links to each turn.
Every figure is read through the store's history reads (SQLite and PostgreSQL alike), each
one bounded range of an index: opening it costs the same on a store of a million turns.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from botkit import hookimpl
from botkit.config import Duration, Section


class DashboardConfig(Section):
    """The top-level `dashboard:` section."""

    #: what people log in with and scripts send as `Authorization: Bearer ...` (at least 16
    #: characters; `openssl rand -hex 24` makes one); put it in the environment
    token: SecretStr
    #: where the dashboard is served
    path: str = Field("/dashboard", pattern=r"^/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$")
    #: the period shown when none is picked: one of 1h, 24h, 7d, 30d
    window: str = "24h"
    #: the figures are computed over at most this many of the period's latest turns
    max_turns: int = Field(20_000, ge=100, le=1_000_000)
    #: an answer scoring below this is "low FCS" (default: the fcs_warning middleware's threshold, else 0.5)
    low_fcs: float | None = Field(None, ge=0, le=1)
    #: how long a login lasts
    login_for: Duration = 7 * 86400.0

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value()) < 16:
            raise ValueError("the dashboard token must be at least 16 characters long (openssl rand -hex 24)")
        return token

    @field_validator("window")
    @classmethod
    def _known_window(cls, window: str) -> str:
        from botkit_plugins.dashboard.figures import WINDOWS

        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
        return window


@hookimpl
def botkit_register_sections(register) -> None:  # noqa: ANN001 - pluggy passes the registrar
    register("dashboard", "botkit_plugins.dashboard.web:Dashboard", DashboardConfig)
