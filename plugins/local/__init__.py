"""botkit built-in plugin: the local backend (`type: local`), the embedded default.

Answers from Markdown and text files on this machine through SQLite FTS5, with no
account and no network. Only the config lives here; the backend module is imported
when a `local` backend is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from botkit import hookimpl
from botkit.config import Section

#: botkit's own documentation, shipped with the package: what the default config answers from
KNOWLEDGE = Path(__file__).with_name("knowledge")


def _exists(path: Path, info: ValidationInfo) -> Path:
    """A path that is not there fails `botkit check`, not the bot's start."""
    base = (info.context or {}).get("base_dir")
    if base is not None:
        found = path.expanduser()
        if not (found if found.is_absolute() else Path(base) / found).exists():
            raise ValueError(f"no file or folder {str(path)!r} (relative paths start at the config file's folder)")
    return path


class LocalConfig(Section):
    """`backends.<name>` for `type: local`."""

    #: folders (searched recursively for .md, .markdown and .txt) and files; relative
    #: paths are relative to the config file's folder
    paths: list[Annotated[Path, AfterValidator(_exists)]] = Field(default_factory=lambda: [KNOWLEDGE], min_length=1)
    #: an SQLite file keeping the index between runs; None: in memory, built at start
    index_path: Path | None = None
    #: seconds between checks for changed files (mtime/size) while running; 0: every question
    refresh_interval: float = Field(5.0, ge=0)
    #: sources link to base_url + the file's relative path + #heading instead of the file path
    base_url: str | None = None
    #: the most passages one answer cites
    max_sources: int = Field(3, ge=1, le=20)
    #: characters per streamed chunk
    chunk_chars: int = Field(60, ge=1)
    #: earlier questions of the thread used to retrieve for a follow-up question
    history_turns: int = Field(3, ge=0, le=20)


@hookimpl
def botkit_register_backends(register) -> None:  # noqa: ANN001 - pluggy passes the core's callable
    register("local", "botkit_plugins.local.backend:LocalBackend", LocalConfig)
