"""The deployment's shape: the core's config sections, the shared HTTP settings plugins
reuse, and the validated `Config`. Plugins subclass `Section` for their own sections.
Reading the YAML file into these is `botkit.config.loader`'s job."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, BeforeValidator, ByteSize, ConfigDict, Field, SecretStr, model_validator)

from botkit.plugins import Component

class Section(BaseModel):
    """Base of every config section, core or plugin: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ConfigError(Exception):
    """One or more problems with the config, each a `file:line: key: message` line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- the core's own sections ------------------------------------------------------------


class StoreConfig(Section):
    #: a secret: a PostgreSQL URL carries a password
    url: SecretStr = SecretStr("sqlite:///botkit.db")
    #: how long processed event ids are remembered (Slack retries for minutes; keep >= 24 h)
    events_ttl_hours: float = Field(48.0, ge=24.0)
    #: SQLite only. "normal": a commit survives the process being killed, but the last commits
    #: before a power cut or an OS crash may be lost (the WAL is synced at checkpoints);
    #: "full": every commit is synced too (each group commit waits for the disk)
    synchronous: Literal["normal", "full"] = "normal"
    #: SQLite only. true: the bot's store process holds the file for itself and keeps WAL's index
    #: in its own memory (no `-shm` file mapped: a file truncated, or a disk gone read-only, under
    #: it cannot kill that process with SIGBUS); other processes (`botkit sessions`, `sqlite3`)
    #: cannot open the store while the bot runs. false: they can, through the shared mapping
    exclusive: bool = True
    #: SQLite only: active sessions kept in memory, those used last (a few hundred bytes each,
    #: more with a backend's history); a thread whose session was let go is read back from the
    #: database when it speaks again
    cached_sessions: int = Field(10_000, ge=1)


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=0, le=65535)
    #: None: start when the config gives this section (host or port), when /metrics is asked
    #: for, or when a plugin added a route; false: never
    enabled: bool | None = None


class Route(Section):
    """Which backend serves a message; every given field must match. First match wins."""

    backend: str
    adapter: str | None = None
    workspace: str | None = None
    channel: str | None = None
    direct: bool | None = None


class DispatchConfig(Section):
    strategy: Literal["queue", "latest"] = "queue"
    max_in_flight: int = Field(64, ge=1)
    max_queued_per_thread: int = Field(20, ge=1)
    max_queued: int = Field(20_000, ge=1)
    turn_timeout: float = Field(120.0, gt=0)
    #: post the adapter's progress placeholder only if no answer text arrived within this
    #: many seconds: a fast answer is then one post instead of a post and an edit (0: at once)
    progress_delay: float = Field(0.5, ge=0)
    #: an answer longer than this is cut there, with the failure notice (a runaway backend
    #: must not fill a thread; platforms split long answers into several messages)
    max_answer_chars: int = Field(100_000, ge=1_000)
    #: files on questions larger than this ("10MB", "512KB", bytes) are not downloaded; the
    #: answer says so. Files are downloaded only when the backend reads them
    max_file_size: ByteSize = ByteSize(10_000_000)
    #: seconds one file's download may take
    file_timeout: float = Field(30.0, gt=0)
    busy_message: str = "I'm busy with other questions right now, please try again in a moment."
    #: told where a refused message is not delivered again (Discord, the console) while the
    #: store cannot write; Slack and Teams get a 503 and send it again later
    unavailable_message: str = "I can't take questions right now. Please ask again in a few minutes."
    failure_notice: str = "Sorry, I couldn't finish this answer: {reason}"
    reset_commands: list[str] = ["reset", "/reset", "new", "/new"]
    help_commands: list[str] = ["help", "/help"]
    help_text: str = (
        "Ask me a question and I'll answer from the knowledge base, citing sources as [N]. "
        "Follow-ups in this thread continue the conversation; say `reset` to start over."
    )
    reset_text: str = "Starting a new conversation in this thread."
    shutdown_notice: str = "I was restarted before I could answer this. Please ask again."


class LoggingConfig(Section):
    """`log:` (or `logging:`). Every line of a turn carries its thread key and turn id."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    #: log message texts (questions, answers, library request bodies at DEBUG); off by default
    content: bool = False


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """Seconds from a number or "90s", "15m", "24h", "7d", "2w"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 15m, 24h, 7d)")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class SessionsConfig(Section):
    #: a thread silent this long starts a new backend session with its next message (None: never)
    idle_timeout: Duration | None = None
    #: tell the asker when their message starts a new session after the idle timeout
    announce_new_session: bool = False
    new_session_text: str = "It has been a while, so this starts a new conversation."
    #: how often idle sessions are looked for
    check_every: Duration = 60.0


class RecoveryConfig(Section):
    """`recovery:` turns cut off by a crash, a stop, or a replica that died."""

    #: a question still unanswered after this long is not answered any more: the asker is told
    max_age: Duration = 3600.0
    #: a replica owns the threads it works on for this long, renewed by a heartbeat; a dead
    #: replica's threads are taken over within about `lease_ttl` + `sweep_interval`
    lease_ttl: Duration = 20.0
    #: how often each replica looks for journaled turns that no live replica owns
    sweep_interval: Duration = 5.0

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> RecoveryConfig:
        if self.lease_ttl < 1.0:
            raise ValueError("lease_ttl must be at least 1 s (the heartbeat renews it every lease_ttl / 4)")
        return self


class RetentionConfig(Section):
    #: turns (questions, answers, feedback) older than this are deleted (None: kept)
    turns_days: float | None = Field(None, gt=0)
    #: how long processed event ids are kept for dedupe; overrides store.events_ttl_hours
    events_hours: float | None = Field(None, ge=24.0)
    prune_every: Duration = 3600.0


class PostTarget(Section):
    """Where a scheduled answer goes: a new thread in `channel` of `adapter`."""

    adapter: str
    channel: str
    #: the platform workspace (Slack team id, Discord guild); default: the adapter's own
    workspace: str | None = None


class AskSpec(Section):
    question: str
    #: default: the backend the routes pick for the target channel
    backend: str | None = None


class ScheduledJob(Section):
    """A question asked on a schedule, answered as a new thread (a digest, a reminder)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str | None = None
    every: Duration | None = None
    timezone: str = "UTC"
    #: a run missed by less than this (the bot was down) still happens once; later ones are skipped
    misfire_grace: Duration = 3600.0
    post: PostTarget
    ask: AskSpec

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduledJob:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron or every")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        if self.cron is not None:
            from botkit.cron import cron_trigger  # imports APScheduler: only for a config with cron jobs

            try:
                cron_trigger(self.cron, self.timezone)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from exc
        return self


