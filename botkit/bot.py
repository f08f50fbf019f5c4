"""The running bot: builds every configured component, starts and stops them in order."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from botkit.adapters import Adapter
from botkit.backends import Backend
from botkit.config import Config, ConfigError, read_config, routes_of, validate_config
from botkit.pipeline import Dispatcher
from botkit.events import Inbound
from botkit.plugins import PluginError, Plugins, load_plugins
from botkit.scheduler import Scheduler
from botkit.server import Server
from botkit.store import Store, store_for

if TYPE_CHECKING:
    from botkit.metrics import Metrics
    from botkit.render import DeliveryObserver

log = logging.getLogger("botkit")

#: allocations between collections of the young generation (Python's default: 700). Most of a
#: turn's objects are freed by reference counting before a collection comes; what a young
#: collection walks is what is still alive, which in a burst is every turn in flight (each
#: collection walks up to the threshold's worth). Burst of 10,000 turns (bench/dispatch.py,
#: gc.callbacks): at 50,000, 43 young collections took 27-30 ms of a 490 ms run (6 %); at
#: 500,000, 2 ms, and turns/s +5 % (10 interleaved pairs). What only a collection frees (cycles:
#: ~100 objects in such a run) waits longer for it.
_GC_YOUNG_THRESHOLD = 500_000


class _YoungGeneration:
    """The young generation's threshold is botkit's while any bot of the process runs, and the
    interpreter's again once the last one stops (tests, an app that embeds a bot, go on)."""

    def __init__(self) -> None:
        self._bots = 0
        self._saved: tuple[int, ...] = gc.get_threshold()

    def tune(self) -> None:
        if not self._bots:
            self._saved = gc.get_threshold()
            gc.set_threshold(_GC_YOUNG_THRESHOLD, *self._saved[1:])
        self._bots += 1

    def restore(self) -> None:
        self._bots -= 1
        if not self._bots:
            gc.set_threshold(*self._saved)


_young_generation = _YoungGeneration()


class StartupError(Exception):
    """A part of the deployment could not start: the CLI prints this one line and exits 1."""


def describe(exc: BaseException) -> str:
    """An exception as one readable line (the OS's words for an OSError, not a repr)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:] + (f": {exc.filename}" if exc.filename else "")
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def load(path: str | Path, *, plugins: Plugins | None = None) -> tuple[Config, Plugins]:
    """Read and validate a config; load the plugins it names. Raises ConfigError/PluginError."""
    raw = read_config(path)
    if plugins is None:
        extra = raw.data.get("plugins") or []
        if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
            raise ConfigError([f"{raw.where(('plugins',))}: plugins: expected a list of module names or .py paths"])
        plugins = load_plugins(extra, base=raw.path.parent)
    return validate_config(raw, plugins), plugins


def secrets_of(config: Config) -> list[str]:
    """Every SecretStr value in the config, for the log redaction filter."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if len(secret) >= 4:
                found.append(secret)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    for group in (config.adapters, config.backends, config.middlewares, config.sections):
        for configured in group.values():
            walk(configured.settings)
    store_url = config.root.store.url
    walk(store_url)
    password = urlsplit(store_url.get_secret_value()).password
    if password and len(password) >= 4:
        found.append(unquote(password))
    return found


