"""`botkit init`: a commented config for the platforms and backend chosen.

Written from the config models the plugins registered, so it knows every key a plugin
has: what must be given is written out (secrets as `${VARS}` to set in the environment),
everything else is commented out with its default and what it does (from the `#:`
comments above each field).
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from botkit.config import RootConfig
from botkit.plugins import Plugins

_DOC = re.compile(r"^\s*#:\s?(.*)$")
_FIELD = re.compile(r"^\s*(\w+)\s*:")
_VAR = re.compile(r"\$\{(\w+)\}")
#: the core sections of a deployment, for plugin checks that span sections (Teams' local mode)
_DEPLOYED = RootConfig.model_validate({"server": {"host": "0.0.0.0"}})
#: adapters that receive platform requests on botkit's HTTP server
_NEEDS_SERVER = {"teams"}


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field's `#:` comment (or its description), from the model's source."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in source.splitlines():
            if m := _DOC.match(line):
                comment.append(m.group(1))
            elif (m := _FIELD.match(line)) and comment:
                docs[m.group(1)] = " ".join(comment)
                comment = []
            else:
                comment = []
    for name, info in model.model_fields.items():
        if info.description and name not in docs:
            docs[name] = info.description
    return docs


def _flow(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    value = json.loads(json.dumps(value, default=str))  # paths and the like as the strings YAML holds
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _example(model: type[BaseModel], env: str, indent: str) -> list[str]:
    """The lines of one section: required keys written out, the others commented."""
    docs = field_docs(model)
    fields = model.model_fields
    secrets = [n for n, f in fields.items() if "SecretStr" in str(f.annotation)]
    given = _needed(model)
    lines: list[str] = []
    for name, info in fields.items():
        if name == "type":
            continue
        doc = f"  # {docs[name]}" if name in docs else ""
        if name in given:
            lines.append(f"{indent}{name}: {_required_value(info.annotation, f'{env}_{name}'.upper())}{doc}")
        else:
            default = info.get_default(call_default_factory=True)
            shown = '""' if isinstance(default, SecretStr) or default is None and name in secrets else (
                "null" if default is None else _flow(default))
            lines.append(f"{indent}# {name}: {shown}{doc}")
    return lines


def _needed(model: type[BaseModel]) -> set[str]:
    """The keys to write out: the required ones, plus the first optional one (or pair) that
    makes the section valid when the model asks for one of several (an API key or OAuth2, a
    token or a secret, an app id with its password)."""
    fields = model.model_fields
    required = {n for n, f in fields.items() if f.is_required() and n != "type"}
    optional = sorted((n for n, f in fields.items() if not f.is_required() and f.default is None),
                      key=lambda n: "SecretStr" not in str(fields[n].annotation))
    for extra in [(), *((n,) for n in optional), *itertools.combinations(optional, 2)]:  # Teams needs a pair
        chosen = required | set(extra)
        data = {n: yaml.safe_load(_VAR.sub("x1", _required_value(fields[n].annotation, "X"))) for n in chosen}
        try:  # as deployed: behind a public address, where a platform reaches it
            model.model_validate(data, context={"root": _DEPLOYED})
        except ValidationError:
            continue
        return chosen
    return required


def _required_value(annotation: Any, env: str) -> str:
    """A value to start from for a required field: a `${VAR}` (a one-item list of them for lists)."""
    text = str(annotation)
    if text.startswith("list["):
        inner = getattr(annotation, "__args__", (str,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            required = [n for n, f in inner.model_fields.items() if f.is_required()]
            return "[{" + ", ".join(f'{n}: "${{{env}_{n.upper()}}}"' for n in required) + "}]"
        return f'["${{{env}}}"]'
    return f'"${{{env}}}"'


def render(plugins: Plugins, adapters: list[str], backend: str, command: str) -> str:
    """The config text for `adapters` and a `backend` of that type."""
    out = [f"# botkit deployment, written by `{command}`.",
           "# Check it with `botkit check -c FILE`, run it with `botkit run -c FILE`.",
           "# ${VAR} is read from the environment: set the variables named below (secrets belong there).",
           "# Commented keys show their defaults.", "",
           "store:",
           '  url: "sqlite:///botkit.db"        # relative to this file; postgresql://... for several replicas',
           ""]
    if _NEEDS_SERVER & set(adapters):
        out += ["server:                           # platform requests arrive here (behind HTTPS)",
                "  host: 0.0.0.0", "  port: 3000", ""]
    else:
        out += ["# server: {host: 127.0.0.1, port: 3000}   # /healthz, /readyz, /metrics; Slack's HTTP events", ""]
    out.append("adapters:")
    for name in adapters:
        model = plugins.adapters[name].config_model
        body = _example(model, name, "    ")
        out += [f"  {name}:" + ("" if any(not line.lstrip().startswith("#") for line in body) else " {}")] + body
    backend_name = "kb" if backend == "local" else backend
    out += ["", "backends:", f"  {backend_name}:", f"    type: {backend}"]
    out += _example(plugins.backends[backend].config_model, backend, "    ")
    out += ["", "middlewares:", "  citations: {}                     # [N] -> links, and the cited sources below",
            "  # fcs_warning: {threshold: 0.5}   # warn when the factual-consistency score is low", "",
            "log:", "  level: INFO", "  # format: json", ""]
    return "\n".join(out)


def write_config(plugins: Plugins, args: argparse.Namespace) -> int:
    """`botkit init`: write the config (exit 2 for unknown names, 1 if the file exists)."""
    adapters = args.adapters or ["console"]
    unknown = [a for a in adapters if a not in plugins.adapters]
    if unknown or args.backend not in plugins.backends:
        what = (f"unknown adapter {unknown[0]!r} (known: {', '.join(sorted(plugins.adapters))})" if unknown else
                f"unknown backend type {args.backend!r} (known: {', '.join(sorted(plugins.backends))})")
        print(f"botkit init: {what}", file=sys.stderr)
        return 2
    command = "botkit init " + " ".join(adapters) + f" --backend {args.backend}"
    text = render(plugins, list(dict.fromkeys(adapters)), args.backend, command)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if path.exists() and not args.force:
        print(f"botkit init: {path} exists (--force to overwrite it)", file=sys.stderr)
        return 1
    path.write_text(text, encoding="utf-8")
    written = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    names = sorted(set(_VAR.findall(written)))
    print(f"wrote {path}" + (f"; set {', '.join(names)} in the environment" if names else "")
          + f", then: botkit check -c {path}")
    return 0
