"""botkit: retrieval-augmented chat backends as streaming bots on chat platforms.

The names re-exported here are the plugin author's API; everything else is internal.
Importing botkit never imports a platform library (slack-bolt, discord.py, ...).
"""

from botkit.adapters import (Adapter, Capabilities, MessageRef, Outgoing, RateLimited, Stopping, Surface,
                             Unavailable, Undeliverable)
from botkit.backends import Backend, BackendError, Question, Session
from botkit.config import Section
from botkit.events import (
    AnswerEvent,
    Attachment,
    Done,
    Draft,
    Failed,
    Inbound,
    Note,
    NoteKind,
    Placement,
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
from botkit.markup import Formatter, Markup
from botkit.plugins import PluginError, hookimpl
from botkit.render import DeliveryObserver
from botkit.store.tables import PluginTables, Tables
from botkit.turn import Answer, Handled, Turn, TurnStatus

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "Answer",
    "AnswerEvent",
    "Attachment",
    "Backend",
    "BackendError",
    "Capabilities",
    "DeliveryObserver",
    "Done",
    "Draft",
    "Failed",
    "FileNotRead",
    "Formatter",
    "Handled",
    "Inbound",
    "Markup",
    "MessageRef",
    "Note",
    "NoteKind",
    "Outgoing",
    "Placement",
    "PluginError",
    "PluginTables",
    "Question",
    "RateLimited",
    "Score",
    "Section",
    "Session",
    "SessionInfo",
    "Source",
    "Sources",
    "Status",
    "Stopping",
    "Surface",
    "Tables",
    "TextDelta",
    "ThreadKey",
    "Turn",
    "TurnStatus",
    "Unavailable",
    "Undeliverable",
    "Warning",
    "hookimpl",
]
