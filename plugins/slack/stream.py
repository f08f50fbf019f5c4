"""Native streaming (chat.startStream / appendStream / stopStream), falling back to edits.

The renderer hands the adapter the whole answer every time; a stream only appends, so
the part not streamed yet is what follows the text already sent (kept in the
MessageRef, so it survives between calls). Non-final updates hold back the last
unfinished word: a `botkit_render` hook may still rewrite it (a half-written `[1`
becomes a link), and streamed text cannot be taken back. When the stream cannot go on
(the method is missing, `message_not_in_streaming_state`, a stream past its ~5
minutes, text that is no longer an extension of what was streamed), the stream is
stopped and the same message is edited with the full text from then on, so nothing
is lost or repeated. That holds for the last update too: when stopping the stream with
the notes fails (expired, or its blocks refused), the full answer and its notes, feedback
buttons included (Block Kit ones), go in by `chat.update`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.adapters import MessageRef, Outgoing, RateLimited, Undeliverable
from botkit.events import ThreadKey
from botkit_plugins.slack.layout import layout, note_blocks, pieces, to_markdown

log = logging.getLogger("botkit.slack")

#: markdown_text characters one stream call may carry
STREAM_CALL_MAX = 12_000
#: errors that mean this workspace or token cannot stream at all
_UNAVAILABLE = {"unknown_method", "not_allowed_token_type", "missing_scope", "feature_not_enabled"}


#: Web API errors no retry changes: the channel or message is gone, the bot was removed or
#: lost its token or scope, the message is refused as it is
REFUSED = frozenset({"channel_not_found", "not_in_channel", "is_archived", "message_not_found",
                     "cant_update_message", "edit_window_closed", "msg_too_long", "restricted_action",
                     "account_inactive", "invalid_auth", "token_revoked", "not_authed", "missing_scope",
                     "no_permission", "team_access_not_granted"})


class SlackRefused(SlackApiError, Undeliverable):
    """A Web API error in `REFUSED`: the renderer does not try the message again."""


async def slack_call(method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
    """Call a Web API method; a 429 slack_sdk did not absorb becomes `RateLimited`, an error
    no retry changes `SlackRefused` (still a `SlackApiError`)."""
    try:
        return await method(**kwargs)
    except SlackApiError as exc:
        if exc.response.status_code == 429:
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            raise RateLimited(float(retry_after or 1.0)) from exc
        if exc.response.get("error") in REFUSED:
            raise SlackRefused(str(exc), exc.response) from exc
        raise


def _settled(text: str) -> str:
    """`text` up to its last whitespace: the part later renders will not rewrite."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut + 1]


class NativeStreams:
    """Starts and feeds native streams for one Web API client."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.available = hasattr(client, "chat_startStream")

    async def start(self, thread: ThreadKey, thread_ts: str, message: Outgoing, team: str | None,
                    user: str | None) -> MessageRef | None:
        """Open a stream in `thread_ts` for `user`; None when streaming is not possible here."""
        if not self.available:
            return None
        text = self._streamable(message)
        first = pieces(text, STREAM_CALL_MAX)[0] if text else ""
        try:
            resp = await slack_call(self.client.chat_startStream, channel=thread.channel, thread_ts=thread_ts,
                                    markdown_text=first or None,
                                    recipient_team_id=team, recipient_user_id=user)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in _UNAVAILABLE:
                self.available = False
            log.warning("slack: native streaming unavailable (%s), answering by edits", error)
            return None
        ref = MessageRef(thread, resp["ts"], {"channel": resp.get("channel") or thread.channel,
                                              "ts": resp["ts"], "mode": "stream",
                                              "streamed": first})
        if message.final or len(text) > len(first):
            await self.edit(ref, message)
        return ref

    @staticmethod
    def _streamable(message: Outgoing) -> str:
        text = to_markdown(message.text)
        return text if message.final else _settled(text)

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        """Append what is new; on the final update stop the stream with the notes as blocks."""
        text, streamed = self._streamable(message), ref.data["streamed"]
        channel, ts = ref.data["channel"], ref.data["ts"]
        if text.startswith(streamed):
            try:
                for piece in pieces(text[len(streamed):], STREAM_CALL_MAX):
                    await slack_call(self.client.chat_appendStream, channel=channel, ts=ts, markdown_text=piece)
                    ref.data["streamed"] += piece
                if message.final:  # the notes as blocks; feedback as Slack's own buttons for AI answers
                    await slack_call(self.client.chat_stopStream, channel=channel, ts=ts,
                                     blocks=note_blocks(message.notes, native_feedback=True) or None)
                    ref.data["mode"] = "edit"
                return
            except SlackApiError as exc:
                log.info("slack: stream %s cannot go on (%s), continuing by edits", ts, exc.response.get("error"))
        else:
            log.info("slack: answer in stream %s was rewritten, continuing by edits", ts)
        await self._to_edits(ref, message)

    async def _to_edits(self, ref: MessageRef, message: Outgoing) -> None:
        """Stop the stream (if it still runs) and make the message read the full answer."""
        ref.data["mode"] = "edit"
        try:
            await slack_call(self.client.chat_stopStream, channel=ref.data["channel"], ts=ref.data["ts"])
        except (SlackApiError, RateLimited) as exc:
            log.debug("slack: stopping stream %s: %s", ref.data["ts"], exc)
        text, blocks = layout(message)
        await slack_call(self.client.chat_update, channel=ref.data["channel"], ts=ref.data["ts"],
                         text=text, blocks=blocks)
