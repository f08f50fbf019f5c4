"""Which Discord messages the bot answers, and which thread (session) each belongs to.

ThreadKey = (discord, guild id or "@me", parent channel, thread id). A question asked in
a channel gets a thread opened on it; Discord gives such a thread the id of the message
it starts from, so the key is known before the thread exists and a redelivered message
maps to the same key (the core then drops it as a duplicate). DMs and, with
`create_threads: false`, channels are one conversation each: thread = channel. A thread
the bot opened on a message it posted first (a scheduled question) keeps the key it was
started under, so follow-ups there continue that conversation.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import discord

from botkit.events import ThreadKey
from botkit_plugins.discord import DiscordConfig

PLATFORM = "discord"
DM_WORKSPACE = "@me"
_THREAD_TYPES = (discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                 discord.ChannelType.news_thread)
_ANSWERED = (discord.MessageType.default, discord.MessageType.reply)
_EVERYONE = re.compile(r"@(everyone|here)\b")
#: how many threads the bot remembers answering in (for threads discord.py has not cached)
_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Target:
    """Where a question is answered; `open_thread`: first open a thread on the message."""

    thread: ThreadKey
    open_thread: bool = False
    is_direct: bool = False


class Conversations:
    """Decides per message; remembers the threads the bot answers in, so that follow-ups
    there need no mention even when discord.py has not cached the thread."""

    def __init__(self, config: DiscordConfig) -> None:
        self.config = config
        self._help = set(config.help_channels)
        self._threads: OrderedDict[int, ThreadKey] = OrderedDict()

    def remember(self, key: ThreadKey, thread_id: int | None = None) -> None:
        """Note that the bot answers in a Discord thread (not a DM or channel): `thread_id`,
        by default the one `key` names; messages there belong to `key`."""
        if key.workspace == DM_WORKSPACE or key.thread == key.channel:
            return
        thread_id = thread_id or int(key.thread)
        self._threads[thread_id] = key
        self._threads.move_to_end(thread_id)
        while len(self._threads) > _REMEMBERED:
            self._threads.popitem(last=False)

    def target(self, message: discord.Message, me: int) -> Target | None:
        """The thread to answer `message` in, or None if the bot should stay silent: also for
        `@everyone`/`@here` messages (even in help channels and threads), unless they
        mention the bot itself."""
        if message.author.bot or message.author.id == me or message.type not in _ANSWERED:
            return None
        respond = self.config.respond_to
        channel = message.channel
        if message.guild is None:
            if "dms" not in respond:
                return None
            return Target(ThreadKey(PLATFORM, DM_WORKSPACE, str(channel.id), str(channel.id)), is_direct=True)
        guild = str(message.guild.id)
        mentions_me = me in message.raw_mentions
        if not mentions_me and _to_everyone(message):
            return None  # an announcement to everyone, not a question to the bot
        mentioned = "mentions" in respond and mentions_me
        known = self._threads.get(channel.id)
        if known is not None:
            return Target(known)
        if _is_thread(channel):
            parent = str(getattr(channel, "parent_id", None) or channel.id)
            ours = getattr(channel, "owner_id", None) == me
            in_help = "help_channels" in respond and int(parent) in self._help
            if ours or in_help or mentioned:
                return Target(ThreadKey(PLATFORM, guild, parent, str(channel.id)))
            return None
        in_help = "help_channels" in respond and channel.id in self._help
        if not (in_help or mentioned):
            return None
        if self.config.create_threads:
            return Target(ThreadKey(PLATFORM, guild, str(channel.id), str(message.id)), open_thread=True)
        return Target(ThreadKey(PLATFORM, guild, str(channel.id), str(channel.id)))

    def for_interaction(self, interaction: discord.Interaction) -> ThreadKey:
        """The thread a slash command was used in (a thread, a channel or a DM)."""
        return self.for_channel(interaction.guild_id, interaction.channel_id or 0, interaction.channel)

    def for_channel(self, guild_id: int | None, channel_id: int, channel: object | None) -> ThreadKey:
        """The thread of whatever happens in `channel_id` (a thread, a channel or a DM) when no
        message says more: a slash command, a reaction; `channel` is discord.py's, if it has it."""
        if guild_id is None:
            return ThreadKey(PLATFORM, DM_WORKSPACE, str(channel_id), str(channel_id))
        known = self._threads.get(channel_id)
        if known is not None:
            return known
        parent = getattr(channel, "parent_id", None) if _is_thread(channel) else None
        return ThreadKey(PLATFORM, str(guild_id), str(parent or channel_id), str(channel_id))

    def thread_name(self, question: str, user: str) -> str:
        """The name of a thread opened on `question` (1-100 characters, one line)."""
        name = self.config.thread_name.format(question=" ".join(question.split()), user=user).strip()
        return name[:100] or "Question"


def question_text(message: discord.Message, me: int) -> str:
    """The message without the bot's own mention (what the backend is asked)."""
    return re.sub(rf"<@!?{me}>", " ", message.content).strip()


def _to_everyone(message: discord.Message) -> bool:
    """`@everyone` or `@here`: Discord's flag when the author may ping everyone, else the words."""
    return message.mention_everyone or bool(_EVERYONE.search(message.content))


def _is_thread(channel: object) -> bool:
    return isinstance(channel, discord.Thread) or getattr(channel, "type", None) in _THREAD_TYPES
