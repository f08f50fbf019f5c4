"""Slack's AI-app features on the real bolt/slack_sdk against the fake: assistant threads
(suggested prompts, the thread status as progress) and deliveries botkit does not use."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from botkit.config import ConfigError, read_config, validate_config
from botkit.events import Done, Failed, Status, TextDelta
from botkit.plugins import load_plugins
from botkit.testing import running_bot
from botkit_plugins.slack.testing import BOT_USER, assistant_thread, block_actions, event_callback, sign

from .conftest import SECRET, bot_config, message, post_event, post_interaction

DM = "D1"
THREAD_TS = "1729999327.187299"
PROMPTS = [{"title": "Reset a password", "message": "How do I reset my password?"},
           {"title": "Refunds", "message": "How long do refunds take?"}]


def question(text: str = "How do I reset my password?", *, ts: str = "1729999340.000100",
             event_id: str = "EvQ1") -> dict[str, Any]:
    """A person's message in the assistant thread: a `message.im` in that thread."""
    return event_callback(message(text, ts=ts, thread_ts=THREAD_TS, channel=DM, kind="message",
                                  channel_type="im"), event_id)


def opened(kind: str = "assistant_thread_started", event_id: str = "EvA1") -> dict[str, Any]:
    return event_callback(assistant_thread(kind, DM, THREAD_TS, context_channel="C1"), event_id)


def statuses(fake) -> list[tuple[str, list[str] | None]]:
    return [(p["status"], p.get("loading_messages")) for p in fake.of("assistant.threads.setStatus")]


async def test_a_new_assistant_thread_gets_the_suggested_prompts_until_a_question_is_asked(fake, tmp_path):
    config = bot_config(fake, slack={"suggested_prompts": PROMPTS, "suggested_prompts_title": "Try asking"},
                        backend={"answer": "Use the reset link."})
    async with running_bot(config, tmp_path) as bot:
        assert (await post_event(bot.server.url, opened()))[0] == 200
        await fake.wait_for("assistant.threads.setSuggestedPrompts")
        # moving to another channel with the pane open, before asking: offered again
        assert (await post_event(bot.server.url, opened("assistant_thread_context_changed", "EvA2")))[0] == 200
        await fake.wait_for("assistant.threads.setSuggestedPrompts", count=2)
        await post_event(bot.server.url, question())
        await fake.wait_for(lambda f: any(m["text"] == "Use the reset link." for m in f.history.get(DM, [])))
        await bot.idle(5)
        # ... and not once a question was asked there
        assert (await post_event(bot.server.url, opened("assistant_thread_context_changed", "EvA3")))[0] == 200
        await bot.idle(5)
    first, second = fake.of("assistant.threads.setSuggestedPrompts")
    assert first == second == {"channel_id": DM, "thread_ts": THREAD_TS, "prompts": PROMPTS, "title": "Try asking"}
    assert len(fake.of("assistant.threads.setSuggestedPrompts", ok=True)) == 2
    assert fake.prompts[(DM, THREAD_TS)] == {"prompts": PROMPTS, "title": "Try asking"}
    assert [text for _, text in bot.backends["b"].calls] == ["How do I reset my password?"]


