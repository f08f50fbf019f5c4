"""The deployment's one YAML file: read with line numbers, `${ENV}` filled in, validated.

Every error names the file, the line, the key path and what was expected, e.g.
`config.yaml:14: backends.support.corpora: field required`. Each plugin's section is
validated by the pydantic model the plugin registered. Secrets are `SecretStr` in the
models, and no error message ever quotes a value from the file.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (BaseModel, BeforeValidator, ByteSize, ConfigDict, Field, SecretStr, ValidationError,
                      model_validator)

from botkit.plugins import Component, PluginError, Plugins

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    #: SQLite only. true: the bot's process holds the file for itself and keeps WAL's index in
    #: its own memory (no `-shm` file mapped: a file truncated, or a disk gone read-only, under
    #: it cannot kill the process with SIGBUS); other processes (`botkit sessions`, `sqlite3`)
    #: cannot open the store while the bot runs. false: they can, through the shared mapping
    exclusive: bool = True


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


# -- reading YAML with line numbers --------------------------------------------------------


@dataclass(slots=True)
class RawConfig:
    path: Path
    data: dict[str, Any]
    lines: dict[tuple, int]  # key path -> 1-based line
    #: what reading found (unset variables, duplicate keys): reported with validation's problems
    problems: list[str] = field(default_factory=list)
    #: key paths whose value named an unset variable (validation's complaint about them is noise)
    unset: set[tuple] = field(default_factory=set)

    def line(self, loc: tuple) -> int:
        """The line of the deepest part of `loc` the file has (a missing key: its parent)."""
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def where(self, loc: tuple) -> str:
        return f"{self.path.name}:{self.line(loc)}"


def _interpolate(text: str, where: str, key: str, problems: list[str]) -> str:
    """`text` with `${VAR}`s filled in; an unset variable is a problem and becomes ""."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            problems.append(f"{where}: {key}: environment variable {name} is not set "
                            f"(set it, or write ${{{name}:-default}})")
            return ""
        return value

    return _ENV.sub(sub, text) if "$" in text else text