class MetricsConfig(Section):
    #: None: serve /metrics whenever the HTTP server runs; true: start the server for it
    enabled: bool | None = None
    path: str = "/metrics"


# -- shared by plugins ---------------------------------------------------------------------


class RetrySettings(Section):
    """Retries of a request that failed with 429/5xx or could not connect, before any answer text.

    A `Retry-After` header is honoured when it asks for at most `max_wait` seconds;
    otherwise the wait doubles from `backoff` on each attempt.
    """

    attempts: int = Field(3, ge=1, le=10)
    backoff: float = Field(0.5, ge=0)
    max_wait: float = Field(30.0, ge=0)


class HttpSettings(Section):
    """Base of an HTTP backend's config section: timeouts, pool size and retries."""

    timeout: float = Field(120.0, gt=0, description="longest silence while waiting for a response or the next chunk")
    connect_timeout: float = Field(10.0, gt=0)
    max_connections: int = Field(20, ge=1)
    retry: RetrySettings = RetrySettings()


class RootConfig(Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    plugins: list[str] = []
    store: StoreConfig = StoreConfig()
    server: ServerConfig = ServerConfig()
    adapters: dict[str, dict[str, Any] | None] = {}
    backends: dict[str, dict[str, Any] | None] = {}
    routes: list[Route] = []
    middlewares: dict[str, dict[str, Any] | None] = {}
    dispatch: DispatchConfig = DispatchConfig()
    logging: LoggingConfig = Field(LoggingConfig(), alias="log")
    sessions: SessionsConfig = SessionsConfig()
    retention: RetentionConfig = RetentionConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    schedule: list[ScheduledJob] = []
    metrics: MetricsConfig = MetricsConfig()


@dataclass(slots=True)
class Configured:
    """One configured adapter, backend or middleware: its component and validated section."""

    name: str
    component: Component
    settings: BaseModel


@dataclass(slots=True)
class Config:
    """The validated deployment."""

    path: Path
    root: RootConfig
    adapters: dict[str, Configured] = field(default_factory=dict)
    backends: dict[str, Configured] = field(default_factory=dict)
    middlewares: dict[str, Configured] = field(default_factory=dict)
    #: top-level sections that plugins registered (`botkit_register_sections`), as configured
    sections: dict[str, Configured] = field(default_factory=dict)
    lines: dict[tuple, int] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def require(self, *kinds: str, purpose: str) -> None:
        """Refuse a config without `kinds` ("adapters", "backends") that `purpose` needs.

        Only what a command uses is required: the history commands read a config that
        names only a store, `botkit ask` one that names only a backend.
        """
        problems = [f"{self.path.name}:{self.lines.get((kind,), 1)}: {kind}: {purpose} needs at least one "
                    f"{kind[:-1]}, and none is configured" for kind in kinds if not getattr(self, kind)]
        if problems:
            raise ConfigError(problems)


def routes_of(config: Config) -> list[Route]:
    """The routes in force: as configured, or everything to the only backend."""
    if config.root.routes:
        return list(config.root.routes)
    return [Route(backend=next(iter(config.root.backends)))]
