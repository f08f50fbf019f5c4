"""Slack's assistant threads (the AI-app pane): suggested prompts, and the thread status as progress.

Someone opening the pane starts an assistant thread: Slack sends `assistant_thread_started`,
and `assistant_thread_context_changed` when they move to another channel with the pane
open. The thread is remembered and both are acknowledged at once; the configured
`suggested_prompts` are offered afterwards, in a task of their own, until a question is
asked in the thread (`assistant.threads.setSuggestedPrompts`). Not in a bolt lazy listener:
bolt deep-copies a lazy listener's request, and the assistant helpers it attaches to these
events cannot be copied. The questions themselves arrive as ordinary `message.im` events in
that thread.

Progress in an assistant thread (anywhere with `progress: status`) is the thread's status
(`assistant.threads.setStatus`), never a placeholder message: "is thinking…" first, then the
backend's `Status` events (searching, a tool call) as its loading message. The renderer
hands such progress to the adapter as it hands any: a message with a status and no text
yet (`Outgoing.status`). `hold` answers it with a ref that has posted nothing (mode
"status"); the first text posts or streams the real message into that same ref. Once the
final answer or the failure notice is delivered, the status is cleared.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.adapters import MessageRef, Outgoing, RateLimited
from botkit.events import ThreadKey
from botkit_plugins.slack import SlackConfig
from botkit_plugins.slack.recent import Recent
from botkit_plugins.slack.stream import slack_call

log = logging.getLogger("botkit.slack")

#: `MessageRef.data["mode"]` of an answer that shows only the thread status so far
HELD = "status"


class AssistantThreads:
    """The assistant threads one Slack adapter knows, and the statuses it has set."""

    def __init__(self, client: AsyncWebClient, config: SlackConfig, name: str) -> None:
        self.client = client
        self.config = config
        self.name = name
        self._threads: Recent = Recent()  # (channel, thread_ts) of an assistant thread -> asked in yet
        self._shown: Recent = Recent()    # thread -> (channel, thread_ts) whose status is set
        self._tasks: set[asyncio.Task] = set()  # suggestions on their way

    # -- the pane's events --------------------------------------------------------------

    async def on_thread(self, event: dict[str, Any]) -> None:
        """The bolt listener of `assistant_thread_started` and `_context_changed`: remember the
        thread, and offer the suggested prompts (after the ack) while nothing was asked in it."""
        thread = event.get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if not (isinstance(channel, str) and channel and isinstance(ts, str) and ts):
            return
        asked = self._threads.get((channel, ts), False)
        self._threads.remember((channel, ts), asked)
        if self.config.suggested_prompts and not asked:
            task = asyncio.create_task(self._suggest(channel, ts))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop offering suggestions (the adapter stops)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _suggest(self, channel: str, ts: str) -> None:
        prompts = [{"title": p.title, "message": p.message} for p in self.config.suggested_prompts]
        try:
            await slack_call(self.client.assistant_threads_setSuggestedPrompts, channel_id=channel, thread_ts=ts,
                             prompts=prompts, title=self.config.suggested_prompts_title)
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: suggested prompts not set in %s/%s: %s", self.name, channel, ts, exc)

    # -- the status as progress ----------------------------------------------------------------

    def uses_status(self, thread: ThreadKey) -> bool:
        """Whether progress in `thread` is shown as its status."""
        progress = self.config.progress
        return progress == "status" or (progress != "none" and (thread.channel, thread.thread) in self._threads)

    async def show(self, thread: ThreadKey, thread_ts: str, loading: str | None = None) -> None:
        """Set the status of `thread` (a courtesy: a failure is logged, and the answer still comes)."""
        if (thread.channel, thread.thread) in self._threads:
            self._threads.remember((thread.channel, thread.thread), True)  # asked: no more suggestions
        try:
            await slack_call(self.client.assistant_threads_setStatus, channel_id=thread.channel, thread_ts=thread_ts,
                             status=self.config.progress_status, loading_messages=[loading] if loading else None)
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: progress (status) not shown in %s: %s", self.name, thread, exc)
            return
        self._shown.remember(thread, (thread.channel, thread_ts))

    async def clear(self, thread: ThreadKey) -> None:
        """Clear the status set in `thread`, if any: the final answer (or its failure) is shown."""
        where = self._shown.pop(thread, None)
        if where is None:
            return
        try:
            await slack_call(self.client.assistant_threads_setStatus, channel_id=where[0], thread_ts=where[1],
                             status="")
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: status not cleared in %s: %s", self.name, thread, exc)

    # -- an answer that shows only the status so far ------------------------------------------------

    def holds(self, thread: ThreadKey, message: Outgoing) -> bool:
        """Whether `message` (to be posted in `thread`) is progress only, for the thread status."""
        return bool(message.status) and not (message.text or message.notes or message.final) \
            and self.uses_status(thread)

    async def hold(self, thread: ThreadKey, message: Outgoing, thread_ts: str, user: str,
                   question_ts: str | None) -> MessageRef:
        """Show `message.status` as the thread status; the ref posts the answer once it has text."""
        await self.show(thread, thread_ts, message.status)
        return MessageRef(thread, "", {"mode": HELD, "channel": thread.channel, "thread_ts": thread_ts,
                                       "user": user, "question_ts": question_ts})

    async def still_held(self, ref: MessageRef, message: Outgoing) -> bool:
        """For an edit of a held ref: True when there is still nothing to post (a newer status
        is shown instead); False when `message` must now be posted."""
        if message.text or message.notes:
            return False
        if not message.final and message.status:
            await self.show(ref.thread, ref.data["thread_ts"], message.status)
        return True
