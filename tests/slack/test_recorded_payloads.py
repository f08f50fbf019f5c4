"""Slack's published payload examples (tests/fixtures/slack), replayed signed to the Events API
endpoint of a running bot: each is answered, ignored on purpose or acknowledged, always with a
200 (anything else makes Slack retry, and too many failures disable the app's events), and
never with a logged error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from botkit.testing import running_bot
from botkit_plugins.slack.testing import BOT_USER

from .conftest import bot_config, post_event, post_interaction

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "slack").glob("*.json"))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_every_recorded_payload_is_answered_ignored_or_acknowledged(fake, tmp_path, caplog, path):
    recorded = json.loads(path.read_text())
    if "bot_user" in recorded:  # the example's own bot user id stands for the bot receiving it
        recorded = json.loads(path.read_text().replace(recorded["bot_user"], BOT_USER))
    payload = recorded["payload"]
    with caplog.at_level(logging.WARNING):
        async with running_bot(bot_config(fake, backend={"answer": "Recorded answer"}), tmp_path) as bot:
            if recorded["kind"] == "interaction":
                status, body = await post_interaction(bot.server.url, payload), ""
            else:
                status, body = await post_event(bot.server.url, payload)
            assert status == 200, body
            if recorded["expect"] == "answered":
                await fake.wait_for(lambda f: any(c.get("text", "").endswith("Recorded answer")  # a file's note above
                                                  for c in f.of("chat.postMessage") + f.of("chat.update")))
            await bot.idle(5)
            asked = [text for _session, text in bot.backends["b"].calls]
    if recorded["expect"] == "answered":
        event = payload["event"]
        assert len(asked) == 1 and asked[0] in event["text"]
        assert all(p["channel"] == event["channel"] for p in fake.of("chat.postMessage"))
    else:
        assert asked == [] and fake.of("chat.postMessage") == []
    if payload["type"] == "url_verification":
        assert payload["challenge"] in body
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in caplog.text and "Unhandled request" not in caplog.text


async def test_the_recorded_assistant_thread_is_offered_prompts_and_answered_under_its_status(fake, tmp_path):
    """Slack's documented `assistant_thread_started`, then the person's `message.im` in that
    thread, as the pane sends them: the prompts are offered, progress is the thread's status (no
    placeholder message), the answer lands in the thread and the status is cleared."""
    started, asked = (json.loads((FIXTURES[0].parent / f"{name}.json").read_text())["payload"]
                      for name in ("assistant_thread_started", "assistant_thread_message"))
    thread = started["event"]["assistant_thread"]
    prompts = [{"title": "Onboarding", "message": "Summarize the onboarding guide"}]
    config = bot_config(fake, slack={"suggested_prompts": prompts}, backend={"answer": "Recorded answer"})
    async with running_bot(config, tmp_path) as bot:
        assert (await post_event(bot.server.url, started))[0] == 200
        await fake.wait_for("assistant.threads.setSuggestedPrompts")
        assert (await post_event(bot.server.url, asked))[0] == 200
        await fake.wait_for(lambda f: any(c.get("text", "").endswith("Recorded answer")
                                          for c in f.of("chat.postMessage")))
        await bot.idle(5)
    where = {"channel_id": thread["channel_id"], "thread_ts": thread["thread_ts"]}
    assert fake.of("assistant.threads.setSuggestedPrompts")[0] == {**where, "prompts": prompts}
    assert [{k: s[k] for k in where} for s in fake.of("assistant.threads.setStatus")] == [where, where]
    assert [s["status"] for s in fake.of("assistant.threads.setStatus")] == ["is thinking…", ""]
    [answer] = fake.of("chat.postMessage")
    assert answer["channel"] == asked["event"]["channel"] == thread["channel_id"]
    assert answer["thread_ts"] == thread["thread_ts"]
