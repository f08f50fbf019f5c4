"""APScheduler in the bot's event loop: scheduled questions, housekeeping, plugins' jobs.

Jobs come from three places: the core's housekeeping (end idle sessions, prune old
turns and event ids), the config's `schedule:` list (a question asked on a cron or an
interval and answered as a new thread in a channel), and plugins' `botkit_scheduled_jobs`
hooks, which get this `Scheduler` and call `add_job` exactly as on APScheduler.

Every job coalesces missed runs into one, runs at most once at a time, and is skipped
when its run was missed by more than its grace time (the bot was down at 09:00). A
scheduled question's event id is its job name and scheduled time, so a run retried by
a second replica or after a crash is answered once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from botkit.adapters import NEW_THREAD_PREFIX
from botkit.config import ScheduledJob
from botkit.cron import cron_trigger
from botkit.events import Inbound, ThreadKey
from botkit.plugins import hookimpl
from botkit.turn import Answer, Turn

if TYPE_CHECKING:
    from botkit.bot import Bot
    from botkit.plugins import Plugins

log = logging.getLogger("botkit.scheduler")

SCHEDULER_USER = "botkit-scheduler"
class _Announcer:
    """Tells the asker that their message starts a new session after an idle expiry."""

    def __init__(self, expired: set[ThreadKey], text: str) -> None:
        self.expired = expired
        self.text = text

    @hookimpl
    async def botkit_message_received(self, turn: Turn) -> None:
        if turn.thread in self.expired:
            self.expired.discard(turn.thread)
            try:
                await turn.adapter.reply(turn.inbound, self.text)
            except Exception:
                log.warning("could not announce the new session in %s", turn.thread, exc_info=True)


class _AwaitedAnswers:
    """The answers scheduled questions wait for. It observes answers (a plugin) only while
    one waits: an observer of every answer costs every turn something."""

    NAME = "core:scheduler-answers"

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self._futures: dict[str, asyncio.Future[Answer]] = {}  # event id -> its answer

    def expect(self, event_id: str) -> asyncio.Future[Answer]:
        if not self._futures:
            self.plugins.add(self, self.NAME, "botkit.scheduler")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._futures[event_id] = future
        return future

    def forget(self, event_id: str) -> None:
        self._futures.pop(event_id, None)
        if not self._futures:
            self.plugins.remove(self.NAME)

    def cancel(self) -> None:
        for future in self._futures.values():
            future.cancel()

    @hookimpl
    def botkit_answer_complete(self, turn: Turn, answer: Answer) -> None:
        future = self._futures.get(turn.inbound.event_id)
        if future is not None and not future.done():
            future.set_result(answer)


class Scheduler:
    """The bot's scheduler; plugins receive it in `botkit_scheduled_jobs`."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.aps = AsyncIOScheduler(timezone=timezone.utc,
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        #: wall clock of the housekeeping jobs (tests move it forward)
        self.clock: Callable[[], float] = time.time
        #: threads whose session expired, told so with their next message if configured
        self.expired: set[ThreadKey] = set()
        self._fire_times: dict[str, datetime] = {}
        self._answers = _AwaitedAnswers(bot.plugins)

    def add_job(self, func: Callable[..., Any], trigger: Any = None, **kwargs: Any) -> Job:
        """APScheduler's `add_job`; `func` may be a coroutine function."""
        return self.aps.add_job(func, trigger, **kwargs)

    def get_job(self, job_id: str) -> Job | None:
        return self.aps.get_job(job_id)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Add every job and start; called by the bot once adapters are up."""
        root = self.bot.config.root
        sessions, retention = root.sessions, root.retention
        if sessions.idle_timeout is not None:
            self.add_job(self.expire_idle, IntervalTrigger(seconds=sessions.check_every), id="botkit:expire-idle",
                         name="end idle sessions")
            if sessions.announce_new_session:
                self.bot.plugins.add(_Announcer(self.expired, sessions.new_session_text), "core:announce-session",
                                     "botkit.scheduler")
        self.add_job(self.prune, IntervalTrigger(seconds=retention.prune_every), id="botkit:prune",
                     name="prune old turns and event ids")
        for job in root.schedule:
            trigger = (cron_trigger(job.cron, job.timezone) if job.cron is not None else
                       IntervalTrigger(seconds=job.every, timezone=job.timezone))
            self.add_job(self.ask, trigger, args=[job], id=f"ask:{job.name}", name=job.name,
                         misfire_grace_time=int(job.misfire_grace))
        await self.bot.plugins.scheduled_jobs(self)
        self.aps.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self.aps.start()
        log.info("scheduler started with %d jobs", len(self.aps.get_jobs()))

    async def stop(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)
        self._answers.cancel()

    def _submitted(self, event: JobSubmissionEvent) -> None:
        """Remember when a run was due: its scheduled time names its question's event."""
        self._fire_times[event.job_id] = event.scheduled_run_times[-1]

    # -- scheduled questions --------------------------------------------------------------------

    async def ask(self, job: ScheduledJob, due: datetime | None = None) -> Answer | None:
        """Ask `job`'s question for its run due at `due` (default: the run APScheduler just
        started) as a new thread in its channel; return once it is answered, or None if
        that run was answered before."""
        bot = self.bot
        dispatcher = bot.dispatcher
        assert dispatcher is not None
        due = due or self._fire_times.pop(f"ask:{job.name}", None) or datetime.now(timezone.utc)
        stamp = due.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        adapter = bot.adapters[job.post.adapter]
        workspace = job.post.workspace or getattr(adapter.config, "workspace", None) or ""
        thread = ThreadKey(adapter.platform, workspace, job.post.channel, f"{NEW_THREAD_PREFIX}{job.name}-{stamp}")
        inbound = Inbound(f"schedule:{job.name}:{stamp}", thread, SCHEDULER_USER, job.ask.question,
                          adapter=adapter.name, user_name=job.name)
        backend = job.ask.backend or dispatcher.route(inbound)
        if backend is None:
            log.warning("scheduled job %s: no route to a backend for %s", job.name, thread)
            return None
        done = self._answers.expect(inbound.event_id)
        try:
            if not await dispatcher.start_turn(Turn(inbound, adapter, backend, job.ask.question)):
                log.info("scheduled job %s: the run due %s was already answered", job.name, stamp)
                return None
            log.info("scheduled job %s: asking %s in %s", job.name, backend, thread)
            # the job runs until the answer is complete, so runs of one job never overlap
            return await asyncio.wait_for(done, dispatcher.settings.turn_timeout + 60)
        finally:
            self._answers.forget(inbound.event_id)

    # -- housekeeping ----------------------------------------------------------------------------

    async def expire_idle(self) -> int:
        """End sessions idle longer than `sessions.idle_timeout` (not those with a turn under way)."""
        settings = self.bot.config.root.sessions
        assert settings.idle_timeout is not None
        dispatcher = self.bot.dispatcher
        busy = dispatcher.busy_threads() if dispatcher is not None else ()
        ended = await self.bot.store.expire_idle(self.clock() - settings.idle_timeout, busy=busy)
        for record in ended:
            backend = self.bot.backends.get(record.backend)
            if backend is not None and record.session_id:
                try:
                    await backend.end_session(record.session_id)
                except Exception:
                    log.warning("backend %s could not end idle session %s", record.backend, record.session_id,
                                exc_info=True)
        if settings.announce_new_session:
            self.expired.update(record.thread for record in ended)
        if ended:
            log.info("ended %d sessions idle for more than %g s", len(ended), settings.idle_timeout)
        return len(ended)

    async def prune(self) -> int:
        """Delete event ids past their TTL and turns past `retention.turns_days`."""
        days = self.bot.config.root.retention.turns_days
        removed = await self.bot.store.prune(turns_before=self.clock() - days * 86400 if days else None)
        if removed:
            log.info("pruned %d old rows from the store", removed)
        return removed
