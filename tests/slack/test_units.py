"""The Slack plugin's pure parts: config, lazy import, layout, mention handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

import botkit_plugins.slack

from botkit.adapters import Outgoing
from botkit.events import Note
from botkit_plugins.slack import SlackConfig
from botkit_plugins.slack.layout import layout, note_blocks, pieces, to_markdown
from botkit_plugins.slack.mentions import Resolver, mentioned_users, strip_mention


def test_importing_the_plugin_does_not_import_slack_libraries():
    code = ("import sys, botkit, botkit_plugins.slack; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_transport_follows_the_tokens_and_requires_its_secret():
    assert SlackConfig(bot_token="xoxb-1", signing_secret="s").transport == "http"
    assert SlackConfig(bot_token="xoxb-1", app_token="xapp-1").transport == "socket"
    with pytest.raises(ValidationError, match="signing_secret"):
        SlackConfig(bot_token="xoxb-1")
    with pytest.raises(ValidationError, match="app_token"):
        SlackConfig(bot_token="xoxb-1", signing_secret="s", mode="socket")
    with pytest.raises(ValidationError, match="extra"):
        SlackConfig(bot_token="xoxb-1", signing_secret="s", bot_tokn="x")


def test_secrets_stay_out_of_reprs():
    config = SlackConfig(bot_token="xoxb-very-secret", signing_secret="sign-very-secret", app_token="xapp-very-secret")
    assert "very-secret" not in repr(config) and "very-secret" not in str(config.model_dump())


def test_answer_goes_in_a_markdown_block_and_notes_in_context_blocks():
    message = Outgoing("See <https://a.example/x|[1]> **now**",
                       [Note("above it", placement="above"), Note("*Sources*\n• <https://a.example/x|Doc>")])
    text, blocks = layout(message)
    assert [b["type"] for b in blocks] == ["context", "markdown", "context"]
    assert blocks[1]["text"] == "See [[1]](https://a.example/x) **now**"
    assert blocks[2]["elements"] == [{"type": "mrkdwn", "text": "*Sources*\n• <https://a.example/x|Doc>"}]
    assert text.startswith("above it") and "Doc" in text


def test_status_shows_until_text_arrives_and_text_is_never_empty():
    assert layout(Outgoing("", status="_thinking…_"))[1] == [{"type": "markdown", "text": "_thinking…_"}]
    assert layout(Outgoing(""))[0].strip() == "" and layout(Outgoing(""))[0]


def test_long_notes_respect_context_limits():
    long_note = Note("\n".join(f"line {n} " + "x" * 90 for n in range(400)))
    blocks = note_blocks([long_note])
    elements = [e for b in blocks for e in b["elements"]]
    assert all(len(b["elements"]) <= 10 for b in blocks) and all(len(e["text"]) <= 3000 for e in elements)
    assert "".join(e["text"] for e in elements) == long_note.text


def test_pieces_prefer_line_ends():
    assert pieces("aaaa\nbbbb\ncc", 6) == ["aaaa\n", "bbbb\n", "cc"]
    assert pieces("x" * 13, 5) == ["xxxxx", "xxxxx", "xxx"]
    assert to_markdown("<mailto:a@b.c|mail> <@U1>") == "[mail](mailto:a@b.c) <@U1>"


def test_bot_mention_is_stripped_anywhere_and_other_mentions_listed():
    assert strip_mention("<@UBOT> hi <@U2>", "UBOT") == "hi <@U2>"
    assert strip_mention("hey <@UBOT|botkit>, help", "UBOT") == "hey , help"
    assert mentioned_users("<@U2> and <@U3|c> and <@U2>") == ("U2", "U3")


async def test_resolver_caches_names_and_falls_back_to_ids():
    asked: list[str] = []

    async def users(uid: str) -> str | None:
        asked.append(uid)
        if uid == "UGONE":
            raise RuntimeError("user_not_found")
        return {"U2": "bob"}.get(uid)

    async def channels(cid: str) -> str | None:
        return "general"

    resolver = Resolver(users, channels)
    text = await resolver.resolve("<@U2> <@U2> <@UGONE> <#C1> <!here> <!subteam^S1|@devs> &lt;tag&gt; <https://x.y>")
    assert text == "@bob @bob @UGONE #general @here @devs <tag> https://x.y"
    assert asked == ["U2", "UGONE"]


def test_the_app_manifest_subscribes_to_what_the_adapter_handles():
    manifest = yaml.safe_load((Path(botkit_plugins.slack.__file__).parent / "manifest.yaml").read_text())
    settings = manifest["settings"]
    assert {"app_mention", "message.im", "message.channels", "reaction_added"} <= set(
        settings["event_subscriptions"]["bot_events"])
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"] is True
    assert {"app_mentions:read", "chat:write", "im:history", "users:read", "reactions:read"} <= set(
        manifest["oauth_config"]["scopes"]["bot"])


def test_the_feedback_note_is_two_buttons_not_its_text():
    notes = [Note("Sources: x"), Note("Was this helpful? Reply 👍 or 👎.", kind="feedback")]
    message = Outgoing("the answer", notes, final=True)
    text, blocks = layout(message)
    assert [b["type"] for b in blocks] == ["markdown", "context", "actions"]
    buttons = blocks[-1]["elements"]
    assert [(b["type"], b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("button", "botkit_feedback_up", "up", "👍"), ("button", "botkit_feedback_down", "down", "👎")]
    assert "helpful" not in text and "Sources: x" in text
    assert note_blocks(message.notes)[-1] == blocks[-1]  # a native stream ends with the same buttons
