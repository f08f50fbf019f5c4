"""botkit built-in plugin: the Slack adapter (slack-bolt), registered lazily.

Only the config model lives here: this module is imported at every botkit start, so
slack_bolt/slack_sdk are imported by `botkit_plugins.slack.adapter` alone, when a
`slack` adapter is configured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from botkit import hookimpl
from botkit.config import Section


#: prompts Slack shows at most in an assistant thread (assistant.threads.setSuggestedPrompts)
MAX_SUGGESTED_PROMPTS = 4


class SuggestedPrompt(Section):
    """One of `suggested_prompts`: a button in a new assistant thread that asks `message`."""

    #: the button's label
    title: str = Field(min_length=1)
    #: what the person asks by clicking it
    message: str = Field(min_length=1)


class SlackConfig(Section):
    """`adapters.<name>` for `type: slack`."""

    bot_token: SecretStr
    #: needed for the HTTP Events API (bolt verifies every request's signature with it)
    signing_secret: SecretStr | None = None
    #: an app-level token (xapp-...) turns on Socket Mode when `mode` is auto
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    mode: Literal["auto", "socket", "http"] = "auto"
    events_path: str = "/slack/events"

    #: "edits": chat.postMessage then chat.update; "native": chat.startStream/appendStream/stopStream
    streaming: Literal["edits", "native"] = "edits"
    edit_interval: float = Field(1.0, gt=0)
    #: characters of answer per message (one markdown block holds 12,000; notes need room too)
    max_length: int = Field(10_000, ge=200, le=12_000)
    #: 429s slack_sdk retries itself (after Retry-After) before the renderer's backoff takes over
    rate_limit_retries: int = Field(1, ge=0, le=10)

    #: answer messages in a thread the bot already answers, without a new mention
    thread_followups: bool = True
    #: one backend session per DM thread, or one per DM conversation
    dm_sessions: Literal["thread", "conversation"] = "thread"
    #: bot ids whose messages are answered (other bots are ignored; the bot itself always is)
    allow_bots: list[str] = []
    #: replace <@U..> and <#C..> in questions by readable names (users.info, conversations.info)
    resolve_mentions: bool = True

    #: how "working on it" shows: a placeholder message, a reaction on the question,
    #: the assistant thread status (assistant apps), or nothing
    progress: Literal["placeholder", "reaction", "status", "none"] = "placeholder"
    progress_reaction: str = "eyes"
    progress_status: str = "is thinking…"

    #: offered when someone opens an assistant thread (Slack's AI-app pane), at most 4
    suggested_prompts: list[SuggestedPrompt] = []
    #: the heading above the suggested prompts; Slack's own when left out
    suggested_prompts_title: str | None = Field(None, min_length=1)

    @field_validator("suggested_prompts")
    @classmethod
    def _at_most_four_prompts(cls, prompts: list[SuggestedPrompt]) -> list[SuggestedPrompt]:
        if len(prompts) > MAX_SUGGESTED_PROMPTS:
            raise ValueError(f"Slack shows at most {MAX_SUGGESTED_PROMPTS} suggested prompts in an assistant "
                             f"thread, and {len(prompts)} are given: keep {MAX_SUGGESTED_PROMPTS} or fewer")
        return prompts

    @model_validator(mode="after")
    def _transport_has_its_secret(self) -> SlackConfig:
        if self.transport == "socket" and self.app_token is None:
            raise ValueError("mode socket needs app_token (an xapp-... app-level token)")
        if self.transport == "http" and self.signing_secret is None:
            raise ValueError("the HTTP Events API needs signing_secret (or set app_token for Socket Mode)")
        return self

    @property
    def transport(self) -> Literal["socket", "http"]:
        if self.mode == "auto":
            return "socket" if self.app_token is not None else "http"
        return self.mode


@hookimpl
def botkit_register_adapters(register) -> None:  # noqa: ANN001 - pluggy passes the core's callable
    register("slack", "botkit_plugins.slack.adapter:SlackAdapter", SlackConfig)
