"""What to install for an optional part of botkit, in words that work however botkit was
installed: `pip install 'botkit[slack]'` only works where botkit is on a package index, so
the hint names the extra's own requirements (read from the installed metadata)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires


def requirements(extra: str) -> list[str]:
    """The requirements botkit's `extra` adds, e.g. ["slack-bolt>=1.28", "slack-sdk>=3.37"]."""
    try:
        declared = requires("botkit") or []
    except PackageNotFoundError:
        return []
    found = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        if f'extra == "{extra}"' in marker.replace("'", '"') and not requirement.strip().startswith("botkit"):
            found.append(requirement.strip().replace(" ", ""))
    return found


def install_hint(extra: str) -> str | None:
    """A pip command that installs what botkit's `extra` needs; None when botkit has no such extra
    (a third-party plugin's component: its own documentation says what it needs)."""
    needed = requirements(extra)
    if not needed:
        return None
    return "pip install " + " ".join(f"'{r}'" for r in needed) + f" (botkit's {extra!r} extra)"