async def test_without_suggested_prompts_an_opened_thread_is_only_acknowledged(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        assert (await post_event(bot.server.url, opened()))[0] == 200
        await bot.idle(5)
    assert fake.of("assistant.threads.setSuggestedPrompts") == [] and fake.of("chat.postMessage") == []


async def test_over_socket_mode_the_thread_opened_is_acked_and_offered_the_prompts(fake, tmp_path):
    config = bot_config(fake, slack={"app_token": "xapp-test", "signing_secret": None, "suggested_prompts": PROMPTS})
    async with running_bot(config, tmp_path):
        ack = await fake.push(opened(), "env-1")
        await fake.wait_for("assistant.threads.setSuggestedPrompts")
    assert ack == {"envelope_id": "env-1"}
    assert fake.of("assistant.threads.setSuggestedPrompts")[0]["prompts"] == PROMPTS


def test_more_than_four_suggested_prompts_is_a_clear_config_error(tmp_path):
    path = tmp_path / "botkit.yaml"
    prompts = "".join(f"      - {{title: Prompt {n}, message: 'Question {n}?'}}\n" for n in range(5))
    path.write_text("adapters:\n  slack:\n    bot_token: xoxb-1\n    app_token: xapp-1\n"
                    f"    suggested_prompts:\n{prompts}backends:\n  b: {{type: local}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        validate_config(read_config(path), load_plugins())
    assert str(raised.value) == ("botkit.yaml:5: adapters.slack.suggested_prompts: Slack shows at most 4 suggested "
                                 "prompts in an assistant thread, and 5 are given: keep 4 or fewer")


@pytest.mark.parametrize("streaming", ["edits", "native"])
async def test_in_an_assistant_thread_progress_is_the_status_with_the_backends_steps(fake, tmp_path, streaming):
    """No placeholder message: "is thinking…", then each `Status` as the loading message,
    the answer posted (or streamed) once it has text, and the status cleared at the end."""
    async with running_bot(bot_config(fake, slack={"streaming": streaming}), tmp_path) as bot:
        bot.backends["b"].steps = steps = asyncio.Queue()
        await post_event(bot.server.url, opened())
        await post_event(bot.server.url, question())
        await fake.wait_for(lambda f: statuses(f) == [("is thinking…", None)])
        await steps.put(Status("Searching the knowledge base"))
        await fake.wait_for(lambda f: len(statuses(f)) == 2)
        await steps.put(Status("Calling lookup_account"))
        await fake.wait_for(lambda f: len(statuses(f)) == 3)
        assert fake.statuses[(DM, THREAD_TS)] == {"status": "is thinking…",
                                                   "loading_messages": ["Calling lookup_account"]}
        assert fake.of("chat.postMessage") == fake.of("chat.startStream") == []  # nothing posted yet
        for event in (TextDelta("Open Settings, "), TextDelta("then Reset. "), Done()):
            await steps.put(event)
        await bot.idle(5)
    assert statuses(fake) == [("is thinking…", None), ("is thinking…", ["Searching the knowledge base"]),
                              ("is thinking…", ["Calling lookup_account"]), ("", None)]
    assert fake.statuses == {}
    if streaming == "native":
        [start] = fake.of("chat.startStream")
        assert start["thread_ts"] == THREAD_TS and start["recipient_user_id"] == "U1"
        assert fake.of("chat.stopStream", ok=True) and fake.of("chat.postMessage") == []
    else:
        [post] = fake.of("chat.postMessage")
        assert post["channel"] == DM and post["thread_ts"] == THREAD_TS and "Open Settings" in post["text"]
    [answer] = [m for m in fake.history[DM] if m.get("bot_id")]
    assert answer["text"].strip() == "Open Settings, then Reset."
    # the status is cleared after the final answer landed, never before
    clear = max(i for i, c in enumerate(fake.calls) if c.method == "assistant.threads.setStatus")
    assert all(c.method != "chat.update" and c.method != "chat.stopStream" for c in fake.calls[clear:])


async def test_a_failed_answer_clears_the_status_and_says_so(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        bot.backends["b"].steps = steps = asyncio.Queue()
        await post_event(bot.server.url, opened())
        await post_event(bot.server.url, question())
        await steps.put(Status("Searching the knowledge base"))
        await fake.wait_for(lambda f: len(statuses(f)) == 2)
        await steps.put(Failed("the search service is down"))
        await bot.idle(5)
    assert statuses(fake)[-1] == ("", None) and fake.statuses == {}
    [post] = fake.of("chat.postMessage")
    assert "the search service is down" in post["text"] and post["thread_ts"] == THREAD_TS


async def test_outside_assistant_threads_a_status_still_shows_in_the_placeholder(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        bot.backends["b"].steps = steps = asyncio.Queue()
        await post_event(bot.server.url, event_callback(message(f"<@{BOT_USER}> hi"), "Ev1"))
        await fake.wait_for("chat.postMessage")
        await steps.put(Status("Searching the knowledge base"))
        await fake.wait_for(lambda f: any(u["text"] == "Searching the knowledge base" for u in f.of("chat.update")))
        for event in (TextDelta("Hello."), Done()):
            await steps.put(event)
        await bot.idle(5)
    assert fake.of("assistant.threads.setStatus") == []
    assert fake.of("chat.update")[-1]["text"] == "Hello."


# -- deliveries botkit does not use are acknowledged ---------------------------------------------

UNUSED_EVENTS = [
    {"type": "app_home_opened", "user": "U1", "channel": DM, "tab": "home", "event_ts": "1.2"},
    {"type": "member_joined_channel", "user": "U2", "channel": "C1", "channel_type": "C", "team": "T111"},
    {"type": "channel_created", "channel": {"id": "C9", "name": "new", "created": 1, "creator": "U1"}},
    {"type": "team_join", "user": {"id": "U9", "name": "newbie"}},
    {"type": "user_change", "user": {"id": "U1", "name": "alice"}},
    {"type": "app_uninstalled"},
    {"type": "reaction_removed", "user": "U1", "reaction": "+1", "item": {"type": "message", "channel": "C1",
                                                                        "ts": "1.2"}},
    {"type": "message", "subtype": "message_changed", "channel": "C1", "hidden": True, "ts": "1.3",
     "message": {"type": "message", "user": "U1", "text": "edited", "ts": "1.2"}},
    {"type": "pin_added", "user": "U1", "channel_id": "C1", "item": {}},
    {"type": "a_future_event_slack_adds_later", "something": {"nested": [1, 2]}},
]

UNUSED_INTERACTIONS = [
    {"type": "shortcut", "callback_id": "someone_elses", "trigger_id": "1.2", "user": {"id": "U1"},
     "team": {"id": "T111"}},
    {"type": "message_action", "callback_id": "other", "trigger_id": "1.2", "user": {"id": "U1"},
     "team": {"id": "T111"}, "channel": {"id": "C1"}, "message": {"ts": "1.2", "text": "x"}},
    {"type": "view_submission", "user": {"id": "U1"}, "team": {"id": "T111"},
     "view": {"id": "V1", "type": "modal", "callback_id": "other_modal", "state": {"values": {}}}},
    {"type": "view_closed", "user": {"id": "U1"}, "team": {"id": "T111"}, "view": {"id": "V1", "type": "modal", "callback_id": "x"}},
    block_actions("another_apps_button", "v", channel="C1", message_ts="1.2"),
]


async def test_every_event_botkit_does_not_use_is_acknowledged_with_200(fake, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        async with running_bot(bot_config(fake), tmp_path) as bot:
            for n, event in enumerate(UNUSED_EVENTS):
                status, body = await post_event(bot.server.url, event_callback(event, f"EvU{n}"))
                assert status == 200, (event["type"], body)
            for payload in UNUSED_INTERACTIONS:
                assert await post_interaction(bot.server.url, payload) == 200, payload["type"]
            # a slash command the app does not handle (a form, like Slack posts it)
            body = "command=%2Fsomething&text=x&team_id=T111&channel_id=C1&user_id=U1&trigger_id=1.2"
            async with aiohttp.ClientSession() as session:
                async with session.post(bot.server.url + "/slack/events", data=body, headers=sign(
                        body, SECRET, content_type="application/x-www-form-urlencoded")) as resp:
                    assert resp.status == 200
            await bot.idle(5)
            asked = bot.backends["b"].calls
    assert asked == [] and fake.of("chat.postMessage") == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_over_socket_mode_every_delivery_botkit_does_not_use_is_acked(fake, tmp_path):
    config = bot_config(fake, slack={"app_token": "xapp-test", "signing_secret": None})
    async with running_bot(config, tmp_path) as bot:
        for n, event in enumerate(UNUSED_EVENTS):
            assert (await fake.push(event_callback(event, f"EvU{n}"), f"env-e{n}"))["envelope_id"] == f"env-e{n}"
        for n, payload in enumerate(UNUSED_INTERACTIONS):
            ack = await fake.push(payload, f"env-i{n}", kind="interactive")
            assert ack["envelope_id"] == f"env-i{n}"
        await bot.idle(5)
        assert bot.backends["b"].calls == []


def test_the_manifest_enables_the_assistant_with_its_scopes_and_events():
    import yaml
    from importlib.resources import files

    manifest = yaml.safe_load(files("botkit_plugins.slack").joinpath("manifest.yaml").read_text())
    assert "assistant_description" in manifest["features"]["assistant_view"]
    assert {"assistant:write", "chat:write", "im:history"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert json.dumps(manifest)  # plain data Slack's manifest editor takes
