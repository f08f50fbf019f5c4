"""The Discord adapter on discord.py: gateway events in, messages and edits out.

Questions arrive as messages (mentions, help channels, threads the bot answers in,
forum posts, DMs) or as the `/ask` and `/reset` slash commands; each is handed to
`bot.submit` with no await before it, so its place in its thread is the gateway's order.
A question asked in a channel gets a thread opened on it when its turn starts (not when
it arrives, so a redelivered message, which the core drops as a duplicate, never opens a
second thread).
The journal keeps of a question only ids (`Asked`, see `journal_raw`): a turn the core
recovers after a restart opens its thread, replies and finds its unrecorded answer
(`find_orphan`) from those. A recovered /ask is answered as a plain message where it
was asked: its interaction's token and deferred response did not survive the restart
(an ephemeral one in a direct message to the asker, so that nobody else sees it).
Progress is the typing indicator; answers are a message that the core's renderer edits,
with notes as Discord markdown (`layout`). Final answers get buttons (message components):
👍 and 👎 when the feedback middleware asks for votes (or reactions, `feedback`), and
"Sources", which shows the cited sources only to whoever clicks (an ephemeral reply).
Clicks arrive as MESSAGE_COMPONENT interactions; a vote, like people's reactions on the
bot's messages, fires the `botkit_reaction` hook (the feedback middleware records it).
`/ask ephemeral:true` answers so that only the asker sees it. `@everyone` and `@here`
never make a message a question. Files on a question are its `attachments`, downloaded
from Discord's CDN only when the backend reads them (`botkit_plugins.discord.files`).
When the bot speaks first (a scheduled question), its first message goes at the top of
the target channel and, with `create_threads`, the rest of the answer and the users'
follow-ups continue in a thread opened on it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import discord
from discord import app_commands

from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, RateLimited, Unavailable, starts_new_thread
from botkit.markup import Markup
from botkit.events import Attachment, Draft, Inbound, Source, ThreadKey
from botkit_plugins.discord import DiscordConfig, endpoints, files, layout
from botkit_plugins.discord.conversations import Conversations, question_text
from botkit_plugins.discord.posted import VOTES, PostedMessages

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.discord")

T = TypeVar("T")
#: answers never ping anyone: not @everyone, not roles, not users, not the replied-to author
NO_MENTIONS = discord.AllowedMentions.none()
#: an interaction's token (needed to edit its response) is valid for 15 minutes
INTERACTION_LIFETIME = 15 * 60.0
#: the Sources button's reply when the answer cited nothing the store still knows
NO_SOURCES = "No sources are recorded for this answer."
#: the typing indicator stops by itself after this long without an answer
TYPING_LIMIT = 120.0
TYPING_RENEW = 8.0
_PENDING_LIMIT = 1000
#: messages read after a question when looking for the bot's unrecorded answer to it
_ORPHAN_SCAN = 200
#: threads the bot started itself whose Discord place it remembers (as many as Conversations)
_STARTED_LIMIT = 10_000
#: the key core gives a thread the bot starts (`botkit.scheduler`): botkit-<job>-<time>
_STARTED_KEY = re.compile(r"^botkit-(?P<job>.+)-\d{8}T\d{6}Z$")


async def _call(request: Awaitable[T]) -> T:
    """Await a discord.py request, turning a 429 it did not absorb into botkit's RateLimited."""
    try:
        return await request
    except discord.RateLimited as exc:
        raise RateLimited(exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status != 429:
            raise
        header = exc.response.headers.get("Retry-After") if exc.response is not None else None
        try:
            retry_after = float(header) if header else 5.0
        except ValueError:
            retry_after = 5.0
        raise RateLimited(retry_after) from exc


@dataclass(frozen=True, slots=True)
class Asked:
    """Where a question was asked, by ids: what the journal keeps of the discord.py object
    (`journal_raw`), and all that answering needs of it, live or after a restart."""

    kind: Literal["message", "command"]
    id: int  # the message's, or the interaction's
    channel_id: int  # the channel, thread or DM it was asked in
    guild_id: int | None
    ephemeral: bool = False  # a command whose answer only the asker may see

    @classmethod
    def of(cls, raw: Any) -> Asked | None:
        """From an Inbound's raw: the discord.py Message or Interaction, or the dict `as_json` made."""
        if isinstance(raw, discord.Message):
            return cls("message", raw.id, raw.channel.id, raw.guild.id if raw.guild else None)
        if isinstance(raw, discord.Interaction):
            return cls("command", raw.id, raw.channel_id or 0, raw.guild_id,
                       bool(getattr(raw.namespace, "ephemeral", False)))
        if isinstance(raw, dict) and raw.get("kind") in ("message", "command"):
            try:
                guild = raw.get("guild_id")
                return cls(raw["kind"], int(raw["id"]), int(raw["channel_id"]), int(guild) if guild else None,
                           bool(raw.get("ephemeral")))
            except (KeyError, TypeError, ValueError):
                return None
        return None

    def as_json(self) -> dict[str, Any]:
        """Snowflakes as strings, as Discord writes them (JSON readers may lose 64-bit integers)."""
        data: dict[str, Any] = {"kind": self.kind, "id": str(self.id), "channel_id": str(self.channel_id),
                                "guild_id": str(self.guild_id) if self.guild_id else None}
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(slots=True)
class _Command:
    """A slash command in progress: its response is deferred, sent or edited exactly once
    each way, whichever of the command handler and the turn gets there first."""

    interaction: discord.Interaction
    thread: ThreadKey
    ephemeral: bool = False  # every message of the answer seen only by the asker
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    original_used: bool = False
    created: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return str(self.interaction.id)

    async def defer(self) -> None:
        async with self.lock:
            if not self.interaction.response.is_done():
                await _call(self.interaction.response.defer(thinking=True, ephemeral=self.ephemeral))

    async def post(self, content: str, view: discord.ui.View | None) -> tuple[MessageRef, discord.Message | None]:
        """The original response if still unused, else a follow-up message; with the Discord
        message when known (Discord may not say which message an original response became)."""
        interaction = self.interaction
        extra = _with_view(view)
        sent: discord.Message | None
        async with self.lock:
            if not interaction.response.is_done():
                response = await _call(interaction.response.send_message(
                    content, allowed_mentions=NO_MENTIONS, ephemeral=self.ephemeral, **extra))
                sent = response.resource if isinstance(response.resource, discord.Message) else None
            elif not self.original_used:
                sent = await _call(interaction.edit_original_response(content=content, allowed_mentions=NO_MENTIONS,
                                                                      **extra))
            else:
                sent = await _call(interaction.followup.send(content, wait=True, allowed_mentions=NO_MENTIONS,
                                                             ephemeral=self.ephemeral, **extra))
                return MessageRef(self.thread, str(sent.id), {"interaction": self.id, "followup": True}), sent
            self.original_used = True
            return MessageRef(self.thread, self.id, {"interaction": self.id}), sent

    async def edit(self, ref: MessageRef, content: str, view: discord.ui.View | None) -> discord.Message:
        extra = _with_view(view)
        if ref.data.get("followup"):
            return await _call(self.interaction.followup.edit_message(int(ref.message_id), content=content,
                                                                      allowed_mentions=NO_MENTIONS, **extra))
        return await _call(self.interaction.edit_original_response(content=content, allowed_mentions=NO_MENTIONS,
                                                                   **extra))


def _with_view(view: discord.ui.View | None) -> dict[str, Any]:
    """`view=` only when there are buttons: an edit given `view=None` would take them away."""
    return {"view": view} if view is not None else {}


class DiscordAdapter(Adapter):
    """`type: discord`: a discord.py Client with the /ask and /reset commands."""

    platform = "discord"
    config: DiscordConfig

    def __init__(self, name: str, config: DiscordConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(max_length=2000, edit_interval=config.edit_interval, markup=Markup.MARKDOWN)
        #: note kinds not in a message's text (the sources note is behind the Sources button)
        self._hidden = frozenset({layout.SOURCES}) if config.sources_button else frozenset()
        self.conversations = Conversations(config)
        self.client: discord.Client | None = None
        self.tree: app_commands.CommandTree | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._endpoints = False
        self._opening: dict[str, asyncio.Task[None]] = {}  # thread id -> the request opening it
        self._opened: OrderedDict[str, None] = OrderedDict()  # threads opened on questions (ids)
        self._typing: dict[str, asyncio.Task[None]] = {}
        self._commands: OrderedDict[str, _Command] = OrderedDict()
        self._replied: OrderedDict[str, None] = OrderedDict()
        # key of a thread the bot started -> the Discord channel or thread its messages go to
        self._started: OrderedDict[str, str] = OrderedDict()
        self._starting = asyncio.Lock()
        self._posted = PostedMessages()

    @property
    def ready(self) -> bool:
        return self.client is not None and self.client.is_ready() and not self.client.is_closed()

    # -- lifecycle ----------------------------------------------------------------------------

    async def verify(self) -> str:
        """GET /users/@me with the bot token: what discord.py's login does first."""
        import httpx

        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(self.config.api_url.rstrip("/") + "/users/@me",
                                      headers={"Authorization": f"Bot {self.config.token.get_secret_value()}"})
        if response.status_code != 200:
            raise RuntimeError(f"Discord refused the token (HTTP {response.status_code})")
        me = response.json()
        return f"signed in as {me.get('username')} ({me.get('id')})"

    async def start(self) -> None:
        """Log in, sync the commands, connect to the gateway and wait until it is READY."""
        config = self.config
        endpoints.acquire(config.api_url, config.gateway_url)
        self._endpoints = True
        self._ready = asyncio.Event()
        try:
            self.client = self._make_client()
            await self.client.login(config.token.get_secret_value())
            self._runner = asyncio.create_task(self.client.connect(reconnect=True), name=f"discord:{self.name}")
            waiter = asyncio.create_task(self._ready.wait())
            done, _ = await asyncio.wait({waiter, self._runner}, timeout=config.ready_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self._runner in done:
                self._runner.result()
                raise RuntimeError(f"discord adapter {self.name}: the gateway closed before READY")
            if not done:
                raise TimeoutError(f"discord adapter {self.name}: gateway not ready after {config.ready_timeout:g} s")
        except BaseException:
            await self.stop()
            raise
        log.info("discord adapter %s connected as %s", self.name, self.client.user)

    async def stop(self) -> None:
        for task in list(self._typing.values()):
            task.cancel()
        if self.client is not None:
            await self.client.close()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if self._endpoints:
            endpoints.release()
            self._endpoints = False

    def _make_client(self) -> discord.Client:
        config = self.config
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it for the bot in the developer portal
        options = {"intents": intents, "allowed_mentions": NO_MENTIONS, "chunk_guilds_at_startup": False,
                   "guild_ready_timeout": config.guild_ready_timeout,
                   "max_ratelimit_timeout": config.max_ratelimit_timeout}
        if config.auto_shard or config.shard_count:
            client: discord.Client = discord.AutoShardedClient(shard_count=config.shard_count, **options)
        else:
            client = discord.Client(**options)
        # discord.py dispatches "x" to the attribute on_x, and login() awaits setup_hook
        client.on_ready = self._on_ready  # type: ignore[attr-defined]
        client.on_message = self._on_message  # type: ignore[attr-defined]
        client.on_raw_reaction_add = self._on_reaction  # type: ignore[attr-defined]
        client.on_interaction = self._on_interaction  # type: ignore[attr-defined]
        client.setup_hook = self._sync_commands  # type: ignore[method-assign]
        self.tree = self._command_tree(client)
        return client

    def _command_tree(self, client: discord.Client) -> app_commands.CommandTree:
        tree = app_commands.CommandTree(client)

        @tree.command(name="ask", description="Ask the knowledge base a question")
        @app_commands.describe(question="What do you want to know?",
                               ephemeral="Answer so that only you can see it")
        async def ask(interaction: discord.Interaction, question: str, ephemeral: bool = False) -> None:
            await self._on_command(interaction, question, ephemeral=ephemeral)

        @tree.command(name="reset", description="Start a new conversation in this thread")
        async def reset(interaction: discord.Interaction) -> None:
            await self._on_command(interaction, "/reset", command="reset")

        return tree

    async def _sync_commands(self) -> None:
        """Register /ask and /reset with Discord: per configured guild, else globally."""
        assert self.tree is not None
        if not self.config.sync_commands:
            return
        if not self.config.guilds:
            await self.tree.sync()
            return
        for guild_id in self.config.guilds:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:  # e.g. the bot is not in that guild: mentions still work
                log.error("discord adapter %s: syncing commands to guild %s failed: %s", self.name, guild_id, exc)

    async def _on_ready(self) -> None:
        assert self._ready is not None
        self._ready.set()

    # -- inbound ----------------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        assert self.client is not None and self.client.user is not None
        me = self.client.user.id
        target = self.conversations.target(message, me)
        if target is None:
            return
        text = question_text(message, me)
        attachments = tuple(files.attachment(a) for a in message.attachments)
        if not text and not attachments:
            return
        inbound = Inbound(str(message.id), target.thread, str(message.author.id), text, self.name,
                          message.author.display_name, tuple(str(i) for i in message.raw_mentions),
                          target.is_direct, raw=message, attachments=attachments)
        if await self._submit(inbound):
            self.conversations.remember(target.thread, None if target.open_thread else message.channel.id)

    async def _on_reaction(self, event: discord.RawReactionActionEvent) -> None:
        """Someone reacted to one of the bot's messages: tell the plugins (feedback counts votes).
        The bot's own reactions (the 👍/👎 it adds) and reactions on others' messages are not news."""
        me = self._client().user
        if me is None or event.user_id == me.id or event.emoji.name is None:
            return
        answer = self._answer_of(event.message_id, event.message_author_id, event.guild_id, event.channel_id)
        if answer is None:
            return
        await self.bot.plugins.reaction(adapter=self, thread=answer[0], message_id=answer[1],
                                        user=str(event.user_id), reaction=event.emoji.name, comment=None)

    def _answer_of(self, discord_id: int, author_id: int | None, guild_id: int | None, channel_id: int,
                   recorded_id: int | None = None) -> tuple[ThreadKey, str] | None:
        """The thread and recorded message id of the bot's message `discord_id`; None when the
        message is someone else's. One posted before a restart is placed by its channel, under
        `recorded_id` (an interaction's response is recorded under the interaction) or its own id."""
        posted = self._posted.get(discord_id)
        if posted is not None:
            return posted.thread, posted.message_id
        me = self._client().user
        if me is None or author_id != me.id:
            return None
        thread = self.conversations.for_channel(guild_id, channel_id, self._client().get_channel(channel_id))
        return thread, str(recorded_id or discord_id)

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """A click on a button under an answer (a MESSAGE_COMPONENT interaction): 👍/👎 is a
        vote, "Sources" shows the answer's sources to the clicker alone. Answered within
        Discord's 3 s; buttons of other apps' or plugins' messages are left alone."""
        if interaction.type is not discord.InteractionType.component or interaction.message is None:
            return
        custom_id = str((interaction.data or {}).get("custom_id") or "")
        if custom_id != layout.SOURCES_ID and not custom_id.startswith(layout.VOTE_PREFIX):
            return
        message = interaction.message
        metadata = message.interaction_metadata
        answer = self._answer_of(message.id, message.author.id, interaction.guild_id, message.channel.id,
                                 metadata.id if metadata is not None else None)
        if answer is None:
            return
        try:
            if custom_id == layout.SOURCES_ID:
                await self._show_sources(interaction, message.id, *answer)
            else:
                await self._vote(interaction, custom_id.removeprefix(layout.VOTE_PREFIX), *answer)
        except (discord.HTTPException, RateLimited) as exc:
            log.warning("discord adapter %s: could not answer a click on %s: %s", self.name, custom_id, exc)

    async def _vote(self, interaction: discord.Interaction, vote: str, thread: ThreadKey, message_id: str) -> None:
        if self.config.vote_reply:
            await _call(interaction.response.send_message(self.config.vote_reply, ephemeral=True,
                                                          allowed_mentions=NO_MENTIONS))
        else:
            await _call(interaction.response.defer())  # a deferred update: the message stays as it is
        await self.bot.plugins.reaction(adapter=self, thread=thread, message_id=message_id,
                                        user=str(interaction.user.id), reaction=vote, comment=None)

    async def _show_sources(self, interaction: discord.Interaction, discord_id: int, thread: ThreadKey,
                            message_id: str) -> None:
        posted = self._posted.get(discord_id)
        text = posted.sources if posted is not None else None
        if text is None:  # posted before a restart: rendered again from the recorded answer
            await _call(interaction.response.defer(ephemeral=True, thinking=True))
            text = await self._recorded_sources(thread, message_id)
            await _call(interaction.edit_original_response(content=text or NO_SOURCES, allowed_mentions=NO_MENTIONS))
            return
        await _call(interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS,
                                                      suppress_embeds=True))

    async def _recorded_sources(self, thread: ThreadKey, message_id: str) -> str | None:
        """The sources note of the answer the store recorded under `message_id`, rendered anew."""
        record = await self.bot.store.turn_for_message(thread, message_id)
        if record is None or not record.sources:
            return None
        draft = Draft(record.answer, [Source(**source) for source in record.sources], final=True,
                      backend=record.backend, thread=thread)
        self.bot.plugins.render(draft, self.surface)
        return layout.sources_text(Outgoing(draft.text, draft.notes, final=True))

    async def download(self, attachment: Attachment, limit: int) -> bytes:
        """From Discord's CDN: the attachment's URL is signed, so it needs no token."""
        return await files.download(attachment, limit)

    async def _on_command(self, interaction: discord.Interaction, text: str, command: str | None = None, *,
                          ephemeral: bool = False) -> None:
        """/ask and /reset: submitted like a message, the response deferred ("thinking…");
        /reset as the native command, whatever the configured reset words. An ephemeral /ask
        is answered in messages only the asker sees."""
        if str(interaction.id) in self._commands:  # redelivered by a gateway RESUME
            return
        pending = _Command(interaction, self.conversations.for_interaction(interaction), ephemeral)
        self._remember_command(pending)
        inbound = Inbound(pending.id, pending.thread, str(interaction.user.id), text, self.name,
                          interaction.user.display_name, (), interaction.guild_id is None, command=command,
                          raw=interaction)
        if await self._submit(inbound):
            await pending.defer()  # a no-op if the turn already responded
        else:
            self._commands.pop(pending.id, None)

    async def _submit(self, inbound: Inbound) -> bool:
        """`bot.submit`; a delivery not taken (`Unavailable`) is said so to the person, if there
        is something to say: the gateway never delivers it again."""
        try:
            return await self.bot.submit(inbound)
        except Unavailable as exc:
            log.warning("%s not taken: %s", inbound.event_id, exc)
            if exc.notice:
                await self.tell(inbound, exc.notice)
            return False

    def _remember_command(self, command: _Command) -> None:
        now = time.monotonic()
        while self._commands and now - next(iter(self._commands.values())).created > INTERACTION_LIFETIME:
            self._commands.popitem(last=False)
        self._commands[command.id] = command

    def journal_raw(self, inbound: Inbound) -> dict[str, Any] | None:
        """The ids of the message or command the question came from (`Asked`)."""
        asked = Asked.of(inbound.raw)
        return asked.as_json() if asked is not None else None

    # -- outbound -----------------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        """Slash commands: the deferred response ("thinking…"), edited into the answer.
        Messages (and commands recovered after a restart): open the thread if the question
        needs one, then show typing there."""
        command = self._command_for(inbound)
        if command is not None:
            await command.defer()
            async with command.lock:
                if not command.original_used:
                    command.original_used = True
                    return MessageRef(inbound.thread, command.id, {"interaction": command.id})
            return None
        await self._ensure_thread(inbound)
        channel_id = self._channel_of(inbound.thread)
        channel = self._client().get_partial_messageable(int(channel_id))
        try:
            await channel.typing()  # one indicator now, lasting about 10 s
        except discord.HTTPException as exc:
            log.debug("discord adapter %s: typing indicator failed: %s", self.name, exc)
            return None
        if channel_id not in self._typing:
            task = self._typing[channel_id] = asyncio.create_task(self._keep_typing(channel))
            task.add_done_callback(lambda t: self._typing.pop(channel_id, None) if self._typing.get(channel_id) is t
                                   else None)
        return None

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        ref, sent = await self._send(thread, layout.content(message, hide=self._hidden), self._view(message),
                                     reply_to)
        await self._delivered(ref, sent, message)
        return ref

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        content = layout.content(message, hide=self._hidden)
        view = self._view(message)
        interaction_id = ref.data.get("interaction")
        if interaction_id is not None:
            command = self._commands.get(interaction_id)
            if command is None:
                raise RuntimeError("the slash command's response can no longer be edited (its token expired)")
            sent = await command.edit(ref, content, view)
        else:
            channel = self._client().get_partial_messageable(int(ref.data["channel_id"]))
            sent = await _call(channel.get_partial_message(int(ref.message_id)).edit(
                content=content, allowed_mentions=NO_MENTIONS, **_with_view(view)))
        await self._delivered(ref, sent, message)

    def _view(self, message: Outgoing) -> discord.ui.View | None:
        """The buttons under a final answer (`layout.buttons`), or None. Clicks are handled in
        `_on_interaction`, not by discord.py's view store (which would keep one per answer)."""
        row = layout.buttons(message, votes=self.config.feedback != "reactions", sources=self.config.sources_button)
        if not row:
            return None
        view = discord.ui.View(timeout=None)
        for custom_id, label, emoji in row:
            view.add_item(discord.ui.Button(style=discord.ButtonStyle.secondary, custom_id=custom_id, label=label,
                                            emoji=emoji))
        view.stop()  # a finished view is sent as components and never stored
        return view

    async def _send(self, thread: ThreadKey, content: str, view: discord.ui.View | None,
                    reply_to: Inbound | None) -> tuple[MessageRef, discord.Message | None]:
        command = self._command_for(reply_to)
        if command is not None:
            return await command.post(content, view)
        asked = Asked.of(reply_to.raw) if reply_to is not None else None
        if asked is not None and asked.ephemeral and reply_to is not None:
            # its interaction is gone (a restart): a message in the channel would show everyone
            return await self._send_privately(reply_to, content, view)
        if starts_new_thread(thread):  # the bot speaks first, in a thread of its own
            async with self._starting:
                if thread.key not in self._started:
                    return await self._start(thread, content, view)
        if reply_to is not None and reply_to.thread == thread:
            await self._ensure_thread(reply_to)
        channel_id = self._channel_of(thread)
        typing = self._typing.pop(channel_id, None)
        if typing is not None:
            typing.cancel()
        channel = self._client().get_partial_messageable(int(channel_id))
        sent = await _call(channel.send(content, reference=self._reference(reply_to, channel.id),
                                        allowed_mentions=NO_MENTIONS, view=view))
        return MessageRef(thread, str(sent.id), {"channel_id": str(channel.id)}), sent

    async def _send_privately(self, asked: Inbound, content: str,
                              view: discord.ui.View | None) -> tuple[MessageRef, discord.Message]:
        """A message of an ephemeral /ask's answer whose interaction is gone, as a direct message."""
        channel = await _call(self._client().create_dm(discord.Object(int(asked.user))))
        sent = await _call(channel.send(content, allowed_mentions=NO_MENTIONS, view=view))
        return MessageRef(asked.thread, str(sent.id), {"channel_id": str(channel.id)}), sent

    def _reference(self, reply_to: Inbound | None, channel_id: int) -> discord.MessageReference | None:
        """A reply to the question for the first message answering it, when that message goes
        into the channel the question is in (a DM, a thread, a channel without threads)."""
        asked = Asked.of(reply_to.raw) if reply_to is not None else None
        if asked is None or asked.kind != "message" or asked.channel_id != channel_id \
                or reply_to.event_id in self._replied:
            return None
        self._replied[reply_to.event_id] = None
        while len(self._replied) > _PENDING_LIMIT:
            self._replied.popitem(last=False)
        return discord.MessageReference(message_id=asked.id, channel_id=asked.channel_id, guild_id=asked.guild_id,
                                        fail_if_not_exists=False)

    async def _delivered(self, ref: MessageRef, sent: discord.Message | None, message: Outgoing) -> None:
        """Remember which answer the Discord message `sent` is and what its Sources button
        shows; under a final answer that asks for feedback, add the 👍/👎 reactions for people
        to click when `feedback` wants them (once per message; never on an ephemeral one)."""
        if sent is None:
            return
        posted = self._posted.remember(sent.id, ref.thread, ref.message_id)
        if self.config.sources_button:
            posted.sources = layout.sources_text(message) or posted.sources
        if (posted.voted or self.config.feedback == "buttons" or not layout.wants_votes(message)
                or sent.flags.ephemeral):
            return
        posted.voted = True
        for emoji in VOTES:
            try:  # the answer is out: missing reactions (no permission, rate limit) must not repeat it
                await _call(sent.add_reaction(emoji))
            except (discord.HTTPException, RateLimited) as exc:
                log.warning("discord adapter %s: could not add the feedback reactions: %s", self.name, exc)
                return

    # -- helpers ---------------------------------------------------------------------------------------

    def _client(self) -> discord.Client:
        # a method, not a property: the core registers adapters as plugins, and pluggy reads every attribute
        if self.client is None:
            raise RuntimeError(f"discord adapter {self.name} is not started")
        return self.client

    def _channel_of(self, thread: ThreadKey) -> str:
        """The Discord channel or thread that messages of `thread` go to."""
        place = self._started.get(thread.key)
        if place is None:
            return thread.thread
        self._started.move_to_end(thread.key)
        return place

    async def _start(self, thread: ThreadKey, content: str,
                     view: discord.ui.View | None) -> tuple[MessageRef, discord.Message]:
        """Post the first message of a thread the bot starts at the top of `thread.channel`;
        with `create_threads`, open a Discord thread on it for the rest of the answer."""
        client = self._client()
        # the cached channel knows its guild, which discord.py needs to open a thread
        channel = client.get_channel(int(thread.channel))
        if not isinstance(channel, discord.abc.Messageable):
            channel = client.get_partial_messageable(int(thread.channel))
        sent = await _call(channel.send(content, allowed_mentions=NO_MENTIONS, view=view))
        place = str(sent.channel.id)
        if self.config.create_threads:
            try:
                opened = await _call(sent.create_thread(name=self._started_name(thread),
                                                        auto_archive_duration=self.config.thread_auto_archive_minutes))
            except (discord.HTTPException, RateLimited, ValueError) as exc:
                # the message is out: the answer continues under it in the channel rather than twice
                log.warning("discord adapter %s: could not open a thread in %s, answering in the channel: %s",
                            self.name, thread.channel, exc)
            else:
                place = str(opened.id)
                self.conversations.remember(thread, opened.id)
        self._started[thread.key] = place
        while len(self._started) > _STARTED_LIMIT:
            self._started.popitem(last=False)
        return MessageRef(thread, str(sent.id), {"channel_id": str(sent.channel.id)}), sent

    def _started_name(self, thread: ThreadKey) -> str:
        """A started thread is named like a question's: after its scheduled question and job."""
        match = _STARTED_KEY.match(thread.thread)
        job_name = match["job"] if match else thread.thread
        for job in self.bot.config.root.schedule:
            if job.name == job_name and job.post.adapter == self.name:
                return self.conversations.thread_name(job.ask.question, job.name)
        return self.conversations.thread_name(job_name, job_name)

    def _command_for(self, inbound: Inbound | None) -> _Command | None:
        """The live slash command `inbound` came from; None for messages, and for commands
        whose interaction this process does not hold (recovered after a restart, expired)."""
        return self._commands.get(inbound.event_id) if inbound is not None else None

    @staticmethod
    def _opens_thread(inbound: Inbound, asked: Asked | None) -> bool:
        """Whether `inbound` is a question asked in a channel whose thread is to be opened on it:
        its thread is named by the question's own id (see `Conversations.target`)."""
        return (asked is not None and asked.kind == "message" and inbound.thread.thread == str(asked.id)
                and inbound.thread.channel == str(asked.channel_id))

    async def _ensure_thread(self, inbound: Inbound) -> None:
        """Open the thread `inbound` is to be answered in if it is still to be opened (once,
        however many ask; after a restart, opening it again finds it)."""
        asked = Asked.of(inbound.raw)
        thread_id = inbound.thread.thread
        if not self._opens_thread(inbound, asked) or thread_id in self._opened:
            return
        assert asked is not None
        task = self._opening.get(thread_id)
        if task is None:
            name = self.conversations.thread_name(inbound.text, inbound.user_name or inbound.user)
            task = self._opening[thread_id] = asyncio.create_task(self._open_thread(asked, name))
            task.add_done_callback(lambda _: self._opening.pop(thread_id, None))
        await asyncio.shield(task)

    async def _open_thread(self, asked: Asked, name: str) -> None:
        """Open a thread named `name` on the question message, from its ids alone."""
        client = self._client()
        # the cached channel knows its guild, which discord.py needs to open a thread
        channel = client.get_channel(asked.channel_id)
        if not isinstance(channel, discord.TextChannel):
            channel = client.get_partial_messageable(asked.channel_id, guild_id=asked.guild_id)
        message = channel.get_partial_message(asked.id)
        try:
            await _call(message.create_thread(name=name, auto_archive_duration=self.config.thread_auto_archive_minutes))
        except discord.HTTPException as exc:
            if exc.code != 160004:  # "a thread has already been created for this message": answer in it
                raise
        self._opened[str(asked.id)] = None
        while len(self._opened) > _PENDING_LIMIT:
            self._opened.popitem(last=False)

    # -- recovery -----------------------------------------------------------------------------------------

    async def find_orphan(self, inbound: Inbound, placeholder: Outgoing) -> MessageRef | None:
        """The bot's first message after the question, where its answer goes, reading as
        `placeholder` (content compared as `layout` renders it), ready to `edit`.

        Read from the channel's history after the question's (or command's) id, at most
        `_ORPHAN_SCAN` messages. None when there is none, when the thread the answer was to
        go into was never opened, and for threads the bot started itself; a 429 discord.py
        does not wait out raises `RateLimited`.
        """
        asked = Asked.of(inbound.raw)
        client = self._client()
        if asked is None or client.user is None or starts_new_thread(inbound.thread):
            return None
        channel_id = int(self._channel_of(inbound.thread))
        channel = client.get_partial_messageable(channel_id, guild_id=asked.guild_id)
        expected = layout.content(placeholder)
        try:
            async for message in channel.history(limit=_ORPHAN_SCAN, after=discord.Object(asked.id),
                                                 oldest_first=True):
                if message.author.id == client.user.id and message.content == expected:
                    ref = MessageRef(inbound.thread, str(message.id), {"channel_id": str(channel_id)})
                    self._posted.remember(message.id, inbound.thread, ref.message_id)
                    return ref
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from exc
        except discord.NotFound:
            return None  # no such channel: the answer's thread was never opened
        except discord.HTTPException as exc:
            log.warning("discord adapter %s: cannot read %s to find an unrecorded answer: %s",
                        self.name, channel_id, exc)
        return None

    async def _keep_typing(self, channel: discord.PartialMessageable) -> None:
        """Renew the typing indicator until the first answer message (which cancels this)."""
        deadline = time.monotonic() + TYPING_LIMIT
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(TYPING_RENEW)
                await channel.typing()
        except discord.HTTPException as exc:
            log.debug("discord adapter %s: typing indicator failed: %s", self.name, exc)
