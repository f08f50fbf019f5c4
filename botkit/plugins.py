"""The plugin manager: built-ins, entry points and the config's `plugins:` list, one path.

Built-in plugins are found through the entry-point group "botkit" exactly like a third
party's. `Plugins` is the typed face the core calls hooks through, so the rest of the
core never touches pluggy directly.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from botkit import hookspecs
from botkit.extras import install_hint

if TYPE_CHECKING:
    from botkit.adapters import Surface
    from botkit.events import Draft
    from botkit.turn import Handled, Turn

log = logging.getLogger("botkit.plugins")

ENTRY_POINT_GROUP = "botkit"
hookimpl = pluggy.HookimplMarker("botkit")


class PluginError(Exception):
    """A plugin could not be loaded, registered or configured; names the plugin."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"plugin {plugin}: {reason}")
        self.plugin = plugin
        self.reason = reason


async def await_me_maybe(value: Any) -> Any:
    """Await `value` if it is awaitable (an async hook implementation's result)."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True, slots=True)
class Component:
    """A registered adapter, backend or middleware type."""

    kind: str
    name: str
    target: type | str
    config_model: type
    plugin: str

    def load(self) -> type:
        """The class; a "module:Class" string is imported now, with a clear error."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            hint = install_hint(self.name)
            raise PluginError(
                self.plugin,
                f"{self.kind} {self.name!r} needs {missing!r}, which is not installed" + (f" ({hint})" if hint else ""),
            ) from exc
        except AttributeError as exc:
            raise PluginError(self.plugin, f"{self.target!r}: {exc}") from exc


class _PluginManager(pluggy.PluginManager):
    """Looks only at `botkit_*` attributes for hook implementations.

    Adapter, backend and middleware instances are registered as plugins; pluggy's default
    would read every attribute of them, running properties that may not be ready yet.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str):  # type: ignore[override]
        if not name.startswith("botkit_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


class Plugins:
    """The plugin manager plus what plugins registered, with typed hook calls."""

    def __init__(self) -> None:
        self.pm = _PluginManager("botkit")
        self.pm.add_hookspecs(hookspecs)
        self.sources: dict[str, str] = {}  # plugin name -> where it came from
        self.adapters: dict[str, Component] = {}
        self.backends: dict[str, Component] = {}
        self.middlewares: dict[str, Component] = {}
        self._render_impls = False

    # -- loading ------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure is the plugin's, reported by name
                raise PluginError(ep.name, f"failed to import {ep.value}: {exc!r}") from exc
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            self.add(plugin, ep.name, f"entry point {ep.value} ({dist} {version})")

    def load_paths(self, specs: Iterable[str], base: Path) -> None:
        """Load the config's `plugins:` entries: importable module names or .py files."""
        for spec in specs:
            if spec.endswith(".py") or "/" in spec:
                path = (base / spec).resolve()
                if not path.is_file():
                    raise PluginError(spec, f"no such file: {path}")
                name = f"botkit_local_{path.stem}"
                try:
                    module_spec = importlib.util.spec_from_file_location(name, path)
                    assert module_spec and module_spec.loader
                    module = importlib.util.module_from_spec(module_spec)
                    sys.modules[name] = module
                    module_spec.loader.exec_module(module)
                except Exception as exc:
                    raise PluginError(spec, f"failed to import {path}: {exc!r}") from exc
                self.add(module, path.stem, f"file {path}")
            else:
                try:
                    module = importlib.import_module(spec)
                except Exception as exc:
                    raise PluginError(spec, f"failed to import module {spec}: {exc!r}") from exc
                self.add(module, spec, f"module {spec}")

    def add(self, plugin: object, name: str, source: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(name, str(exc)) from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(name, f"invalid hook implementation: {exc}") from exc
        self.sources[name] = source

    def collect(self) -> None:
        """Ask every plugin to register its components (once, after loading)."""
        for kind, table, hook in (
            ("adapter", self.adapters, self.pm.hook.botkit_register_adapters),
            ("backend", self.backends, self.pm.hook.botkit_register_backends),
            ("middleware", self.middlewares, self.pm.hook.botkit_register_middlewares),
        ):
            for impl in hook.get_hookimpls():
                plugin_name = impl.plugin_name

                def register(name: str, component: type | str, config_model: type,
                             _kind: str = kind, _table: dict = table, _plugin: str = plugin_name) -> None:
                    if name in _table:
                        raise PluginError(_plugin, f"{_kind} type {name!r} is already registered by {_table[name].plugin}")
                    _table[name] = Component(_kind, name, component, config_model, _plugin)

                impl.function(**{a: register for a in impl.argnames})

    def plugin_versions(self) -> list[tuple[str, str]]:
        return sorted(self.sources.items())

    def refresh(self) -> None:
        """Recompute hot-path shortcuts after middlewares were registered."""
        self._render_impls = bool(self.pm.hook.botkit_render.get_hookimpls())

    # -- typed hook calls ---------------------------------------------------------------

    async def message_received(self, turn: Turn) -> Handled | None:
        """Run implementations in pluggy's order until one returns a result."""
        for impl in reversed(self.pm.hook.botkit_message_received.get_hookimpls()):
            result = await await_me_maybe(impl.function(turn))
            if result is not None:
                return result
        return None

    def render(self, draft: Draft, surface: Surface) -> None:
        if self._render_impls:
            self.pm.hook.botkit_render(draft=draft, surface=surface)

    async def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook; every implementation runs, failures are logged."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                await await_me_maybe(impl.function(**{a: kwargs[a] for a in impl.argnames}))
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)

    def call_sync(self, hook_name: str, **kwargs: Any) -> None:
        """Call a synchronous setup hook (CLI commands); a failure names its plugin."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"{hook_name} failed: {exc!r}") from exc

    async def call_all(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a failure propagates (the bot must not start half-set-up)."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                await await_me_maybe(impl.function(**{a: kwargs[a] for a in impl.argnames}))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"{hook_name} failed: {exc!r}") from exc


def load_plugins(extra: Iterable[str] = (), base: Path | None = None, *,
                 entry_points: bool = True, modules: Iterable[tuple[str, ModuleType | object]] = ()) -> Plugins:
    """Build the plugin manager: entry points (built-ins included), then `extra` specs."""
    plugins = Plugins()
    for name, module in modules:
        plugins.add(module, name, "given")
    if entry_points:
        plugins.load_entry_points()
    plugins.load_paths(extra, base or Path.cwd())
    plugins.collect()
    plugins.refresh()
    return plugins
