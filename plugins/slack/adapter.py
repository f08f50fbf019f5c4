"""The Slack adapter on slack-bolt's AsyncApp: Socket Mode or the HTTP Events API.

Bolt verifies signatures (HTTP), acks before listeners run, and drops the bot's own
events; the listeners here filter what deserves an answer, normalize it into an
`Inbound` (the core dedupes retries on `event_id`) and hand it to `bot.submit`.
Delivery is `chat.postMessage` + `chat.update`, or native streaming (see
`botkit_plugins.slack.stream`); timing and splitting are the core renderer's job.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from botkit import hookimpl
from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, RateLimited, starts_new_thread
from botkit.events import Inbound, ThreadKey
from botkit_plugins.slack import SlackConfig
from botkit_plugins.slack.layout import layout
from botkit_plugins.slack.mentions import Resolver, mentioned_users, strip_mention
from botkit_plugins.slack.stream import NativeStreams, slack_call

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.slack")

#: `ThreadKey.thread` of a DM conversation kept as one session (`dm_sessions: conversation`)
DM_CONVERSATION = "dm"
#: message subtypes that are someone asking something (others: edits, joins, deletions...)
_ASKING_SUBTYPES = {None, "file_share", "thread_broadcast"}
_MEMORY = 10_000
#: what a Slack thread id looks like (a message ts); a thread the bot starts has another id


class _Recent(OrderedDict):
    """A bounded insertion-ordered map: the oldest entries go first."""

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _MEMORY:
            self.popitem(last=False)


class SlackAdapter(Adapter):
    platform = "slack"
    config: SlackConfig

    def __init__(self, name: str, config: SlackConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(
            max_length=config.max_length, edit_interval=config.edit_interval, markup="slack",
            can_edit=True, native_streaming=config.streaming == "native")
        self.client = AsyncWebClient(token=config.bot_token.get_secret_value(), base_url=config.api_url)
        if config.rate_limit_retries:
            self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=config.rate_limit_retries))
        secret = config.signing_secret.get_secret_value() if config.signing_secret else None
        self.app = AsyncApp(client=self.client, signing_secret=secret or "",
                            request_verification_enabled=config.transport == "http",
                            process_before_response=False, logger=log)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.resolver = Resolver(self._user_name, self._channel_name)
        self.streams = NativeStreams(self.client) if config.streaming == "native" else None
        self._socket: AsyncSocketModeHandler | None = None
        self._started = False
        self._threads: _Recent = _Recent()    # (channel, thread ts) the bot answers in -> True
        self._roots: _Recent = _Recent()      # thread the bot started (synthetic key) -> its first message's ts
        self._reactions: _Recent = _Recent()  # thread -> (channel, ts) carrying the progress reaction

    def __repr__(self) -> str:
        return f"SlackAdapter({self.name!r}, {self.config.transport})"

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def botkit_routes(self, server: Any) -> None:
        """Mount the Events API endpoint on botkit's server (HTTP transport only)."""
        if self.config.transport == "http":
            server.add_route("POST", self.config.events_path, self.handle_http)

    async def start(self) -> None:
        auth = await slack_call(self.client.auth_test)
        log.info("slack %s: connected to team %s as %s (%s)", self.name, auth.get("team_id"),
                 auth.get("user_id"), self.config.transport)
        if self.config.transport == "socket":
            assert self.config.app_token is not None
            self._socket = AsyncSocketModeHandler(self.app, self.config.app_token.get_secret_value())
            await self._socket.connect_async()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    @property
    def ready(self) -> bool:
        if not self._started:
            return False
        if self._socket is None:
            return True
        client = self._socket.client
        return not client.closed and client.current_session is not None and not client.current_session.closed

    async def handle_http(self, request: web.Request) -> web.Response:
        """One Events API request: bolt verifies, acks (200 within 3 s) and runs listeners after."""
        return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

    # -- events ---------------------------------------------------------------------------

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if not self._asks(event):
            return
        await self._submit(body, event, context.bot_user_id, direct=False)

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if not self._asks(event):
            return
        if event.get("channel_type") == "im":
            await self._submit(body, event, context.bot_user_id, direct=True)
            return
        thread_ts = event.get("thread_ts")
        if not self.config.thread_followups or not thread_ts or thread_ts == event.get("ts"):
            return
        if context.bot_user_id and f"<@{context.bot_user_id}" in event.get("text", ""):
            return  # a mention: the app_mention event answers it
        key = self._thread_key(body, event, direct=False)
        if await self._bot_in_thread(key, context.bot_user_id, context.bot_id):
            await self._submit(body, event, context.bot_user_id, direct=False)

    def _asks(self, event: dict[str, Any]) -> bool:
        """A person's (or an allowed bot's) new message, not an edit, a join or a deletion.

        The bot's own events never get here: bolt drops them (IgnoringSelfEvents).
        """
        subtype = event.get("subtype")
        bot_id = event.get("bot_id")
        if bot_id or subtype == "bot_message":
            return bot_id in self.config.allow_bots and subtype in _ASKING_SUBTYPES | {"bot_message"}
        return subtype in _ASKING_SUBTYPES

    def _thread_key(self, body: dict[str, Any], event: dict[str, Any], direct: bool) -> ThreadKey:
        team = body.get("team_id") or event.get("team") or ""
        if direct and self.config.dm_sessions == "conversation":
            thread = DM_CONVERSATION
        else:
            thread = event.get("thread_ts") or event["ts"]
        return ThreadKey(self.platform, team, event["channel"], thread)

    async def _bot_in_thread(self, key: ThreadKey, bot_user_id: str | None, bot_id: str | None) -> bool:
        """Whether the bot has answered in this thread: remembered, else read from the thread."""
        if (key.channel, key.thread) in self._threads:
            return True
        try:
            replies = await slack_call(self.client.conversations_replies, channel=key.channel, ts=key.thread, limit=200)
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: cannot read thread %s: %s", self.name, key, exc)
            return False
        mine = any(m.get("user") == bot_user_id or (bot_id and m.get("bot_id") == bot_id)
                   for m in replies.get("messages", []))
        if mine:
            self._threads.remember((key.channel, key.thread), True)
        return mine

    async def _submit(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None,
                      direct: bool) -> None:
        key = self._thread_key(body, event, direct)
        raw_text = strip_mention(event.get("text", ""), bot_user_id)
        user = event.get("user") or event.get("bot_id") or ""
        if self.config.resolve_mentions:
            text = await self.resolver.resolve(raw_text)
            user_name = await self.resolver.user_name(user) if user else None
        else:
            text, user_name = raw_text, None
        inbound = Inbound(
            event_id=body.get("event_id") or f"{event['channel']}:{event['ts']}", thread=key, user=user,
            text=text, adapter=self.name, user_name=user_name, mentions=mentioned_users(raw_text),
            is_direct=direct, raw=event)
        self._threads.remember((key.channel, key.thread), True)
        await self.bot.submit(inbound)

    async def _user_name(self, user_id: str) -> str | None:
        user = (await self.client.users_info(user=user_id))["user"]
        profile = user.get("profile") or {}
        return profile.get("display_name") or user.get("real_name") or user.get("name")

    async def _channel_name(self, channel_id: str) -> str | None:
        return (await self.client.conversations_info(channel=channel_id))["channel"].get("name")

    # -- progress ----------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        mode = self.config.progress
        if mode == "placeholder":
            return await super().show_progress(inbound)
        event = inbound.raw or {}
        try:
            if mode == "reaction" and event.get("ts"):
                await slack_call(self.client.reactions_add, channel=inbound.thread.channel,
                                 timestamp=event["ts"], name=self.config.progress_reaction)
                self._reactions.remember(inbound.thread, (inbound.thread.channel, event["ts"]))
            elif mode == "status":
                await slack_call(self.client.assistant_threads_setStatus, channel_id=inbound.thread.channel,
                                 thread_ts=self._reply_ts(inbound.thread) or event.get("ts"),
                                 status=self.config.progress_status)
        except (SlackApiError, RateLimited) as exc:  # progress is a courtesy; the answer still comes
            log.warning("slack %s: progress (%s) not shown: %s", self.name, mode, exc)
        return None

    async def _clear_progress(self, thread: ThreadKey) -> None:
        """Take the progress reaction off the question once the answer starts."""
        where = self._reactions.pop(thread, None)
        if where is None:
            return
        try:
            await slack_call(self.client.reactions_remove, channel=where[0], timestamp=where[1],
                             name=self.config.progress_reaction)
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: progress reaction not removed: %s", self.name, exc)

    # -- delivery ------------------------------------------------------------------------------

    @staticmethod
    def _reply_ts(thread: ThreadKey) -> str | None:
        """The thread_ts to post under: the thread's, or none for a DM conversation."""
        return None if thread.thread == DM_CONVERSATION else thread.thread

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        await self._clear_progress(thread)
        if self.streams is not None:
            ref = await self._start_stream(thread, message, reply_to)
            if ref is not None:
                return ref
        text, blocks = layout(message)
        kwargs: dict[str, Any] = {"channel": thread.channel, "text": text, "blocks": blocks}
        starts = starts_new_thread(thread)
        thread_ts = self._roots.get(thread) if starts else self._reply_ts(thread)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        resp = await slack_call(self.client.chat_postMessage, **kwargs)
        channel = resp.get("channel") or thread.channel
        if starts and not thread_ts:
            # the Slack thread this message starts: later sends for the key go into it, and
            # people's replies there (keyed by this ts) count as a thread the bot answers
            self._roots.remember(thread, resp["ts"])
            self._threads.remember((channel, resp["ts"]), True)
        return MessageRef(thread, resp["ts"], {"channel": channel, "ts": resp["ts"], "mode": "edit"})

    async def _start_stream(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None) -> MessageRef | None:
        """A native stream for this answer, or None to deliver by edits instead.

        A stream needs a thread to live in and the person it is for (the one who asked).
        """
        assert self.streams is not None
        if reply_to is None or not reply_to.user:
            return None
        thread_ts = self._reply_ts(thread) or (reply_to.raw or {}).get("ts")
        if not thread_ts:
            return None
        return await self.streams.start(thread, thread_ts, message, team=thread.workspace, user=reply_to.user)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        if not (message.final or message.text or message.status or message.notes):
            return  # nothing to show yet: keep the placeholder rather than blank the message
        if ref.data.get("mode") == "stream" and self.streams is not None:
            await self.streams.edit(ref, message)
            return
        text, blocks = layout(message)
        await slack_call(self.client.chat_update, channel=ref.data["channel"], ts=ref.data["ts"],
                         text=text, blocks=blocks)
