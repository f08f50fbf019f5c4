"""Prometheus metrics at `/metrics` on the bot's one HTTP server (prometheus-client).

Counted from finished turns (`botkit_answer_complete`), from deliveries (the renderer's and
recovery's posts, edits and 429s: a `DeliveryObserver`), and at scrape time from the
dispatcher (queue depth), the store (active sessions) and plugins' tallies of recorded
turns (`botkit_turn_tallies`: the feedback middleware's votes). Each bot has its
own registry, so several bots in one process (tests) do not collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from botkit.adapters import Adapter
from botkit.plugins import hookimpl
from botkit.turn import Answer, Turn

if TYPE_CHECKING:
    from botkit.bot import Bot

_SECONDS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120)


class Metrics:
    """The bot's metrics; registered as a plugin to observe every finished turn."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.registry = registry = CollectorRegistry()
        self.turns = Counter("botkit_turns", "Finished turns", ["adapter", "backend", "outcome"], registry=registry)
        self.first_text = Histogram("botkit_time_to_first_text_seconds", "From the question to the first answer text",
                                    ["adapter", "backend"], buckets=_SECONDS, registry=registry)
        self.duration = Histogram("botkit_turn_duration_seconds", "From the question to the final edit",
                                  ["adapter", "backend"], buckets=_SECONDS, registry=registry)
        self.edits = Histogram("botkit_edits_per_answer", "Messages sent or edited per answer", ["adapter"],
                               buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55), registry=registry)
        self.rate_limited_total = Counter("botkit_rate_limited", "429 responses from a platform",
                                          ["platform", "adapter"], registry=registry)
        self.messages = Counter("botkit_messages_delivered", "Messages posted or edited on a platform",
                                ["adapter", "kind"], registry=registry)
        self.backend_errors = Counter("botkit_backend_errors", "Turns a backend did not complete",
                                      ["backend", "kind"], registry=registry)
        self.fcs = Histogram("botkit_factual_consistency", "Factual-consistency score of answers", ["backend"],
                             buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), registry=registry)
        self.queue = Gauge("botkit_queue_depth", "Turns accepted and not yet finished", registry=registry)
        self.sessions = Gauge("botkit_sessions_active", "Threads with an active backend session", registry=registry)
        self.tallies: dict[str, Gauge] = {}  # plugins' counts on recorded turns (botkit_turn_tallies), by name
        self.queue.set_function(lambda: self.bot.dispatcher.queued if self.bot.dispatcher else 0)

    def install(self) -> None:
        """Observe turns and deliveries, mount the endpoint. Before the server starts."""
        self.bot.plugins.add(self, "core:metrics", "botkit.metrics")
        self.bot.deliveries.append(self)
        self.bot.server.add_route("GET", self.bot.config.root.metrics.path, self.handle)

    # -- a DeliveryObserver ----------------------------------------------------------------------

    def delivered(self, adapter: Adapter, *, sent: bool, final: bool) -> None:
        self.messages.labels(adapter.name, "post" if sent else "edit").inc()

    def rate_limited(self, adapter: Adapter, retry_after: float) -> None:
        self.rate_limited_total.labels(adapter.platform, adapter.name).inc()

    @hookimpl
    def botkit_answer_complete(self, turn: Turn, answer: Answer) -> None:
        adapter, backend = turn.inbound.adapter, turn.backend
        self.turns.labels(adapter, backend, answer.status).inc()
        if answer.first_text_after is not None:
            self.first_text.labels(adapter, backend).observe(answer.first_text_after)
        self.duration.labels(adapter, backend).observe(answer.duration)
        self.edits.labels(adapter).observe(answer.edits)
        if answer.status != "complete":
            self.backend_errors.labels(backend, answer.status).inc()
        if answer.score is not None:
            self.fcs.labels(backend).observe(answer.score)

    async def handle(self, request: web.Request) -> web.Response:
        store = self.bot.store
        self.sessions.set(await store.count_sessions())
        for name, counts in (await self.bot.plugins.turn_tallies(store)).items():
            gauge = self.tallies.get(name)
            if gauge is None:
                gauge = self.tallies[name] = Gauge(f"botkit_{name}", f"Recorded turns' {name} by value (a plugin's)",
                                                   ["value"], registry=self.registry)
            for value, count in counts.items():
                gauge.labels(value).set(count)
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