class Bot:
    """Everything one deployment runs. Plugins reach the rest through it."""

    def __init__(self, config: Config, plugins: Plugins) -> None:
        self.config = config
        self.plugins = plugins
        settings = config.root
        self.store: Store = store_for(config, list(plugins.tables.values()))
        self.server = Server(self, settings.server.host, settings.server.port)
        self.adapters: dict[str, Adapter] = {}
        self.backends: dict[str, Backend] = {}
        self.dispatcher: Dispatcher | None = None
        self.scheduler: Scheduler | None = None
        self.metrics: Metrics | None = None
        #: told of every message posted or edited and every 429 (`botkit.render.DeliveryObserver`)
        self.deliveries: list[DeliveryObserver] = []
        self._started = False
        self._stopped = asyncio.Event()
        self._gc_tuned = False  # (see _YoungGeneration)
        #: what `botkit run` exits with (130 when the console was left with Ctrl-C)
        self.exit_status = 0

    @classmethod
    def from_path(cls, path: str | Path) -> Bot:
        return cls(*load(path))

    # -- what adapters call ---------------------------------------------------------------

    def submit(self, inbound: Inbound) -> Coroutine[Any, Any, bool]:
        """Hand a platform message to the dispatcher; see `Dispatcher.submit` (whose coroutine
        this is: one frame less for every delivery waiting for its journal entry's commit)."""
        assert self.dispatcher is not None, "the bot is not started"
        return self.dispatcher.submit(inbound)

    @property
    def accepting(self) -> bool:
        """Whether `submit` takes deliveries (False before the start, while stopping and
        while the store cannot write: HTTP adapters answer 503 so that the platform
        delivers again)."""
        return self.dispatcher is not None and self.dispatcher.intake.accepting and self.store.fault is None

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until no turn is queued or running (tests, graceful shutdown)."""
        assert self.dispatcher is not None
        await self.dispatcher.idle(timeout)

    # -- lifecycle --------------------------------------------------------------------------

    def build(self) -> None:
        """Create every configured component (no I/O: `botkit check` does this too)."""
        for kind, configured, target in (("backend", self.config.backends, self.backends),
                                         ("adapter", self.config.adapters, self.adapters)):
            for name, item in configured.items():
                cls = item.component.load()
                try:
                    instance = cls(name, item.settings, self)
                except Exception as exc:
                    raise PluginError(item.component.plugin, f"{kind} {name!r} could not be created: {exc!r}") from exc
                target[name] = instance
                self.plugins.add(instance, f"{kind}:{name}", f"{kind} {name} ({item.component.plugin})")
        for kind, items in (("middleware", self.config.middlewares), ("section", self.config.sections)):
            for name, item in items.items():
                cls = item.component.load()
                try:
                    instance = cls(item.settings, self)
                except Exception as exc:
                    raise PluginError(item.component.plugin, f"{kind} {name!r} could not be created: {exc!r}") from exc
                self.plugins.add(instance, f"{kind}:{name}", f"{kind} {name} ({item.component.plugin})")

    async def start(self) -> None:
        """Open the store, build and start everything; on failure, undo what started."""
        self.build()
        self.dispatcher = Dispatcher(adapters=self.adapters, backends=self.backends, store=self.store,
                                     plugins=self.plugins, routes=routes_of(self.config),
                                     settings=self.config.root.dispatch, recovery=self.config.root.recovery,
                                     observers=self.deliveries)
        await _starting("the store", self.store.open())
        try:
            for name, backend in self.backends.items():
                await _starting(f"backend {name!r}", backend.start())
            await self.plugins.routes(self.server)
            self._add_metrics()
            await self.plugins.startup(self)
            if self.serves_http:
                await _starting(f"the HTTP server on {self.server.host}:{self.server.port}", self.server.start())
            else:
                log.info("no HTTP server: nothing needs one (give server: {port: 3000} for /healthz and /metrics)")
            for name, adapter in self.adapters.items():
                await _starting(f"adapter {name!r}", adapter.start())
            self._started = True
            await self.dispatcher.start()  # recovery: what the journal holds is answered or marked
            self.scheduler = Scheduler(self)
            await self.scheduler.start()
        except BaseException:
            await self._close_all()
            raise
        # Everything built so far (modules, plugins, clients) lives as long as the process:
        # keep the garbage collector from scanning it again on every collection.
        gc.collect()
        gc.freeze()
        # Turns make many short-lived objects and few cycles: collect the young generation
        # less often than Python's default of every 700 allocations (until `stop`).
        if not self._gc_tuned:
            self._gc_tuned = True
            _young_generation.tune()
        log.info("botkit started: adapters %s, backends %s", ", ".join(self.adapters), ", ".join(self.backends))

    @property
    def serves_http(self) -> bool:
        """Whether the HTTP server runs: when the config gives a `server:` section (or
        `enabled: true`, or asks for /metrics), or when a plugin mounted a route."""
        settings = self.config.root
        enabled = settings.server.enabled
        if enabled is not None:
            return enabled
        return bool(settings.server.model_fields_set or settings.metrics.enabled or self.server.has_routes)

    def _add_metrics(self) -> None:
        """Count turns for /metrics when it is served (see `metrics.enabled`)."""
        if self.config.root.metrics.enabled is False or not self.serves_http:
            return
        from botkit.metrics import Metrics

        self.metrics = Metrics(self)
        self.metrics.install()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking messages, let answers finish (or mark them interrupted), close all."""
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.dispatcher is not None:
            await self.dispatcher.drain(grace)
        await self._close_all()
        if self._gc_tuned:
            self._gc_tuned = False
            _young_generation.restore()
        self._stopped.set()

    async def _close_all(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        for adapter in self.adapters.values():
            try:
                await adapter.stop()
            except Exception:
                log.warning("adapter %s did not stop cleanly", adapter.name, exc_info=True)
        await self.server.stop()
        for backend in self.backends.values():
            try:
                await backend.close()
            except Exception:
                log.warning("backend %s did not close cleanly", backend.name, exc_info=True)
        if self._started:
            await self.plugins.shutdown(self)
            self._started = False
        await self.store.close()

    async def run_forever(self) -> None:
        """Start, run until SIGINT/SIGTERM (or an adapter asks to stop), then stop gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def request_stop(self, status: int = 0) -> None:
        """Ask `run_forever` to shut down (signals, the console adapter at end of input);
        `status` is what `botkit run` exits with."""
        self.exit_status = self.exit_status or status
        self._stopped.set()


async def _starting(what: str, step: Awaitable[object]) -> None:
    """Await one start-up step; its failure becomes a StartupError naming `what`."""
    try:
        await step
    except (StartupError, PluginError, ConfigError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.debug("%s could not start", what, exc_info=True)
        raise StartupError(f"{what} could not start: {describe(exc)}") from exc
