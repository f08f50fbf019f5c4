"""The plugin manager: built-ins, entry points and the config's `plugins:` list, one path.

Built-in plugins are found through the entry-point group "botkit" exactly like a third
party's. `Plugins` is the typed face the core calls hooks through, so the rest of the
core never touches pluggy directly.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from botkit import hookspecs
from botkit.extras import install_hint
from botkit.ready import DONE
from botkit.store.tables import PluginTables
from botkit.turn import Handled

if TYPE_CHECKING:
    from botkit.adapters import Adapter, Surface
    from botkit.bot import Bot
    from botkit.events import Draft, ThreadKey
    from botkit.store import Store
    from botkit.turn import Answer, Turn

log = logging.getLogger("botkit.plugins")
trace = logging.getLogger("botkit.hooks")
#: set (to anything but 0) to log every hook implementation botkit calls on botkit.hooks, at DEBUG
TRACE_ENV = "BOTKIT_TRACE_HOOKS"

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


#: hooks whose implementations must be plain functions: their callers cannot wait
SYNCHRONOUS = frozenset({"botkit_render", "botkit_cli", "botkit_register_adapters", "botkit_register_backends",
                         "botkit_register_middlewares", "botkit_register_sections", "botkit_register_tables"})


class _Impl:
    """One implementation of a hook, ready to call: what the facade loops over."""

    __slots__ = ("plugin", "function", "argnames")

    def __init__(self, impl: pluggy.HookImpl) -> None:
        self.plugin = impl.plugin_name
        self.function = impl.function
        self.argnames = impl.argnames

    def __call__(self, kwargs: dict[str, Any]) -> Any:
        """Call it with those of the hook's arguments (`kwargs`) it takes."""
        if len(self.argnames) == len(kwargs):  # all of them (pluggy checked they are the hook's)
            return self.function(**kwargs)
        return self.function(**{a: kwargs[a] for a in self.argnames})


