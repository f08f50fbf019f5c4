"""botkit built-in plugin: the Discord adapter (discord.py), registered lazily.

Only the config model lives here: this module is imported at every botkit start, so
discord.py is imported by `botkit_plugins.discord.adapter` alone, when a `discord`
adapter is configured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from botkit import hookimpl
from botkit.config import Section
from botkit.hookspecs import Register

DEFAULT_API_URL = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"


class DiscordConfig(Section):
    """`adapters.<name>` for `type: discord`."""

    token: SecretStr
    api_url: str = DEFAULT_API_URL
    gateway_url: str = DEFAULT_GATEWAY_URL
    #: channels (text channels or forums) where every message is a question
    help_channels: list[int] = []
    #: which messages are answered: ones mentioning the bot, any in help channels, DMs
    respond_to: list[Literal["mentions", "help_channels", "dms"]] = ["mentions", "help_channels", "dms"]
    #: open a thread on each question asked in a channel (follow-ups there continue the session);
    #: false: answer in the channel, one session per channel
    create_threads: bool = True
    #: str.format template with {question} and {user}; Discord allows at most 100 characters
    thread_name: str = "{question:.90}"
    thread_auto_archive_minutes: Literal[60, 1440, 4320, 10080] = 1440
    #: guild ids the /ask and /reset commands are synced to at startup (instant);
    #: empty: synced globally (Discord may take up to an hour to show them)
    guilds: list[int] = []
    sync_commands: bool = True
    #: how the feedback middleware's 👍/👎 show under a final answer: message buttons, reactions
    #: for people to click, or both (people's own 👍/👎 reactions on answers count either way)
    feedback: Literal["buttons", "reactions", "both"] = "buttons"
    #: a final answer's cited sources behind a "Sources" button, shown only to whoever clicks it,
    #: instead of under the answer
    sources_button: bool = True
    #: the reply only the voter sees after a click on 👍/👎; "" for none
    vote_reply: str = "Thanks for the feedback!"
    #: seconds between edits of one message: Discord allows 5 creates+edits per 5 s per channel
    #: (below 1 s only makes sense against a fake server in tests)
    edit_interval: float = Field(1.2, ge=0)
    #: large bots: a fixed shard count, or `auto_shard` to ask Discord (GET /gateway/bot)
    shard_count: int | None = Field(None, ge=1)
    auto_shard: bool = False
    #: seconds discord.py waits for GUILD_CREATEs after READY before the bot counts as ready
    guild_ready_timeout: float = Field(2.0, gt=0)
    #: seconds start() waits for the gateway to be ready
    ready_timeout: float = Field(60.0, gt=0)
    #: a 429 asking to wait longer than this is handed to the renderer instead of awaited
    #: inside discord.py (None: discord.py always waits); discord.py's minimum is 30
    max_ratelimit_timeout: float | None = Field(None, ge=30.0)

    @field_validator("thread_name")
    @classmethod
    def _template_formats(cls, value: str) -> str:
        try:
            value.format(question="q", user="u")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"thread_name must be a template using only {{question}} and {{user}}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _shards_consistent(self) -> DiscordConfig:
        if self.shard_count is not None and self.auto_shard:
            raise ValueError("set either shard_count or auto_shard, not both")
        return self


@hookimpl
def botkit_register_adapters(register: Register) -> None:
    register("discord", "botkit_plugins.discord.adapter:DiscordAdapter", DiscordConfig)
