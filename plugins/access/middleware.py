"""The access middleware: refuse messages the rules do not admit, before anything else runs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botkit import hookimpl
from botkit.events import Inbound
from botkit.turn import Handled, Turn

from botkit_plugins.access import AccessConfig, Rules

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.access")


def _listed(value: str, allow: list[str] | None, deny: list[str]) -> str | None:
    """Why `value` is refused by one pair of lists, or None."""
    if value in deny:
        return "denied"
    if allow is not None and value not in allow:
        return "not allowed"
    return None


def refusal(rules: Rules, inbound: Inbound) -> str | None:
    """Why one layer's lists refuse `inbound`, or None if they admit it."""
    thread = inbound.thread
    checks = [("user", inbound.user, rules.allow_users, rules.deny_users),
              ("workspace", thread.workspace, rules.allow_workspaces, rules.deny_workspaces)]
    if not inbound.is_direct:
        checks.append(("channel", thread.channel, rules.allow_channels, rules.deny_channels))
    for what, value, allow, deny in checks:
        why = _listed(value, allow, deny)
        if why:
            return f"{what} {why}"
    return None


class Access:
    """Registered as a plugin when `middlewares: access:` is configured."""

    def __init__(self, config: AccessConfig, bot: Bot | None = None) -> None:
        self.config = config

    def check(self, inbound: Inbound) -> str | None:
        """Why `inbound` is refused, or None. Both the global lists and the adapter's must admit it;
        the adapter's `dms` overrides the global one."""
        cfg = self.config
        local = cfg.adapters.get(inbound.adapter)
        dms = local.dms if local is not None and local.dms is not None else cfg.dms is not False
        if inbound.is_direct and not dms:
            return "direct messages are off"
        for rules in (cfg, local):
            why = refusal(rules, inbound) if rules is not None else None
            if why:
                return why
        return None

    # before rate limits and commands: a refused message costs nothing and says nothing
    @hookimpl(tryfirst=True)
    def botkit_message_received(self, turn: Turn) -> Handled | None:
        inbound = turn.inbound
        why = self.check(inbound)
        if why is None:
            return None
        # never the text: refused messages may come from anyone
        log.info("access refused: %s (adapter %s, %s, user %s, event %s)",
                 why, inbound.adapter, inbound.thread, inbound.user, inbound.event_id)
        return Handled(reply=self.config.reply, reason=f"access: {why}")