class Plugins:
    """The plugin manager plus what plugins registered, with one typed method per hook.

    The methods call each implementation in pluggy's order (last registered first) and
    await what it returns, as datasette does after a pluggy call. They loop over the
    implementations themselves rather than calling `pm.hook.<name>(...)`, because each
    one is judged on its own: an observer's failure is logged with its plugin's name and
    the others still run; a lifecycle failure names the plugin; the first answer of
    `message_received` is the first *awaited* non-None one. (A pluggy call also costs
    ~14 µs against ~1 µs for three implementations, on hooks that run on every turn.)
    Wrappers would wrap coroutines rather than results here, so they are refused when a
    plugin is registered, as are `async def` implementations of synchronous hooks.
    `BOTKIT_TRACE_HOOKS=1` logs every implementation called, its time and its result.
    """

    def __init__(self) -> None:
        self.pm = _PluginManager("botkit")
        self.pm.add_hookspecs(hookspecs)
        self.sources: dict[str, str] = {}  # plugin name -> where it came from
        self.adapters: dict[str, Component] = {}
        self.backends: dict[str, Component] = {}
        self.middlewares: dict[str, Component] = {}
        self._impls: dict[str, list[_Impl]] = {}  # hook name -> implementations in call order
        self._trace = os.environ.get(TRACE_ENV, "") not in ("", "0")
        self.sections: dict[str, Component] = {}  # top-level config sections plugins add
        self.tables: dict[str, PluginTables] = {}  # tables plugins keep in the store, by namespace
        self.table_owners: dict[str, str] = {}  # namespace -> the plugin that registered it

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
        """Register `plugin` (a module or an object with `botkit_*` hook implementations)."""
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(name, str(exc)) from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(name, f"invalid hook implementation: {exc}") from exc
        try:
            _check_implementations(self.pm, plugin)
        except PluginError:
            self.pm.unregister(plugin)
            raise
        self.sources[name] = source
        self._impls.clear()

    def remove(self, name: str) -> None:
        """Unregister the plugin registered as `name` (a core plugin needed for a while only)."""
        self.pm.unregister(name=name)
        self.sources.pop(name, None)
        self._impls.clear()

    def get(self, name: str) -> object | None:
        """The plugin registered as `name`, if any (a middleware is "middleware:<name>")."""
        return self.pm.get_plugin(name)

    def collect(self) -> None:
        """Ask every plugin to register its components (once, after loading)."""
        for kind, table, hook in (("adapter", self.adapters, "botkit_register_adapters"),
                                  ("backend", self.backends, "botkit_register_backends"),
                                  ("middleware", self.middlewares, "botkit_register_middlewares"),
                                  ("section", self.sections, "botkit_register_sections")):
            for impl in self._implementations(hook):
                def register(name: str, component: type | str, config_model: type,
                             _kind: str = kind, _table: dict = table, _plugin: str = impl.plugin) -> None:
                    if name in _table:
                        raise PluginError(_plugin, f"{_kind} type {name!r} is already registered by {_table[name].plugin}")
                    _table[name] = Component(_kind, name, component, config_model, _plugin)

                _register_with(impl, hook, register)
        owners = self.table_owners
        for impl in self._implementations("botkit_register_tables"):
            def register_tables(tables: PluginTables, _plugin: str = impl.plugin) -> None:
                if not isinstance(tables, PluginTables):
                    raise PluginError(_plugin, f"botkit_register_tables: {tables!r} is not a botkit.PluginTables")
                if tables.namespace in self.tables:
                    raise PluginError(_plugin, f"tables {tables.namespace!r} are already registered by"
                                               f" {owners[tables.namespace]}")
                self.tables[tables.namespace] = tables
                owners[tables.namespace] = _plugin

            _register_with(impl, "botkit_register_tables", register_tables)

    def plugin_versions(self) -> list[tuple[str, str]]:
        return sorted(self.sources.items())

    @property
    def screens_messages(self) -> bool:
        """Whether any plugin implements `botkit_message_received` (the intake's fast path)."""
        return bool(self._implementations("botkit_message_received"))

    # -- one method per hook (see hookspecs.py for each contract) ------------------------------

    async def message_received(self, turn: Turn) -> Handled | None:
        """The first verdict: each implementation in turn until one returns a `Handled`.

        A failing implementation, or one returning anything but None or a `Handled`, is
        logged as that plugin's error and passed over: the message goes on to the next.
        """
        for impl in self._implementations("botkit_message_received"):
            try:
                result = await await_me_maybe(self._call(impl, "botkit_message_received", {"turn": turn}))
            except Exception:
                log.exception("plugin %s failed in botkit_message_received; passed over", impl.plugin)
                continue
            if result is None:
                continue
            if isinstance(result, Handled):
                return result
            log.error("%s", PluginError(impl.plugin, f"botkit_message_received returned {result!r}, not a"
                                                     " botkit.turn.Handled or None; passed over"))
        return None

    def render(self, draft: Draft, surface: Surface) -> None:
        """Every implementation shapes `draft` in place (synchronous: see SYNCHRONOUS)."""
        impls = self._implementations("botkit_render")
        if impls:
            kwargs = {"draft": draft, "surface": surface}
            for impl in impls:
                impl(kwargs)

    @property
    def renders(self) -> bool:
        """Whether any plugin shapes drafts (the renderer builds none otherwise)."""
        return bool(self._implementations("botkit_render"))

    def answer_complete(self, turn: Turn, answer: Answer) -> Awaitable[None]:
        return self._observe("botkit_answer_complete", turn=turn, answer=answer)

    async def reaction(self, adapter: Adapter, thread: ThreadKey, message_id: str, user: str, reaction: str,
                       comment: str | None = None) -> None:
        """For adapters: a person reacted to, or clicked a button on, one of the bot's messages."""
        await self._observe("botkit_reaction", adapter=adapter, thread=thread, message_id=message_id, user=user,
                            reaction=reaction, comment=comment)

    async def startup(self, bot: Bot) -> None:
        await self._run_all("botkit_startup", bot=bot)

    async def shutdown(self, bot: Bot) -> None:
        await self._observe("botkit_shutdown", bot=bot)

    async def routes(self, server: Any) -> None:
        await self._run_all("botkit_routes", server=server)

    async def scheduled_jobs(self, scheduler: Any) -> None:
        await self._run_all("botkit_scheduled_jobs", scheduler=scheduler)

    async def turn_annotations(self, store: Store, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """What plugins keep of these turns, merged by event id (see the hook)."""
        merged: dict[str, dict[str, Any]] = {}
        for found in await self._mappings("botkit_turn_annotations", store=store, event_ids=event_ids):
            for event_id, fields in found.items():
                merged.setdefault(event_id, {}).update(fields)
        return merged

    async def turn_tallies(self, store: Store, *, since: float | None = None,
                           limit: int | None = None) -> dict[str, dict[str, int]]:
        """Plugins' counts on recorded turns, by name (see the hook)."""
        merged: dict[str, dict[str, int]] = {}
        for found in await self._mappings("botkit_turn_tallies", store=store, since=since, limit=limit):
            merged.update(found)
        return merged

    def cli(self, commands: argparse._SubParsersAction) -> None:
        for impl in self._implementations("botkit_cli"):
            try:
                impl.function(**{a: commands for a in impl.argnames})
            except Exception as exc:
                raise PluginError(impl.plugin, f"botkit_cli failed: {exc!r}") from exc

    # -- how hooks are called --------------------------------------------------------------

    def _implementations(self, hook: str) -> list[_Impl]:
        impls = self._impls.get(hook)
        if impls is None:
            impls = self._impls[hook] = [_Impl(i) for i in reversed(getattr(self.pm.hook, hook).get_hookimpls())]
        return impls

    def _call(self, impl: _Impl, hook: str, kwargs: dict[str, Any]) -> Any:
        """What `impl` returns, or an awaitable of it (an async implementation, or any while
        tracing). Most hook implementations are synchronous observers: a coroutine around
        each call was a measurable share of a turn."""
        if self._trace:
            return self._traced(impl, hook, kwargs)
        return impl(kwargs)

    async def _traced(self, impl: _Impl, hook: str, kwargs: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await await_me_maybe(impl(kwargs))
        except BaseException as exc:
            trace.debug("%s -> %s: %.3f ms, raised %r", hook, impl.plugin, (time.perf_counter() - started) * 1000, exc)
            raise
        trace.debug("%s -> %s: %.3f ms, returned %s", hook, impl.plugin, (time.perf_counter() - started) * 1000,
                    type(result).__name__)
        return result

    def _observe(self, hook: str, **kwargs: Any) -> Awaitable[None]:
        """Every implementation runs, in order; a failure, or an answer where none is wanted, is
        logged with its plugin's name and does not stop the others. Synchronous ones (most
        observers) run now; what is returned awaits the first async one and runs the rest
        after it (nothing to await when none is: no coroutine for every answer)."""
        impls = self._implementations(hook)
        for i, impl in enumerate(impls):
            pending = self._observed(impl, hook, kwargs)
            if pending is not None:
                return self._observe_from(impls, i, pending, hook, kwargs)
        return DONE

    def _observed(self, impl: _Impl, hook: str, kwargs: dict[str, Any]) -> Awaitable[Any] | None:
        """Call an observer: what to await when it is async, None when it is done."""
        try:
            result = self._call(impl, hook, kwargs)
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin, hook)
            return None
        if result is not None and inspect.isawaitable(result):
            return result
        self._check_observed(impl, hook, result)
        return None

    async def _observe_from(self, impls: list[_Impl], start: int, pending: Awaitable[Any] | None, hook: str,
                            kwargs: dict[str, Any]) -> None:
        """`_observe` from `impls[start]`, whose call `pending` is."""
        for impl in impls[start:]:
            if pending is None:
                pending = self._observed(impl, hook, kwargs)
                if pending is None:
                    continue
            try:
                result = await pending
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin, hook)
            else:
                self._check_observed(impl, hook, result)
            pending = None

    @staticmethod
    def _check_observed(impl: _Impl, hook: str, result: Any) -> None:
        if result is not None:
            log.error("%s", PluginError(impl.plugin, f"{hook} returned {result!r}; observers return None"))

    async def _mappings(self, hook: str, **kwargs: Any) -> list[dict]:
        """Each implementation's dict, for a view: one that fails, or answers anything but a
        dict or None, is logged with its plugin's name and left out of the view."""
        found = []
        for impl in self._implementations(hook):
            try:
                result = await await_me_maybe(self._call(impl, hook, kwargs))
            except Exception:
                log.exception("plugin %s failed in %s; left out", impl.plugin, hook)
                continue
            if isinstance(result, dict):
                found.append(result)
            elif result is not None:
                log.error("%s", PluginError(impl.plugin, f"{hook} returned {result!r}, not a dict; left out"))
        return found

    async def _run_all(self, hook: str, **kwargs: Any) -> None:
        """Lifecycle: every implementation runs, and the first failure stops the start,
        named after its plugin (the bot must not run half set up)."""
        for impl in self._implementations(hook):
            try:
                await await_me_maybe(self._call(impl, hook, kwargs))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(impl.plugin, f"{hook} failed: {exc!r}") from exc


def _register_with(impl: _Impl, hook: str, register: Callable[..., None]) -> None:
    """Call a registration hook's implementation; its failure names its plugin."""
    try:
        impl.function(**{a: register for a in impl.argnames})
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(impl.plugin, f"{hook} failed: {exc!r}") from exc


def _check_implementations(pm: pluggy.PluginManager, plugin: object) -> None:
    """Refuse what botkit's way of calling hooks cannot honour, naming the plugin."""
    name = pm.get_name(plugin) or repr(plugin)
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(name, f"{caller.name} is a hook wrapper; botkit calls each implementation and awaits"
                                        " it itself, so a wrapper would see a coroutine, not a result: not supported")
            if caller.name in SYNCHRONOUS and (inspect.iscoroutinefunction(impl.function)
                                               or inspect.isasyncgenfunction(impl.function)):
                raise PluginError(name, f"{caller.name} must be a plain function (def, not async def): its caller"
                                        " cannot wait")


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
    return plugins
