"""Logging setup: text or JSON lines on stderr, with every configured secret redacted.

Every line logged while a turn runs carries the turn's thread key and turn id (the
platform event id), from a context variable the dispatcher sets; the tasks a turn
starts inherit it. Message texts stay out of the log unless `log.content` is true:
botkit logs them only through `content()`, and other loggers (libraries put request and
response bodies, SQL parameters and gateway payloads in their DEBUG lines) are held at INFO.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

#: (thread key, turn id) of the turn the current task works for
turn_context: ContextVar[tuple[str, str] | None] = ContextVar("botkit_turn", default=None)

_log_content = False
#: the configured secrets, for `redact`
_secrets: list[str] = []


def content(text: str) -> str:
    """A message text as it may appear in the log: itself if `log.content`, else its length."""
    return text if _log_content else f"<{len(text)} chars>"


def redact(text: str) -> str:
    """`text` with every configured secret replaced (for what the CLI prints beside the log)."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


class TurnContext(logging.Filter):
    """Adds `thread` and `turn` to each record (None outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = turn_context.get()
        record.thread, record.turn = current if current is not None else (None, None)
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        thread = getattr(record, "thread", None)
        return f"{line} [thread={thread} turn={record.turn}]" if thread else line


class RedactSecrets(logging.Filter):
    """Replaces configured secret values wherever they would appear in a log line.

    Secrets are SecretStr in the config and never formatted on purpose; this catches a
    library that logs a header or a URL with a token in it.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = message
        for secret in self.secrets:
            if secret in cleaned:
                cleaned = cleaned.replace(secret, "***")
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "***")
        if cleaned is not message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        thread = getattr(record, "thread", None)
        if thread:
            entry["thread"] = thread
            entry["turn"] = record.turn
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: list[str] | None = None, *,
                  log_content: bool = False) -> None:
    global _log_content, _secrets
    _log_content = log_content
    _secrets = sorted(set(secrets or []), key=len, reverse=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(TurnContext())
    handler.addFilter(RedactSecrets(secrets or []))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # DEBUG below INFO is botkit's own unless texts may be logged: whichever library logs
    # bodies, its DEBUG records are never made (a list of known ones would miss the next)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    root.setLevel(numeric if log_content else max(logging.INFO, numeric))
    logging.getLogger("botkit").setLevel(numeric)


class Refusals:
    """Requests an endpoint refused (bad signature, malformed body): one WARNING line per
    `every` seconds at most, with how many were refused meanwhile, so that a flood of
    garbage costs a few log lines rather than one (or a traceback) per request."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 60.0) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.count = 0  # refused since the last line
        self._next_at = 0.0

    def refused(self, status: int, reason: str) -> int:
        """Note one refusal; returns `status` (the response to send)."""
        self.count += 1
        now = time.monotonic()
        if now >= self._next_at:
            self.logger.warning("%s: %d request(s) refused since the last report; the latest with %d: %s",
                                self.what, self.count, status, reason)
            self.count = 0
            self._next_at = now + self.every
        return status
