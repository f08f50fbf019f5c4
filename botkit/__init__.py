"""botkit: retrieval-augmented chat backends as streaming bots on chat platforms.

The names re-exported here are the plugin author's API; everything else is internal.
Importing botkit never imports a platform library (slack-bolt, discord.py, ...).
"""

from botkit.adapters import (Adapter, Capabilities, MessageRef, Outgoing, RateLimited, Stopping, Surface,
                             Unavailable)
from botkit.backends import Backend, BackendError, Question, Session
from botkit.events import (
    Attachment,
    Done,
    Draft,
    Failed,
    Inbound,
    Note,
    Score,
    SessionInfo,
    Source,
    Sources,
    Status,
    TextDelta,
    ThreadKey,
    Warning,
)
from botkit.files import FileNotRead
from botkit.plugins import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "Attachment",
    "Backend",
    "BackendError",
    "Capabilities",
    "Done",
    "Draft",
    "Failed",
    "FileNotRead",
    "Inbound",
    "MessageRef",
    "Note",
    "Outgoing",
    "Question",
    "RateLimited",
    "Score",
    "Session",
    "SessionInfo",
    "Source",
    "Sources",
    "Status",
    "Stopping",
    "Unavailable",
    "Surface",
    "TextDelta",
    "ThreadKey",
    "Warning",
    "hookimpl",
]
