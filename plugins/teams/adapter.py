"""The Teams adapter: `/api/messages` in, connector REST out, native streaming in 1:1 chats.

Native streaming is used only in personal chats, where Teams allows it: the progress
text opens the stream (an informative `typing`; the backend's `Status` steps follow as
informative updates until the first text), every edit sends the full text so far with the
next sequence number, the final edit closes it with a `message`. Elsewhere, and whenever
Teams refuses a stream (403 ContentStreamNotAllowed, 405), the answer is a message grown
by `PUT` edits; a refused stream continues as such a message with the text it had, so
nothing is lost. Teams ends a stream after 2 minutes: one running for `stream_max_age`
is finalised in place (its closing `message`) and the answer goes on by `PUT` edits of
that same message; a stream Teams ended anyway (403 after it started) is finalised the
same way, by a `PUT` of the streamed message.

The final message of an answer carries Teams' AI label, its cited sources as citation
entities and, with the feedback middleware on, `feedbackLoopEnabled`; a vote of that
feedback loop (the `message/submitAction` invoke) is answered 200 and reported like a
reaction (see `botkit_plugins.teams.ai`).

When the bot speaks first (`reply_to` None: a scheduled question), it creates a new
thread in a channel (`POST v3/conversations`) and the rest of that answer replies in
it; in a chat it simply posts. Such answers are never streamed.

Reactions added to the bot's messages (Teams sends `messageReaction` only for those)
and clicks on its feedback buttons fire the `botkit_reaction` hook; they are never
questions.

A message is acknowledged (202) only after `bot.submit` returned, that is once the core
journaled it; if that fails Teams gets an error and may deliver again. The journal keeps
the activity (the default `journal_raw`), which is enough to answer a turn the core
recovers after a restart: where to post is read from it when this process has not heard
from the conversation. Teams cannot list a conversation's messages, so `find_orphan`
stays the default (None).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web

from botkit import hookimpl
from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, Unavailable, starts_new_thread
from botkit.markup import Markup
from botkit.events import Attachment, Inbound, ThreadKey
from botkit.logs import Refusals
from botkit_plugins.teams import TeamsConfig, files
from botkit_plugins.teams.ai import Native, extend, feedback_vote, informative
from botkit_plugins.teams.activity import (
    PLATFORM,
    Conversation,
    Reaction,
    final_stream_activity,
    guess_type,
    message_activity,
    new_thread_parameters,
    parse_message,
    parse_reaction,
    split_thread_id,
    stream_activity,
    tenant_of,
)
from botkit_plugins.teams.auth import AuthError, InboundVerifier, check_local_activity
from botkit_plugins.teams.connector import Connector, TeamsError, TokenProvider, activities_url, conversations_url

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.teams")

STREAM_REFUSED = frozenset({403, 405})
#: conversations remembered (where to post, whether Teams refused a stream there); oldest dropped
REMEMBERED = 50_000


def _remember(table: dict, key: Any, value: Any) -> None:
    """Insert as most recent, dropping the least recently seen entry beyond `REMEMBERED`."""
    table.pop(key, None)
    table[key] = value
    if len(table) > REMEMBERED:
        del table[next(iter(table))]


class TeamsAdapter(Adapter):
    platform = PLATFORM

    def __init__(self, name: str, config: TeamsConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.config: TeamsConfig = config
        self.capabilities = Capabilities(max_length=config.max_length, edit_interval=config.edit_interval,
                                         markup=Markup.TEAMS, can_edit=True, native_streaming=config.streaming)
        self.placeholder = config.progress_text
        self._http = httpx.AsyncClient(timeout=config.request_timeout)
        self._verifier: InboundVerifier | None = None
        tokens: TokenProvider | None = None
        if config.app_id is not None and config.app_password is not None:  # else local mode
            self._verifier = InboundVerifier(
                http=self._http, metadata_url=config.openid_metadata_url, app_id=config.app_id,
                issuers=config.issuers, min_refresh=config.jwks_min_refresh, max_age=config.jwks_max_age)
            tenant = config.tenant_id or "botframework.com"
            tokens = TokenProvider(http=self._http, url=config.token_url.replace("{tenant}", tenant),
                                   client_id=config.app_id, secret=config.app_password, scope=config.token_scope)
        self._tokens = tokens
        self._connector = Connector(http=self._http, max_retries=config.max_retries, tokens=tokens)
        self._refusals = Refusals(log, f"teams adapter {name} {config.path}")
        allowed = config.allowed_tenants or ([config.tenant_id] if config.tenant_id else [])
        self._allowed_tenants = frozenset(allowed)
        self._conversations: dict[ThreadKey, Conversation] = {}
        self._targets: dict[str, Conversation] = {}  # channel or chat id -> where and how to post there
        self._started: dict[ThreadKey, dict[str, Any]] = {}  # threads the bot started -> their MessageRef data
        self._no_stream: dict[str, bool] = {}  # conversations where Teams refused a stream
        self._open_streams: dict[ThreadKey, MessageRef] = {}
        self._asked_feedback: dict[ThreadKey, str] = {}  # thread -> its last answer with the feedback loop
        self._native = Native(ai_label=config.ai_label, citations=config.citations == "native",
                              feedback=config.feedback == "native")
        self._running = False

    # -- lifecycle and the endpoint -------------------------------------------------------

    @hookimpl
    def botkit_routes(self, server: Any) -> None:
        server.add_route("POST", self.config.path, self.handle)

    async def verify(self) -> str:
        if self._tokens is None:
            return "local mode: nothing to sign in to"
        await self._tokens.token()  # the client-credentials grant the connector uses for every post
        return f"app {self.config.app_id} got a Bot Framework token"

    async def start(self) -> None:
        if self._verifier is None:
            log.warning("teams: local mode (no app_id/app_password): requests to %s are NOT authenticated and "
                        "replies carry no token; only for the Agents Playground or the Emulator on this machine",
                        self.config.path)
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await self._http.aclose()

    @property
    def ready(self) -> bool:
        return self._running

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, submit, then acknowledge (202): after the journal write, well within
        Teams' timeout; the answer goes out through the connector."""
        if not self._running or not self.bot.accepting:  # stopping: the Bot Service delivers again
            return web.Response(status=503)
        identity = None
        if self._verifier is not None:
            try:
                identity = await self._verifier.verify_token(request.headers.get("Authorization"))
            except AuthError as exc:
                return web.Response(status=self._refusals.refused(exc.status, exc.reason))
        try:
            activity = await request.json()
        except (ValueError, RecursionError):
            return web.Response(status=self._refusals.refused(400, "a body that is not JSON"))
        if not isinstance(activity, dict):
            return web.Response(status=self._refusals.refused(400, "a body that is not an activity"))
        try:
            if identity is None:  # local mode
                check_local_activity(activity)
            else:
                InboundVerifier.check_activity(identity, activity)
            if self._allowed_tenants and tenant_of(activity) not in self._allowed_tenants:
                raise AuthError(403, "tenant not allowed")
            if activity.get("type") == "invoke":
                return await self._invoke(activity)
            reaction = parse_reaction(activity)
            message = parse_message(activity) if reaction is None else None
        except AuthError as exc:
            return web.Response(status=self._refusals.refused(exc.status, exc.reason))
        except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:  # fields of other types
            return web.Response(status=self._refusals.refused(400, f"an activity of another shape ({exc!r:.80})"))
        if reaction is not None:
            await self._react(reaction)
            return web.Response(status=202)
        if message is not None:
            self._heard(message.thread, message.conversation)
            try:
                await self.bot.submit(Inbound(
                    event_id=f"{message.conversation.conversation_id}|{message.activity_id}",
                    thread=message.thread, user=message.user, text=message.text, adapter=self.name,
                    user_name=message.user_name, mentions=message.mentions, is_direct=message.is_direct,
                    raw=activity, attachments=message.attachments))
            except Unavailable:  # stopping, or the store cannot write: the Bot Service delivers it again
                return web.Response(status=503)
        return web.Response(status=202)

    def _heard(self, thread: ThreadKey, conversation: Conversation) -> None:
        """Remember where to post in `thread` and in its channel or chat."""
        _remember(self._conversations, thread, conversation)
        _remember(self._targets, thread.channel,
                  dataclasses.replace(conversation, conversation_id=thread.channel))

    async def _react(self, reaction: Reaction) -> None:
        self._heard(reaction.thread, reaction.conversation)
        for name in reaction.reactions:
            await self.bot.plugins.reaction(adapter=self, thread=reaction.thread,
                                            message_id=reaction.message_id, user=reaction.user, reaction=name,
                                            comment=reaction.comment)

    async def download(self, attachment: Attachment, limit: int) -> bytes:
        """A file or image of a question (`botkit_plugins.teams.files`): the bot's token only for
        the Bot Connector's own attachment URLs."""
        return await files.download(attachment, limit, self._tokens.token if self._tokens is not None else None)

    async def _invoke(self, activity: dict[str, Any]) -> web.Response:
        """Teams awaits an invoke's answer, a 200, and shows the person an error for anything
        else. A vote of its feedback loop (👍/👎, maybe with a text) is reported like a
        reaction; botkit sends no card that invokes anything else."""
        vote = feedback_vote(activity)
        if vote is None:
            return web.Response(status=200)
        if not vote.message_id:  # the Agents Playground names no message: the last answer asking for it
            last = self._asked_feedback.get(vote.thread)
            if last is None:
                return web.json_response({"status": 200})
            vote = dataclasses.replace(vote, message_id=last)
        await self._react(vote)
        return web.json_response({"status": 200})

    # -- delivering --------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        """In a 1:1 chat open a native stream with the progress text; elsewhere post it."""
        conversation = self._conversation(inbound.thread, inbound)
        if self.config.streaming and inbound.is_direct and conversation.conversation_id not in self._no_stream:
            ref = MessageRef(inbound.thread, "", {**conversation.as_dict(), "mode": "stream", "sequence": 0,
                                                  "reply_to": _activity_id(inbound), "streamed": ""})
            try:
                await self._stream(ref, "informative", informative(self.progress_text), absorb_429=True)
                self._open_streams[inbound.thread] = ref
                return ref
            except TeamsError as exc:
                if exc.status not in STREAM_REFUSED:
                    raise
                self._refuse_streaming(conversation, exc)
        return await self._post(inbound.thread, Outgoing("", status=self.progress_text), inbound, absorb_429=True)

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        if reply_to is None:
            ref = await self._speak_first(thread, message)
        else:
            ref = await self._post(thread, message, reply_to, absorb_429=False)
        self._asks_feedback(ref, message)
        return ref

    async def reply(self, inbound: Inbound, text: str) -> MessageRef:
        """A notice (help, busy, a refusal): not an AI answer, so it carries no AI label."""
        return await self._post(inbound.thread, Outgoing(text, final=True), inbound, absorb_429=True, answer=False)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        await self._edit(ref, message)
        self._asks_feedback(ref, message)

    async def _edit(self, ref: MessageRef, message: Outgoing) -> None:
        if ref.data.get("mode") == "stream":
            try:
                await self._edit_stream(ref, message)
                return
            except TeamsError as exc:
                if exc.status not in STREAM_REFUSED:
                    raise
                if exc.status == 403 and ref.message_id and await self._finalise_in_place(ref, message, exc):
                    return
                self._refuse_streaming(Conversation.from_dict(ref.data), exc)
                await self._continue_as_message(ref, message)
                return
        await self._put(ref, message)

    def _asks_feedback(self, ref: MessageRef, message: Outgoing) -> None:
        """Remember the answer `ref` as its thread's last one asking for feedback (Teams' own)."""
        if self._native.feedback and message.final and ref.message_id and \
                any(note.kind == "feedback" for note in message.notes):
            _remember(self._asked_feedback, ref.thread, ref.message_id)

    async def _put(self, ref: MessageRef, message: Outgoing) -> None:
        """Make the posted message `ref` read `message`."""
        activity = self._activity(message, ref.message_id)
        activity["id"] = ref.message_id
        url = activities_url(ref.data["service_url"], ref.data["conversation_id"], ref.message_id)
        await self._connector.call("PUT", url, activity, absorb_429=False)

    def _activity(self, message: Outgoing, message_id: str = "", *, answer: bool = True,
                  stream_id: str | None = None) -> dict[str, Any]:
        """The `message` activity showing `message` (the closing one of stream `stream_id`), with
        what Teams shows natively of an answer (`botkit_plugins.teams.ai`)."""
        shown, extras = self._native.split(message, answer=answer)
        card = self.config.sources == "card"
        if stream_id is not None:
            activity = final_stream_activity(shown, stream_id, card=card)
        else:
            activity = message_activity(shown, card=card, message_id=message_id)
        return extend(activity, extras)

    # -- native streaming ----------------------------------------------------------------------

    async def _edit_stream(self, ref: MessageRef, message: Outgoing) -> None:
        if message.final or time.time() - ref.data.get("started", time.time()) >= self.config.stream_max_age:
            # the end of the answer, or of the time Teams gives a stream: what the answer says
            # now closes it, and a longer answer goes on by edits of that message
            await self._post_activity(ref.data, self._activity(message, stream_id=ref.message_id), absorb_429=False)
            self._close_stream(ref)
        elif message.text:
            if message.text != ref.data["streamed"]:
                await self._stream(ref, "streaming", message.text, absorb_429=False)
        elif message.status and not ref.data["streamed"]:
            await self._stream(ref, "informative", informative(message.status), absorb_429=False)

    async def _finalise_in_place(self, ref: MessageRef, message: Outgoing, exc: TeamsError) -> bool:
        """Teams ended a stream it had taken (its 2 minutes were up): the streamed message is
        made to read `message` by a `PUT`, and the answer goes on by edits of it. False when
        that message cannot be edited either (the answer then continues in a new one)."""
        log.info("teams: stream %s ended by Teams (%s); finalising it in place", ref.message_id, exc)
        self._close_stream(ref)
        try:
            await self._put(ref, message)
        except TeamsError as put_exc:
            if put_exc.status not in (400, 403, 404):
                raise
            log.info("teams: the streamed message %s cannot be edited (%s)", ref.message_id, put_exc)
            return False
        return True

    async def _stream(self, ref: MessageRef, kind: str, text: str, *, absorb_429: bool) -> None:
        """One `typing` update; the sequence only advances when Teams took it."""
        sequence = ref.data["sequence"] + 1
        activity = stream_activity(kind, text, sequence, ref.message_id or None)
        answer = await self._post_activity(ref.data, activity, absorb_429=absorb_429)
        if not ref.message_id:
            stream_id = answer.get("id")
            if not isinstance(stream_id, str) or not stream_id:
                raise TeamsError(502, "NoStreamId", "the first streaming activity got no id back")
            ref.message_id = stream_id
            ref.data["started"] = time.time()  # wall clock: the ref's data outlives the process
        ref.data["sequence"] = sequence
        if kind == "streaming":
            ref.data["streamed"] = text

    async def _continue_as_message(self, ref: MessageRef, message: Outgoing) -> None:
        """Teams stopped the stream: post what the answer says now as a message to edit."""
        self._close_stream(ref)
        if not (message.text or message.notes):
            message = Outgoing(ref.data["streamed"], status=message.status or self.progress_text, final=message.final)
        answer = await self._post_activity(ref.data, self._activity(message), absorb_429=True)
        ref.message_id = str(answer.get("id") or "")
        ref.data["mode"] = "message"

    def _close_stream(self, ref: MessageRef) -> None:
        ref.data["mode"] = "message"
        if self._open_streams.get(ref.thread) is ref:
            del self._open_streams[ref.thread]

    def _refuse_streaming(self, conversation: Conversation, exc: TeamsError) -> None:
        log.info("teams: streaming refused in a %s chat (%s); answering by edits",
                 conversation.conversation_type, exc)
        _remember(self._no_stream, conversation.conversation_id, True)

    # -- plain messages ----------------------------------------------------------------------------

    async def _post(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None, *,
                    absorb_429: bool, answer: bool = True) -> MessageRef:
        open_stream = self._open_streams.get(thread)
        if open_stream is not None:
            # the renderer continues a long answer in a new message: the stream must end first
            await self.edit(open_stream, Outgoing(open_stream.data["streamed"], final=True))
        conversation = self._conversation(thread, reply_to)
        data = {**conversation.as_dict(), "mode": "message", "reply_to": _activity_id(reply_to)}
        posted = await self._post_activity(data, self._activity(message, answer=answer), absorb_429=absorb_429)
        activity_id = posted.get("id") if isinstance(posted, dict) else None
        if not isinstance(activity_id, str) or not activity_id:  # an edit would go to an empty id later
            raise TeamsError(200, "NoActivityId", "the Bot Connector accepted the post but returned no activity id")
        return MessageRef(thread, activity_id, data)

    async def _speak_first(self, thread: ThreadKey, message: Outgoing) -> MessageRef:
        """A message nobody asked for: in a thread people spoke or reacted in (a request for a
        feedback comment) it is posted there; otherwise the first of its answer starts a thread
        in a channel, the next ones reply in that thread; in a chat every one is a plain post."""
        activity = self._activity(message)
        data = self._started.get(thread)
        known = self._conversations.get(thread)
        if data is None and known is not None:
            data = {**known.as_dict(), "mode": "message", "reply_to": ""}
        elif data is None:
            target = self._target(thread.channel)
            if target.conversation_type == "channel" and starts_new_thread(thread):
                return await self._start_thread(thread, target, activity)
            data = {**target.as_dict(), "mode": "message", "reply_to": ""}
        answer = await self._post_activity(data, activity, absorb_429=False)
        return MessageRef(thread, str(answer.get("id") or ""), dict(data))

    async def _start_thread(self, thread: ThreadKey, target: Conversation, activity: dict[str, Any]) -> MessageRef:
        tenant = thread.workspace or self.config.tenant_id or ""
        body = new_thread_parameters(target.conversation_id, tenant, target.bot_id, activity)
        answer = await self._connector.call("POST", conversations_url(target.service_url), body, absorb_429=False)
        conversation_id = answer.get("id")
        root = split_thread_id(conversation_id)[1] if isinstance(conversation_id, str) else ""
        root = root or str(answer.get("activityId") or "")
        if not (conversation_id and root):
            raise TeamsError(502, "NoConversationId", "creating the thread returned no conversation or activity id")
        started = dataclasses.replace(target, conversation_id=conversation_id)
        data = {**started.as_dict(), "mode": "message", "reply_to": root}
        _remember(self._started, thread, data)
        return MessageRef(thread, root, dict(data))

    def _target(self, channel: str) -> Conversation:
        """Where to post in a channel or chat: as last seen in an activity from it, else the defaults."""
        known = self._targets.get(channel)
        if known is not None:
            return known
        return Conversation(self.config.service_url, channel, guess_type(channel), f"28:{self.config.app_id or ''}")

    def _conversation(self, thread: ThreadKey, inbound: Inbound | None) -> Conversation:
        """Where to post in `thread`: as last heard, else as the activity of `inbound` says
        (a turn recovered after a restart carries its activity, JSON round-tripped)."""
        known = self._conversations.get(thread)
        if known is not None:
            return known
        message = parse_message(inbound.raw) if inbound is not None and isinstance(inbound.raw, dict) else None
        if message is None or message.thread != thread:
            raise TeamsError(404, "UnknownConversation", f"no Teams conversation known for {thread}")
        self._heard(thread, message.conversation)
        return message.conversation

    async def _post_activity(self, data: dict[str, Any], activity: dict[str, Any], *,
                             absorb_429: bool) -> dict[str, Any]:
        """POST into the conversation, as a reply to the question when it is known."""
        reply_to = data.get("reply_to") or None
        if reply_to:
            activity["replyToId"] = reply_to
        url = activities_url(data["service_url"], data["conversation_id"], reply_to)
        return await self._connector.call("POST", url, activity, absorb_429=absorb_429)


def _activity_id(inbound: Inbound | None) -> str:
    raw = inbound.raw if inbound is not None else None
    return str(raw.get("id") or "") if isinstance(raw, dict) else ""
