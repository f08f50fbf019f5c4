"""botkit built-in middleware: access.

Allow and deny lists of workspaces (Slack teams, Discord guilds, Teams tenants),
channels and users, globally and per adapter, and whether direct messages are answered.
"""

from __future__ import annotations

from pydantic import Field

from botkit import hookimpl
from botkit.config import Section


class Rules(Section):
    """One layer of rules. An allow list of None admits anyone; a deny list always wins.

    Ids are the platform's (what the adapter puts in the thread key and `user`). In a
    direct message the channel lists do not apply (`dms` decides); the workspace lists do
    (a Discord DM's workspace is "@me").
    """

    allow_workspaces: list[str] | None = None
    deny_workspaces: list[str] = []
    allow_channels: list[str] | None = None
    deny_channels: list[str] = []
    allow_users: list[str] | None = None
    deny_users: list[str] = []
    #: answer direct messages; None: as the global setting says
    dms: bool | None = None


class AccessConfig(Rules):
    """`middlewares: access:`: global rules, per-adapter rules, and what a refused user hears."""

    dms: bool | None = True
    #: said to a refused user; None: silence
    reply: str | None = None
    #: rules for one configured adapter (by its name under `adapters:`), checked after the global ones
    adapters: dict[str, Rules] = Field(default_factory=dict)


@hookimpl
def botkit_register_middlewares(register) -> None:
    register("access", "botkit_plugins.access.middleware:Access", AccessConfig)
