"""The Discord adapter on discord.py: gateway events in, messages and edits out.

Questions arrive as messages (mentions, help channels, threads the bot answers in,
forum posts, DMs) or as the `/ask` and `/reset` slash commands. A question asked in a
channel gets a thread opened on it when its turn starts (not when it arrives, so a
redelivered message, which the core drops as a duplicate, never opens a second thread).
Progress is the typing indicator; answers are a message that the core's renderer edits,
with notes as Discord markdown (`layout`). Final answers get 👍 and 👎 reactions, and
people's reactions on the bot's messages fire the `botkit_reaction` hook (the feedback
middleware records votes from it).
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
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands

from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, RateLimited, starts_new_thread
from botkit.events import Inbound, ThreadKey
from botkit_plugins.discord import DiscordConfig, endpoints, layout
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
#: the typing indicator stops by itself after this long without an answer
TYPING_LIMIT = 120.0
TYPING_RENEW = 8.0
_PENDING_LIMIT = 1000
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


@dataclass(slots=True)
class _Command:
    """A slash command in progress: its response is deferred, sent or edited exactly once
    each way, whichever of the command handler and the turn gets there first."""

    interaction: discord.Interaction
    thread: ThreadKey
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    original_used: bool = False
    created: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return str(self.interaction.id)

    async def defer(self) -> None:
        async with self.lock:
            if not self.interaction.response.is_done():
                await _call(self.interaction.response.defer(thinking=True))

    async def post(self, content: str) -> tuple[MessageRef, discord.Message | None]:
        """The original response if still unused, else a follow-up message; with the Discord
        message when known (Discord may not say which message an original response became)."""
        interaction = self.interaction
        sent: discord.Message | None
        async with self.lock:
            if not interaction.response.is_done():
                response = await _call(interaction.response.send_message(content, allowed_mentions=NO_MENTIONS))
                sent = response.resource if isinstance(response.resource, discord.Message) else None
            elif not self.original_used:
                sent = await _call(interaction.edit_original_response(content=content, allowed_mentions=NO_MENTIONS))
            else:
                sent = await _call(interaction.followup.send(content, wait=True, allowed_mentions=NO_MENTIONS))
                return MessageRef(self.thread, str(sent.id), {"interaction": self.id, "followup": True}), sent
            self.original_used = True
            return MessageRef(self.thread, self.id, {"interaction": self.id}), sent

    async def edit(self, ref: MessageRef, content: str) -> discord.Message:
        if ref.data.get("followup"):
            return await _call(self.interaction.followup.edit_message(int(ref.message_id), content=content,
                                                                      allowed_mentions=NO_MENTIONS))
        return await _call(self.interaction.edit_original_response(content=content, allowed_mentions=NO_MENTIONS))


class DiscordAdapter(Adapter):
    """`type: discord`: a discord.py Client with the /ask and /reset commands."""

    platform = "discord"
    config: DiscordConfig

    def __init__(self, name: str, config: DiscordConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.capabilities = Capabilities(max_length=2000, edit_interval=config.edit_interval, markup="markdown")
        self.conversations = Conversations(config)
        self.client: discord.Client | None = None
        self.tree: app_commands.CommandTree | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._endpoints = False
        self._to_open: dict[str, discord.Message] = {}  # thread id -> message to open it on
        self._opening: dict[str, asyncio.Task[None]] = {}
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
        client.setup_hook = self._sync_commands  # type: ignore[method-assign]
        self.tree = self._command_tree(client)
        return client

    def _command_tree(self, client: discord.Client) -> app_commands.CommandTree:
        tree = app_commands.CommandTree(client)

        @tree.command(name="ask", description="Ask the knowledge base a question")
        @app_commands.describe(question="What do you want to know?")
        async def ask(interaction: discord.Interaction, question: str) -> None:
            await self._on_command(interaction, question)

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
        if not text:
            return
        inbound = Inbound(str(message.id), target.thread, str(message.author.id), text, self.name,
                          message.author.display_name, tuple(str(i) for i in message.raw_mentions),
                          target.is_direct, raw=message)
        thread_id = target.thread.thread
        # registered before submit: the turn may start before submit returns
        fresh = target.open_thread and thread_id not in self._to_open and thread_id not in self._opening
        if fresh:
            self._to_open[thread_id] = message
            while len(self._to_open) > _PENDING_LIMIT:
                self._to_open.pop(next(iter(self._to_open)))
        if await self.bot.submit(inbound):
            self.conversations.remember(target.thread, None if target.open_thread else message.channel.id)
        elif fresh:
            self._to_open.pop(thread_id, None)

    async def _on_reaction(self, event: discord.RawReactionActionEvent) -> None:
        """Someone reacted to one of the bot's messages: tell the plugins (feedback counts votes).
        The bot's own reactions (the 👍/👎 it adds) and reactions on others' messages are not news."""
        me = self._client().user
        if me is None or event.user_id == me.id or event.emoji.name is None:
            return
        posted = self._posted.get(event.message_id)
        if posted is not None:
            thread, message_id = posted.thread, posted.message_id
        elif event.message_author_id == me.id:  # posted before a restart: placed by its channel
            thread = self.conversations.for_channel(event.guild_id, event.channel_id,
                                                    self._client().get_channel(event.channel_id))
            message_id = str(event.message_id)
        else:
            return
        await self.bot.plugins.notify("botkit_reaction", adapter=self, thread=thread, message_id=message_id,
                                      user=str(event.user_id), reaction=event.emoji.name, comment=None)

    async def _on_command(self, interaction: discord.Interaction, text: str, command: str | None = None) -> None:
        """/ask and /reset: submitted like a message, the response deferred ("thinking…");
        /reset as the native command, whatever the configured reset words."""
        if str(interaction.id) in self._commands:  # redelivered by a gateway RESUME
            return
        pending = _Command(interaction, self.conversations.for_interaction(interaction))
        self._remember_command(pending)
        inbound = Inbound(pending.id, pending.thread, str(interaction.user.id), text, self.name,
                          interaction.user.display_name, (), interaction.guild_id is None, command=command,
                          raw=interaction)
        if await self.bot.submit(inbound):
            await pending.defer()  # a no-op if the turn already responded
        else:
            self._commands.pop(pending.id, None)

    def _remember_command(self, command: _Command) -> None:
        now = time.monotonic()
        while self._commands and now - next(iter(self._commands.values())).created > INTERACTION_LIFETIME:
            self._commands.popitem(last=False)
        self._commands[command.id] = command

    # -- outbound -----------------------------------------------------------------------------------

    async def show_progress(self, inbound: Inbound) -> MessageRef | None:
        """Slash commands: the deferred response ("thinking…"), edited into the answer.
        Messages: open the thread if the question needs one, then show typing there."""
        command = self._command_for(inbound)
        if command is not None:
            await command.defer()
            async with command.lock:
                if not command.original_used:
                    command.original_used = True
                    return MessageRef(inbound.thread, command.id, {"interaction": command.id})
            return None
        await self._ensure_thread(inbound.thread)
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
        ref, sent = await self._send(thread, layout.content(message), reply_to)
        await self._delivered(ref, sent, message)
        return ref

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        content = layout.content(message)
        interaction_id = ref.data.get("interaction")
        if interaction_id is not None:
            command = self._commands.get(interaction_id)
            if command is None:
                raise RuntimeError("the slash command's response can no longer be edited (its token expired)")
            sent = await command.edit(ref, content)
        else:
            channel = self._client().get_partial_messageable(int(ref.data["channel_id"]))
            sent = await _call(channel.get_partial_message(int(ref.message_id)).edit(content=content,
                                                                                   allowed_mentions=NO_MENTIONS))
        await self._delivered(ref, sent, message)

    async def _send(self, thread: ThreadKey, content: str,
                    reply_to: Inbound | None) -> tuple[MessageRef, discord.Message | None]:
        command = self._command_for(reply_to)
        if command is not None:
            return await command.post(content)
        if starts_new_thread(thread):  # the bot speaks first, in a thread of its own
            async with self._starting:
                if thread.key not in self._started:
                    return await self._start(thread, content)
        await self._ensure_thread(thread)
        channel_id = self._channel_of(thread)
        typing = self._typing.pop(channel_id, None)
        if typing is not None:
            typing.cancel()
        channel = self._client().get_partial_messageable(int(channel_id))
        reference = None
        if reply_to is not None and isinstance(reply_to.raw, discord.Message) \
                and reply_to.raw.channel.id == channel.id and reply_to.event_id not in self._replied:
            reference = reply_to.raw.to_reference(fail_if_not_exists=False)
            self._replied[reply_to.event_id] = None
            while len(self._replied) > _PENDING_LIMIT:
                self._replied.popitem(last=False)
        sent = await _call(channel.send(content, reference=reference, allowed_mentions=NO_MENTIONS))
        return MessageRef(thread, str(sent.id), {"channel_id": str(channel.id)}), sent

    async def _delivered(self, ref: MessageRef, sent: discord.Message | None, message: Outgoing) -> None:
        """Remember which answer the Discord message `sent` is; under a final answer that asks
        for feedback, add the 👍/👎 reactions for people to click (once per message)."""
        if sent is None:
            return
        posted = self._posted.remember(sent.id, ref.thread, ref.message_id)
        if posted.voted or not layout.wants_votes(message):
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

    async def _start(self, thread: ThreadKey, content: str) -> tuple[MessageRef, discord.Message]:
        """Post the first message of a thread the bot starts at the top of `thread.channel`;
        with `create_threads`, open a Discord thread on it for the rest of the answer."""
        client = self._client()
        # the cached channel knows its guild, which discord.py needs to open a thread
        channel = client.get_channel(int(thread.channel))
        if not isinstance(channel, discord.abc.Messageable):
            channel = client.get_partial_messageable(int(thread.channel))
        sent = await _call(channel.send(content, allowed_mentions=NO_MENTIONS))
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
        if inbound is None or not isinstance(inbound.raw, discord.Interaction):
            return None
        return self._commands.get(inbound.event_id)

    async def _ensure_thread(self, thread: ThreadKey) -> None:
        """Open the thread `thread` names if it is still to be opened (once, however many ask)."""
        thread_id = thread.thread
        task = self._opening.get(thread_id)
        if task is None:
            message = self._to_open.pop(thread_id, None)
            if message is None:
                return
            task = self._opening[thread_id] = asyncio.create_task(self._open_thread(message))
            task.add_done_callback(lambda _: self._opening.pop(thread_id, None))
        await asyncio.shield(task)

    async def _open_thread(self, message: discord.Message) -> None:
        me = self._client().user.id if self._client().user else 0
        name = self.conversations.thread_name(question_text(message, me), message.author.display_name)
        try:
            await _call(message.create_thread(name=name, auto_archive_duration=self.config.thread_auto_archive_minutes))
        except discord.HTTPException as exc:
            if exc.code != 160004:  # "a thread has already been created for this message": answer in it
                raise

    async def _keep_typing(self, channel: discord.PartialMessageable) -> None:
        """Renew the typing indicator until the first answer message (which cancels this)."""
        deadline = time.monotonic() + TYPING_LIMIT
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(TYPING_RENEW)
                await channel.typing()
        except discord.HTTPException as exc:
            log.debug("discord adapter %s: typing indicator failed: %s", self.name, exc)