def read_config(path: str | Path) -> RawConfig:
    """Parse YAML into plain data, fill in `${VAR}`s, and remember each key's line.

    Unset variables and duplicated keys are collected in `problems`, not raised, so that
    they are reported together with every validation error.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{path.name}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    lines: dict[tuple, int] = {(): 1}
    problems: list[str] = []
    unset: set[tuple] = set()
    constructor = yaml.SafeLoader(text)

    def build(n: yaml.Node, loc: tuple) -> Any:
        lines.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            constructor.flatten_mapping(n)
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                key = constructor.construct_object(key_node)
                key = key if isinstance(key, str) else str(key)
                line = key_node.start_mark.line + 1
                if key in out:  # YAML would keep the last one silently
                    problems.append(f"{path.name}:{line}: {_dotted(loc + (key,))}: duplicate key "
                                    f"(also on line {lines[loc + (key,)]}); write it once")
                    continue
                lines[loc + (key,)] = line
                out[key] = build(value_node, loc + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, loc + (i,)) for i, item in enumerate(n.value)]
        value = constructor.construct_object(n)
        if isinstance(value, str):
            before = len(problems)
            value = _interpolate(value, f"{path.name}:{n.start_mark.line + 1}", _dotted(loc), problems)
            if len(problems) > before:
                unset.add(loc)
        return value

    data = build(node, ()) if node is not None else {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path.name}:1: the config must be a mapping of sections"])
    return RawConfig(path, data, lines, problems, unset)


# -- validation -------------------------------------------------------------------------------


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(model: Any, loc: tuple) -> Any:
    """The pydantic model whose field `loc[-1]` would be, for 'did you mean' hints."""
    current = model
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) in (dict, list):
            args = typing.get_args(current)
            current = args[-1] if args else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Optional[X] / X | None -> X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _problems(exc: ValidationError, model: type[BaseModel], raw: RawConfig, prefix: tuple,
              also_known: tuple[str, ...] = ()) -> list[str]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = prefix + loc
        if full in raw.unset:
            continue  # already reported: the variable it names is not set
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            known = list(owner.model_fields) if owner else []
            if len(full) == 1:  # a top-level key: the sections plugins registered are known too
                known += also_known
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else
                                                (f"; known keys: {', '.join(known)}" if known else ""))
            out.append(f"{raw.where(full)}: {_dotted(full[:-1])}: {msg}")
        else:
            msg = "field required" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            out.append(f"{raw.where(full)}: {_dotted(full)}: {msg}")
    return out


def _section(raw: RawConfig, loc: tuple, model: type[BaseModel], data: Any, problems: list[str],
             root: RootConfig | None = None, also_known: tuple[str, ...] = ()) -> BaseModel | None:
    """Validate one section. Validators find the config's folder as `info.context["base_dir"]`
    and the core sections as `info.context["root"]` (None when those failed), for checks
    that span sections such as "only on a loopback host"."""
    try:
        return model.model_validate(data or {}, context={"base_dir": raw.path.parent, "root": root})
    except ValidationError as exc:
        problems.extend(_problems(exc, model, raw, loc, also_known))
        return None


def validate_config(raw: RawConfig, plugins: Plugins) -> Config:
    """Validate the core sections and each plugin's section with the plugin's model."""
    problems: list[str] = list(raw.problems)
    core_names = set(RootConfig.model_fields) | {"log"}
    for name, component in plugins.sections.items():
        if name in core_names:
            raise PluginError(component.plugin, f"section {name!r} is one of the core's; choose another name")
    sections = {name: raw.data[name] for name in plugins.sections if name in raw.data}
    core = {key: value for key, value in raw.data.items() if key not in sections}
    root = _section(raw, (), RootConfig, core, problems, also_known=tuple(plugins.sections))
    config = Config(raw.path, root or RootConfig(), lines=raw.lines)
    for name, data in sections.items():
        if data is not None and not isinstance(data, dict):
            problems.append(f"{raw.where((name,))}: {name}: expected a mapping of keys")
            continue
        component = plugins.sections[name]
        settings = _section(raw, (name,), component.config_model, data, problems, root)
        if settings is not None:
            config.sections[name] = Configured(name, component, settings)

    def sections_of(key: str) -> dict[str, Any]:
        """Plugin sections, also when the core sections failed (so every error is reported)."""
        value = getattr(root, key) if root is not None else raw.data.get(key)
        return {k: v for k, v in value.items() if v is None or isinstance(v, dict)} if isinstance(value, dict) else {}

    for kind, sections, registry, target in (
        ("adapter", sections_of("adapters"), plugins.adapters, config.adapters),
        ("backend", sections_of("backends"), plugins.backends, config.backends),
    ):
        for name, data in sections.items():
            loc = (f"{kind}s", name)
            data = dict(data or {})
            type_name = data.pop("type", None) or name
            component = registry.get(type_name)
            if component is None:
                hint = difflib.get_close_matches(str(type_name), list(registry), n=1)
                problems.append(f"{raw.where(loc + ('type',))}: {_dotted(loc)}: unknown {kind} type {type_name!r}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else
                                   f"; known: {', '.join(sorted(registry)) or 'none'}"))
                continue
            settings = _section(raw, loc, component.config_model, data, problems, root)
            if settings is not None:
                target[name] = Configured(name, component, settings)

    for name, data in sections_of("middlewares").items():
        loc = ("middlewares", name)
        component = plugins.middlewares.get(name)
        if component is None:
            hint = difflib.get_close_matches(name, list(plugins.middlewares), n=1)
            problems.append(f"{raw.where(loc)}: middlewares: unknown middleware {name!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else
                               f"; known: {', '.join(sorted(plugins.middlewares)) or 'none'}"))
            continue
        settings = _section(raw, loc, component.config_model, data, problems, root)
        if settings is not None:
            config.middlewares[name] = Configured(name, component, settings)

    problems.extend(_cross_references(raw))
    if problems:
        raise ConfigError(sorted(problems, key=_line_of))
    return config


def _line_of(problem: str) -> int:
    """The line a `file:line: ...` problem names, to report them in the file's order."""
    parts = problem.split(":", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def _names(data: Any) -> set[str]:
    return {str(k) for k in data} if isinstance(data, dict) else set()


def _cross_references(raw: RawConfig) -> list[str]:
    """Routes and scheduled jobs naming what is not configured; from the raw data, so that they
    are found beside any other mistake in the same sections."""
    problems: list[str] = []
    adapters, backends = _names(raw.data.get("adapters")), _names(raw.data.get("backends"))

    def refer(loc: tuple, value: Any, kind: str, known: set[str]) -> None:
        if isinstance(value, str) and value not in known:
            hint = difflib.get_close_matches(value, sorted(known), n=1)
            problems.append(f"{raw.where(loc)}: {_dotted(loc)}: no {kind} named {value!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else
                               f"; configured: {', '.join(sorted(known)) or 'none'}"))

    routes = raw.data.get("routes")
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        if isinstance(route, dict):
            refer(("routes", i, "backend"), route.get("backend"), "backend", backends)
            refer(("routes", i, "adapter"), route.get("adapter"), "adapter", adapters)
    names: set[str] = set()
    schedule = raw.data.get("schedule")
    for i, job in enumerate(schedule if isinstance(schedule, list) else []):
        if not isinstance(job, dict):
            continue
        name = job.get("name")
        if isinstance(name, str) and name in names:
            problems.append(f"{raw.where(('schedule', i, 'name'))}: schedule[{i}].name: "
                            f"another job is already named {name!r}")
        names.add(name)
        post, ask = job.get("post"), job.get("ask")
        if isinstance(post, dict):
            refer(("schedule", i, "post", "adapter"), post.get("adapter"), "adapter", adapters)
        if isinstance(ask, dict):
            refer(("schedule", i, "ask", "backend"), ask.get("backend"), "backend", backends)
    if not routes and len(backends) > 1:
        problems.append(f"{raw.where(('backends',))}: routes: several backends are configured, "
                        "so routes must say which serves what (the last route is the default)")
    return problems


def routes_of(config: Config) -> list[Route]:
    """The routes in force: as configured, or everything to the only backend."""
    if config.root.routes:
        return list(config.root.routes)
    return [Route(backend=next(iter(config.root.backends)))]
