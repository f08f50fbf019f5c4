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
from typing import Any

import yaml
from pydantic import (BaseModel, ValidationError)

from botkit.config.models import Config, ConfigError, Configured, RootConfig
from botkit.plugins import PluginError, Plugins

#: the deployment botkit runs when no config is given: the bundled docs, answered locally
DEFAULT_CONFIG = Path(__file__).parents[1] / "default_config.yaml"
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
            msg = f"unknown key {loc[-1]!r}" + _suggestion(str(loc[-1]), known, "known keys", none="")
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
                problems.append(f"{raw.where(loc + ('type',))}: {_dotted(loc)}: unknown {kind} type {type_name!r}"
                                + _suggestion(str(type_name), sorted(registry)))
                continue
            settings = _section(raw, loc, component.config_model, data, problems, root)
            if settings is not None:
                target[name] = Configured(name, component, settings)

    for name, data in sections_of("middlewares").items():
        loc = ("middlewares", name)
        component = plugins.middlewares.get(name)
        if component is None:
            problems.append(f"{raw.where(loc)}: middlewares: unknown middleware {name!r}"
                            + _suggestion(name, sorted(plugins.middlewares)))
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


def _suggestion(value: str, known: list[str], listed: str = "known", *, none: str = "none") -> str:
    """What follows a name nobody knows: the closest of `known` as "did you mean", or else
    every one of them (`none` when there are none; "" says nothing then)."""
    hint = difflib.get_close_matches(value, known, n=1)
    if hint:
        return f" (did you mean {hint[0]!r}?)"
    if known or none:
        return f"; {listed}: {', '.join(known) or none}"
    return ""


def _cross_references(raw: RawConfig) -> list[str]:
    """Routes and scheduled jobs naming what is not configured; from the raw data, so that they
    are found beside any other mistake in the same sections."""
    problems: list[str] = []
    adapters, backends = _names(raw.data.get("adapters")), _names(raw.data.get("backends"))

    def refer(loc: tuple, value: Any, kind: str, known: set[str]) -> None:
        if isinstance(value, str) and value not in known:
            problems.append(f"{raw.where(loc)}: {_dotted(loc)}: no {kind} named {value!r}"
                            + _suggestion(value, sorted(known), "configured"))

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
