"""Every hook botkit calls: the plugin API. Each docstring is that hook's contract.

A plugin is a module or object with functions named like these, marked with
`botkit.hookimpl`. Any hook may be implemented as `async def` unless its contract says
it must be synchronous; botkit awaits what an implementation returns when it is
awaitable. Arguments may be left out of an implementation's signature (pluggy passes
only those it names). Implementations run last registered first; hook wrappers
(`hookwrapper=True`, `wrapper=True`) are refused when the plugin is registered, since
botkit awaits each implementation itself. The core calls hooks only through
`botkit.plugins.Plugins`, one method per hook (`bot.plugins.reaction(...)`).

Besides modules and objects named in entry points or `plugins:`, the adapter, backend and
middleware instances a config builds are registered as plugins (named "adapter:<name>",
"backend:<name>", "middleware:<name>"): their `botkit_*` methods marked with `hookimpl`
run like any other. That is how an adapter mounts its HTTP endpoint (`botkit_routes`)
and a middleware renders notes (`botkit_render`).

Intake order, the rule every adapter follows: a delivery's place in its thread is fixed
when the adapter calls `bot.submit(inbound)`, so nothing that waits on the network may
come between receiving a delivery and submitting it (user and mention names are looked
up in `Adapter.prepare`, inside the turn). `submit` returns once the turn is journaled
durably; acknowledge the platform after it, where the platform allows.
`botkit_message_received` runs within `submit`, before the journal write: a thread's
later deliveries wait for its verdict, other threads do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import argparse

    from botkit.adapters import Adapter, Surface
    from botkit.bot import Bot
    from botkit.events import Draft, ThreadKey
    from botkit.store import PluginTables, Store
    from botkit.turn import Answer, Handled, Turn

hookspec = pluggy.HookspecMarker("botkit")


class Register(Protocol):
    def __call__(self, name: str, component: type | str, config_model: type) -> None: ...


class RegisterTables(Protocol):
    def __call__(self, tables: PluginTables) -> None: ...


# -- registration: called once when the plugin manager is built --------------------------


@hookspec
def botkit_register_adapters(register: Register) -> None:
    """Register platform adapters: `register(type_name, cls, ConfigModel)`.

    `cls` subclasses `botkit.Adapter`, or is a "module:Class" string imported only when
    an adapter of that type is configured (so a plugin can register without importing its
    platform library). `ConfigModel` is the pydantic model of its `adapters.<name>`
    section. A type name registered twice is an error naming both plugins.
    """


@hookspec
def botkit_register_backends(register: Register) -> None:
    """Register RAG backends: `register(type_name, cls, ConfigModel)`, as for adapters.

    `cls` subclasses `botkit.Backend`; `ConfigModel` validates a `backends.<name>`
    section whose `type` is `type_name`.
    """


@hookspec
def botkit_register_middlewares(register: Register) -> None:
    """Register middlewares: `register(name, cls, ConfigModel)`.

    A middleware is off until it is named under `middlewares:` in the config. Then
    `cls(config, bot)` is constructed and the instance is registered as a plugin, so
    its own `botkit_*` hook implementations (methods marked with `hookimpl`) run.
    """


@hookspec
def botkit_register_sections(register: Register) -> None:
    """Register a top-level config section: `register(name, cls, ConfigModel)`.

    For what is neither an adapter, a backend nor a middleware (the operator dashboard's
    `dashboard:`). When the config has a top-level `name:` section, `ConfigModel` validates
    it, and `cls(config, bot)` is constructed and registered as a plugin like a middleware,
    so that its own hook implementations (`botkit_routes`, `botkit_startup`, ...) run.
    Without the section nothing is built. A name the core's sections use is an error.
    """


@hookspec
def botkit_register_tables(register: RegisterTables) -> None:
    """Register tables the plugin keeps in the bot's store: `register(botkit.PluginTables(
    namespace, migrations, turn_rows))`.

    Every command that opens the store (`run`, `sessions`, a plugin's own) creates and
    migrates them first, on SQLite and PostgreSQL alike; the plugin reads and writes them
    through `bot.store.tables(namespace)`. Rows named in `turn_rows` are deleted with their
    turn (retention, `botkit sessions delete`). A namespace registered twice is an error
    naming both plugins.
    """


# -- one turn ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def botkit_message_received(turn: Turn) -> Handled | None:
    """Called for every routed message before the backend is asked, in plugin order.

    Return None to let the turn go on (having perhaps rewritten `turn.query`), or a
    `botkit.turn.Handled` to stop it: its `reply` is posted (None: silence). The first
    implementation that returns a result ends the call; later ones are not run. An
    implementation that raises, or returns anything else, is logged as its plugin's error
    and passed over: the message goes on as if it had returned None. Runs in
    `bot.submit`, before the turn is journaled (what it leaves in `turn.query` is what the
    backend is asked), so a rejection never waits behind other turns' answers; it should
    be quick, since the platform is acknowledged only after it.
    """


@hookspec
def botkit_render(draft: Draft, surface: Surface) -> None:
    """Shape the answer so far for `surface` by changing `draft` in place. Synchronous.

    Called before every edit and once more with `draft.final` True. `draft.text` holds
    the answer with backend citation markers as `[N]`; a hook may rewrite it (links,
    markup) and append `Note`s (sources, warnings). It must be idempotent on the text
    it produces from the raw answer: each call starts from a fresh draft. Keep it cheap:
    it runs on the streaming hot path.
    """


@hookspec
def botkit_answer_complete(turn: Turn, answer: Answer) -> None:
    """After the final edit was delivered, just before the turn is recorded.

    For observers (metrics, logs) and for marking the turn: what an implementation puts
    in `answer.flags` is stored with it, as JSON (a record that is not JSON is not kept;
    the error is logged). Exceptions are logged and do not affect the answer. Every
    implementation runs.
    """


@hookspec
def botkit_reaction(adapter: Adapter, thread: ThreadKey, message_id: str, user: str, reaction: str,
                    comment: str | None) -> None:
    """A user reacted to, or clicked a button on, one of the bot's messages.

    Adapters call it (through `bot.plugins.reaction(...)`) for reactions
    added by people other than the bot: `reaction` is the platform's name or emoji
    (Slack "+1", Discord "👍", a button's value), `message_id` the id the adapter returned
    for the message, `comment` text the user attached (a modal, a card input) or None.
    Observers (feedback, metrics) decide what a reaction means. Every implementation runs.
    """


# -- views of recorded turns ------------------------------------------------------------------


@hookspec
def botkit_turn_annotations(store: Store, event_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """What the plugin keeps of some recorded turns in its own tables, for the views of one
    turn (`botkit sessions show`, the dashboard's page of a turn): `{event_id: {field:
    value}}`, fields named for the plugin (the feedback middleware's "feedback": a list
    of votes with user, value, comment, at). Each plugin's fields are merged into the
    turn; a failing plugin is logged and left out. One bounded read.
    """


@hookspec
def botkit_turn_tallies(store: Store, since: float | None, limit: int | None) -> dict[str, dict[str, int]] | None:
    """Counts the plugin keeps on recorded turns: `{name: {value: count}}`, over the latest
    `limit` turns recorded since `since` (the dashboard's window), or every turn when both
    are None (`/metrics` exports them as the gauge `botkit_<name>{value=...}`). The feedback
    middleware's is "feedback": votes by value, "comment" for a comment without one. A
    failing plugin is logged and left out.
    """


# -- lifecycle and extension points ---------------------------------------------------------


@hookspec
def botkit_startup(bot: Bot) -> None:
    """After the store, backends and HTTP routes are ready, before adapters start.

    A failure stops the start, named after its plugin (the bot must not run half set up).
    """


@hookspec
def botkit_shutdown(bot: Bot) -> None:
    """After adapters stopped and answers in flight finished or were marked interrupted.

    Every implementation runs; a failure is logged with its plugin's name.
    """


@hookspec
def botkit_scheduled_jobs(scheduler: Any) -> None:
    """Add periodic jobs: `scheduler.add_job(func, trigger, **kwargs)` (APScheduler's API).

    `func` may be a coroutine function. Called once at startup; a failure stops it.
    """


@hookspec
def botkit_routes(server: Any) -> None:
    """Add HTTP routes to botkit's one aiohttp server: `server.add_route(method, path, handler)`.

    Called once before the server starts; the server only starts when a route exists.
    A failure stops the start, named after its plugin.
    """


@hookspec
def botkit_cli(commands: argparse._SubParsersAction) -> None:
    """Add `botkit` subcommands: `parser = commands.add_parser(name, help=...)`.

    Set `parser.set_defaults(func=callable)`; it is called with the parsed args and
    may return an exit status or a coroutine (awaited). Synchronous. `botkit.cli.support`
    has what every command shares (`with_config` adds `-c`, `load_for_cli` loads it).
    """
