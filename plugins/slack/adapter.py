"""The Slack adapter on slack-bolt's AsyncApp: Socket Mode or the HTTP Events API.

Bolt verifies signatures (HTTP) and drops the bot's own events; the listeners here filter
what deserves an answer, normalize it into an `Inbound` (the core dedupes retries on
`event_id`) and hand it to `bot.submit` without awaiting anything on the way, so a
question's place in its thread is the order Slack delivered it (`order` covers the one
exception, a follow-up whose thread must be read first). Bolt runs with
`process_before_response`: the HTTP 200 or the Socket Mode ack goes out only after the
listener returned, that is after the core journaled the turn; if that fails, Slack gets
an error and delivers again. Names in questions are resolved later, inside the turn
(`prepare`). Delivery is `chat.postMessage` + `chat.update`, or native streaming (see
`botkit_plugins.slack.stream`); timing and splitting are the core renderer's job.
Reactions people add to the bot's messages, and clicks on the feedback buttons, go to
observers through the `botkit_reaction` hook, in bolt lazy listeners: acked first.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.listener.async_listener_error_handler import AsyncDefaultListenerErrorHandler
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from botkit import hookimpl
from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, RateLimited, Unavailable, starts_new_thread
from botkit.markup import Markup
from botkit.events import Attachment, Inbound, ThreadKey
from botkit.logs import Refusals
from botkit_plugins.slack import SlackConfig, files
from botkit_plugins.slack.assistant import HELD, AssistantThreads
from botkit_plugins.slack.layout import FEEDBACK_ACTIONS, NATIVE_FEEDBACK_ACTION, layout
from botkit_plugins.slack.mentions import Resolver, mentioned_users, strip_mention
from botkit_plugins.slack.recent import Recent as _Recent
from botkit.ordering import ThreadOrder
from botkit_plugins.slack.stream import NativeStreams, slack_call

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.slack")

#: `ThreadKey.thread` of a DM conversation kept as one session (`dm_sessions: conversation`)
DM_CONVERSATION = "dm"
#: message subtypes that are someone asking something (others: edits, joins, deletions...)
_ASKING_SUBTYPES = {None, "file_share", "thread_broadcast"}
#: deliveries of one thread that may wait behind a follow-up whose thread is being read
_QUEUED_PER_THREAD = 50
#: seconds a follow-up's thread may take to read before Slack must be acknowledged (3 s)
THREAD_READ_DEADLINE = 2.0
#: pages of a thread (or DM) read when looking for an orphaned answer message
_ORPHAN_PAGES = 5
#: the action_ids of the feedback buttons (Block Kit buttons, and the native `feedback_buttons`)
_FEEDBACK_ACTION = re.compile(
    "^(" + "|".join(map(re.escape, [*FEEDBACK_ACTIONS.values(), NATIVE_FEEDBACK_ACTION])) + ")$")


def _by_bot(message: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """Whether a message from the Web API was posted by this bot."""
    return message.get("user") == bot_user_id or bool(bot_id and message.get("bot_id") == bot_id)


class SlackAdapter(Adapter):
    platform = "slack"
    config: SlackConfig

    def __init__(self, name: str, config: SlackConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(
            max_length=config.max_length, edit_interval=config.edit_interval, markup=Markup.SLACK,
            can_edit=True, native_streaming=config.streaming == "native")
        self.client = AsyncWebClient(token=config.bot_token.get_secret_value(), base_url=config.api_url)
        if config.rate_limit_retries:
            self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=config.rate_limit_retries))
        secret = config.signing_secret.get_secret_value() if config.signing_secret else None
        self._verifier = SignatureVerifier(secret) if secret else None  # HTTP only (config requires it there)
        self._refusals = Refusals(log, f"slack adapter {name} /slack/events")
        self.app = AsyncApp(client=self.client, signing_secret=secret or "",
                            request_verification_enabled=False,  # `handle_http` verifies, before any parsing
                            process_before_response=True, logger=log, raise_error_for_unhandled_request=True)
        self.app.error(self._on_bolt_error)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        # not questions: acked at once, handled after (lazy), so the 3 s never depend on them
        self.app.event("reaction_added")(ack=_ack, lazy=[self._on_reaction])
        self.app.action(_FEEDBACK_ACTION)(ack=_ack, lazy=[self._on_feedback_button])
        self.assistant = AssistantThreads(self.client, config, name)
        for event in ("assistant_thread_started", "assistant_thread_context_changed"):
            self.app.event(event)(self.assistant.on_thread)
        self.resolver = Resolver(self._user_name, self._channel_name)
        self.order = ThreadOrder(_QUEUED_PER_THREAD)
        self.streams = NativeStreams(self.client) if config.streaming == "native" else None
        self._socket: AsyncSocketModeHandler | None = None
        self._started = False
        self._me: tuple[str | None, str | None] = (None, None)  # the bot's user id and bot id (auth.test)
        self._threads: _Recent = _Recent()    # (channel, thread ts) the bot answers in -> True
        self._roots: _Recent = _Recent()      # thread the bot started (synthetic key) -> its first message's ts
        self._reactions: _Recent = _Recent()  # thread -> (channel, ts) carrying the progress reaction
        self._posted: _Recent = _Recent()     # (channel, ts) of a message the bot sent -> its thread

    def __repr__(self) -> str:
        return f"SlackAdapter({self.name!r}, {self.config.transport})"

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def botkit_routes(self, server: Any) -> None:
        """Mount the Events API endpoint on botkit's server (HTTP transport only)."""
        if self.config.transport == "http":
            server.add_route("POST", self.config.events_path, self.handle_http)

    async def verify(self) -> str:
        auth = await slack_call(self.client.auth_test)
        return f"signed in as {auth.get('user')} ({auth.get('user_id')}) to {auth.get('team')} ({auth.get('team_id')})"

    async def start(self) -> None:
        auth = await slack_call(self.client.auth_test)
        self._me = (auth.get("user_id"), auth.get("bot_id"))
        self._prime_authorization(auth)
        log.info("slack %s: connected to team %s as %s (%s)", self.name, auth.get("team_id"),
                 auth.get("user_id"), self.config.transport)
        if self.config.transport == "socket":
            assert self.config.app_token is not None
            self._socket = AsyncSocketModeHandler(self.app, self.config.app_token.get_secret_value())
            await self._socket.connect_async()
        self._started = True

    def _prime_authorization(self, auth: Any) -> None:
        """Hand bolt the auth.test answer start() already has: bolt otherwise calls auth.test
        while handling the first delivery, a network await before `bot.submit` that lets a
        later delivery overtake it. (Bolt keeps its middleware in a private list: should that
        move, this does nothing and bolt looks itself up once, as it used to.)"""
        for middleware in getattr(self.app, "_async_middleware_list", ()):
            if isinstance(middleware, AsyncSingleTeamAuthorization) and middleware.auth_test_result is None:
                middleware.auth_test_result = auth

    async def stop(self) -> None:
        self._started = False
        await self.assistant.close()
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
        """One Events API request: its signature is checked on the raw body before anything
        parses it (bolt parses first, so garbage from anyone cost a 500 and a traceback);
        then bolt runs the listener, and the 200 follows once the listener returned (the
        turn is journaled), within Slack's 3 s."""
        if not self.bot.accepting:  # stopping: Slack retries, to this bot once it is back or to another
            return web.Response(status=503)
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature")
        if (self._verifier is None or not (timestamp.isascii() and timestamp.isdigit())
                or not self._verifier.is_valid(body, timestamp, signature)):
            return web.Response(status=self._refusals.refused(401, "no valid Slack signature"))
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # signed, yet not what Slack sends
            return web.Response(status=self._refusals.refused(400, f"unreadable body ({type(exc).__name__})"))
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def _on_bolt_error(self, error: Exception, request: AsyncBoltRequest,
                             response: BoltResponse | None) -> BoltResponse | None:
        """A delivery no listener takes (app_home_opened, assistant_thread_*, other apps' buttons)
        is acknowledged, quietly: bolt's 404 would make Slack retry it and count toward disabling
        the app's events. One the core could not take (`Unavailable`: stopping, or the store
        cannot write) is a 503 without a traceback, so Slack sends it again. Any other error
        is logged as bolt would (a 500: Slack sends it again too)."""
        if isinstance(error, BoltUnhandledRequestError):
            log.debug("slack %s: acknowledged a delivery botkit does not use", self.name)
            return BoltResponse(status=200, body="")
        if isinstance(error, Unavailable):
            log.warning("slack %s: delivery not taken, Slack will send it again: %s", self.name, error)
            return BoltResponse(status=503, body="")
        await AsyncDefaultListenerErrorHandler(log).handle(error, request, response)
        return None

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
        if (key.channel, key.thread) in self._threads:
            await self._submit(body, event, context.bot_user_id, direct=False)
            return

        async def bot_in_thread() -> bool:
            return await self._bot_in_thread(key, context.bot_user_id, context.bot_id)

        await self._submit(body, event, context.bot_user_id, direct=False, only_if=bot_in_thread)

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
        """Whether the bot has answered in this thread: remembered, else read from the thread.

        The read happens before Slack is acknowledged, so it gets `THREAD_READ_DEADLINE`
        seconds; past that, or on a 429, it raises: Slack gets an error instead of an ack
        and delivers the message again later, rather than it being taken for chatter.
        """
        if (key.channel, key.thread) in self._threads:
            return True
        try:
            async with asyncio.timeout(THREAD_READ_DEADLINE):
                replies = await slack_call(self.client.conversations_replies, channel=key.channel, ts=key.thread,
                                           limit=200)
        except SlackApiError as exc:
            log.warning("slack %s: cannot read thread %s: %s", self.name, key, exc)
            return False
        except (TimeoutError, RateLimited) as exc:
            log.warning("slack %s: reading thread %s failed (%s); Slack will deliver the message again",
                        self.name, key, type(exc).__name__)
            raise
        mine = any(_by_bot(m, bot_user_id, bot_id) for m in replies.get("messages", []))
        if mine:
            self._threads.remember((key.channel, key.thread), True)
        return mine

    async def _submit(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None, direct: bool,
                      only_if: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Hand the message to the core: at once when nothing of its thread is queued and
        nothing needs checking first, else in its thread's order (`only_if` decides, in turn,
        whether it is a question at all). Past the bound of a thread's queue it raises
        `ThreadBusy`: Slack gets an error instead of an ack and delivers the event again."""
        key = self._thread_key(body, event, direct)
        if only_if is None and not self.order.busy(key):
            await self._accept(key, body, event, bot_user_id, direct)
            return

        async def in_turn() -> None:
            if only_if is None or await only_if():
                await self._accept(key, body, event, bot_user_id, direct)

        await self.order.run(key, in_turn)

    async def _accept(self, key: ThreadKey, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None,
                      direct: bool) -> None:
        """Normalize and submit, with no await before `bot.submit` (it fixes the arrival order).

        The text keeps Slack's `<@U…>` syntax (minus the bot's own mention) until `prepare`
        resolves names inside the turn; the mentioned user ids are read from it here.
        """
        text = strip_mention(event.get("text", ""), bot_user_id)
        inbound = Inbound(
            event_id=body.get("event_id") or f"{event['channel']}:{event['ts']}", thread=key,
            user=event.get("user") or event.get("bot_id") or "", text=text, adapter=self.name,
            mentions=mentioned_users(text), is_direct=direct, raw=event, attachments=files.attachments(event))
        self._threads.remember((key.channel, key.thread), True)
        await self.bot.submit(inbound)

    async def prepare(self, inbound: Inbound) -> None:
        """Inside the turn: `<@U…>`/`<#C…>` become `@name`/`#name` and the asker's name is
        looked up (users.info, conversations.info; cached, a failed look-up keeps the id).
        Only for messages from Slack (their raw is the event), not the bot's own questions."""
        if not self.config.resolve_mentions or not isinstance(inbound.raw, dict):
            return
        inbound.text = await self.resolver.resolve(inbound.text)
        if inbound.user:
            inbound.user_name = await self.resolver.user_name(inbound.user)

    async def download(self, attachment: Attachment, limit: int) -> bytes:
        """A file of a question, with the bot token (`botkit_plugins.slack.files`)."""
        return await files.download(self.client, self.config.bot_token.get_secret_value(), attachment, limit)

    # -- reactions and feedback buttons ---------------------------------------------------------

    async def _on_reaction(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        """A reaction on one of the bot's messages, as `botkit_reaction`.

        The bot's own reactions (the progress 👀) never get here: bolt drops self events.
        """
        item = event.get("item") or {}
        if item.get("type") != "message" or not event.get("user"):
            return
        thread = await self._thread_of_own(body.get("team_id") or "", item["channel"], item["ts"],
                                           event.get("item_user"), context)
        if thread is not None:
            await self._notify_reaction(thread, item["ts"], event["user"], event["reaction"])

    async def _on_feedback_button(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A click on 👍/👎 under an answer (already acked): the button's value as `botkit_reaction`."""
        container, message, clicker = body.get("container") or {}, body.get("message") or {}, body.get("user") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        ts = container.get("message_ts") or message.get("ts")
        if not (channel and ts and clicker.get("id")):
            return
        team = (body.get("team") or {}).get("id") or clicker.get("team_id") or ""
        thread = self._posted.get((channel, ts)) or self._message_thread(team, channel, {"ts": ts, **message})
        await self._notify_reaction(thread, ts, clicker["id"], action.get("value") or "")

    async def _notify_reaction(self, thread: ThreadKey, message_id: str, user: str, reaction: str) -> None:
        await self.bot.plugins.reaction(adapter=self, thread=thread, message_id=message_id,
                                        user=user, reaction=reaction, comment=None)

    async def _thread_of_own(self, team: str, channel: str, ts: str, author: str | None,
                             context: Any) -> ThreadKey | None:
        """The thread of the bot's message `ts`; None when the message is someone else's.

        Remembered for what this process sent; else `author` (the event's `item_user`)
        tells whose it is, and conversations.replies where its thread is.
        """
        thread = self._posted.get((channel, ts))
        if thread is not None:
            return thread
        if author is not None and author != context.bot_user_id:
            return None
        try:
            replies = await slack_call(self.client.conversations_replies, channel=channel, ts=ts, limit=1)
        except (SlackApiError, RateLimited) as exc:
            log.warning("slack %s: cannot read message %s in %s: %s", self.name, ts, channel, exc)
            return None
        messages = replies.get("messages") or []
        if not messages:
            return None
        first = messages[0]  # the message itself, or the parent of the thread it is in
        if author is None and not (first.get("ts") == ts and _by_bot(first, context.bot_user_id, context.bot_id)):
            return None
        return self._message_thread(team, channel, first)

    def _message_thread(self, team: str, channel: str, message: dict[str, Any]) -> ThreadKey:
        """The ThreadKey a message belongs to, from the message alone (as `_thread_key` for events)."""
        thread = message.get("thread_ts")
        if not thread:
            direct_conversation = channel.startswith("D") and self.config.dm_sessions == "conversation"
            thread = DM_CONVERSATION if direct_conversation else message["ts"]
        return ThreadKey(self.platform, team, channel, thread)

    async def _user_name(self, user_id: str) -> str | None:
        user = (await self.client.users_info(user=user_id))["user"]
        profile = user.get("profile") or {}
        return profile.get("display_name") or user.get("real_name") or user.get("name")

    async def _channel_name(self, channel_id: str) -> str | None:
        return (await self.client.conversations_info(channel=channel_id))["channel"].get("name")

    # -- progress ----------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        """The configured progress; in an assistant thread (or with `progress: status`), its status."""
        mode = self.config.progress
        status_ts = self._status_ts(inbound)
        if status_ts and self.assistant.uses_status(inbound.thread):
            await self.assistant.show(inbound.thread, status_ts)
            return None
        if mode == "placeholder":
            return await super().show_progress(inbound)
        event = inbound.raw or {}
        if mode == "reaction" and event.get("ts"):
            try:
                await slack_call(self.client.reactions_add, channel=inbound.thread.channel,
                                 timestamp=event["ts"], name=self.config.progress_reaction)
                self._reactions.remember(inbound.thread, (inbound.thread.channel, event["ts"]))
            except (SlackApiError, RateLimited) as exc:  # progress is a courtesy; the answer still comes
                log.warning("slack %s: progress (%s) not shown: %s", self.name, mode, exc)
        return None

    def _status_ts(self, inbound: Inbound) -> str | None:
        """The thread_ts an assistant status for `inbound` goes to: its thread's, or the question's."""
        return self._reply_ts(inbound.thread) or _question_ts(inbound)

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
        if reply_to is not None and self.assistant.holds(thread, message):
            status_ts = self._status_ts(reply_to)
            if status_ts:  # progress only, shown as the thread status: nothing is posted yet
                return await self.assistant.hold(thread, message, status_ts, reply_to.user, _question_ts(reply_to))
        ref = await self._new_message(thread, message, reply_to.user if reply_to else None, _question_ts(reply_to))
        if message.final:
            await self.assistant.clear(thread)
        return ref

    async def _new_message(self, thread: ThreadKey, message: Outgoing, user: str | None,
                           question_ts: str | None) -> MessageRef:
        """Post `message`, natively streamed when that is on and possible."""
        ref = await self._start_stream(thread, message, user, question_ts) if self.streams is not None else None
        if ref is None:
            ref = await self._post(thread, message)
        self._posted.remember((ref.data["channel"], ref.message_id), thread)
        return ref

    async def _post(self, thread: ThreadKey, message: Outgoing) -> MessageRef:
        text, blocks = layout(message)
        kwargs: dict[str, Any] = {"channel": thread.channel, "text": text, "blocks": blocks}
        starts = starts_new_thread(thread)
        thread_ts = self._roots.get(thread) if starts else self._reply_ts(thread)
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        resp = await slack_call(self.client.chat_postMessage, **kwargs)
        channel = resp.get("channel") or thread.channel
        if not isinstance(resp.get("ts"), str) or not resp["ts"]:  # an edit would go to an empty ts later
            raise SlackApiError("chat.postMessage answered without the message's ts", resp)
        if starts and not thread_ts:
            # the Slack thread this message starts: later sends for the key go into it, and
            # people's replies there (keyed by this ts) count as a thread the bot answers
            self._roots.remember(thread, resp["ts"])
            self._threads.remember((channel, resp["ts"]), True)
        return _edited_ref(thread, channel, resp["ts"])

    async def _start_stream(self, thread: ThreadKey, message: Outgoing, user: str | None,
                            question_ts: str | None) -> MessageRef | None:
        """A native stream for this answer, or None to deliver by edits instead.

        A stream needs a thread to live in (one Slack knows: not one the bot is starting)
        and the person it is for (`user`, the one who asked `question_ts`).
        """
        assert self.streams is not None
        if not user or starts_new_thread(thread):
            return None
        thread_ts = self._reply_ts(thread) or question_ts
        if not thread_ts:
            return None
        return await self.streams.start(thread, thread_ts, message, team=thread.workspace, user=user)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        if not (message.final or message.text or message.status or message.notes):
            return  # nothing to show yet: keep the placeholder rather than blank the message
        mode = ref.data.get("mode")
        if mode == HELD:
            if not await self.assistant.still_held(ref, message):
                # the answer's first text: the message it is shown in is posted now, into this ref
                posted = await self._new_message(ref.thread, message, ref.data.get("user"),
                                                 ref.data.get("question_ts"))
                ref.message_id = posted.message_id
                ref.data.clear()
                ref.data.update(posted.data)
        elif mode == "stream" and self.streams is not None:
            await self.streams.edit(ref, message)
        else:
            text, blocks = layout(message)
            await slack_call(self.client.chat_update, channel=ref.data["channel"], ts=ref.data["ts"],
                             text=text, blocks=blocks)
        if message.final:
            await self.assistant.clear(ref.thread)

    # -- recovery ---------------------------------------------------------------------------------

    async def find_orphan(self, inbound: Inbound, placeholder: Outgoing) -> MessageRef | None:
        """The bot's first message after the question in its thread (or, for a DM kept as one
        conversation, in the DM) whose text reads as `placeholder`, ready to `edit`.

        Read with conversations.replies (conversations.history for a DM conversation). A
        native stream's placeholder has no text of its own and is not found (None: the
        answer is posted anew); so is anything in a thread the bot started itself. A 429
        raises `RateLimited`.
        """
        thread = inbound.thread
        question_ts = inbound.raw.get("ts") if isinstance(inbound.raw, dict) else None
        if not question_ts or starts_new_thread(thread) or self._me == (None, None):
            return None
        expected = layout(placeholder)[0]
        try:
            messages = await self._messages_after(thread, question_ts)
        except SlackApiError as exc:
            log.warning("slack %s: cannot read %s to find an unrecorded answer: %s", self.name, thread, exc)
            return None
        for message in messages:
            if _by_bot(message, *self._me) and message.get("text") == expected:
                ref = _edited_ref(thread, thread.channel, message["ts"])
                self._posted.remember((thread.channel, message["ts"]), thread)
                return ref
        return None

    async def _messages_after(self, thread: ThreadKey, ts: str) -> list[dict[str, Any]]:
        """The messages of `thread` posted after `ts`, oldest first (a few pages at most)."""
        if thread.thread == DM_CONVERSATION:
            read, where = self.client.conversations_history, {"channel": thread.channel}
        else:
            read, where = self.client.conversations_replies, {"channel": thread.channel, "ts": thread.thread}
        after = Decimal(ts)
        found: list[dict[str, Any]] = []
        cursor = None
        for _ in range(_ORPHAN_PAGES):
            resp = await slack_call(read, **where, oldest=ts, inclusive=False, limit=200, cursor=cursor)
            found += [m for m in resp.get("messages") or [] if m.get("ts") and Decimal(m["ts"]) > after]
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return sorted(found, key=lambda m: Decimal(m["ts"]))


async def _ack(ack: Any) -> None:
    """The whole synchronous part of a listener that does its work lazily (after the ack)."""
    await ack()



def _question_ts(inbound: Inbound | None) -> str | None:
    """The ts of the message `inbound` was made from (None for the bot's own questions)."""
    raw = inbound.raw if inbound is not None else None
    ts = raw.get("ts") if isinstance(raw, dict) else None
    return ts if isinstance(ts, str) and ts else None


def _edited_ref(thread: ThreadKey, channel: str, ts: str) -> MessageRef:
    """How `edit` finds a message posted with chat.postMessage."""
    return MessageRef(thread, ts, {"channel": channel, "ts": ts, "mode": "edit"})
