"""Discord gateway dispatches written from Discord's documentation examples
(tests/fixtures/discord), sent by the fake gateway to a running bot: each is answered, ignored on
purpose or acknowledged, and none logs an error. A gateway event has no acknowledgement to
look at, so a mention sent after it (events are handled in order) tells when it was handled."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from botkit_plugins.discord import testing

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "discord").glob("*.json"))
ANSWER = "Recorded answer"


def _replayed(path: Path) -> dict:
    """The fixture with the example's ids replaced by the fake Discord's (its guild, channels, bot)."""
    text = path.read_text()
    for example_id, name in json.loads(text)["ids"].items():
        text = text.replace(example_id, getattr(testing, name))
    return json.loads(text)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_every_recorded_dispatch_is_answered_ignored_or_acknowledged(fake, discord_bot, caplog, path):
    recorded = _replayed(path)
    answered = recorded["expect"] == "answered"
    with caplog.at_level(logging.WARNING):
        async with discord_bot({"answer": ANSWER}) as bot:
            for event in recorded["payload"]:
                await fake.dispatch(event["t"], event["d"])
            sentinel = fake.message(testing.OTHER_CHANNEL_ID, f"<@{testing.BOT_ID}> sentinel?", mentions_bot=True)
            await fake.dispatch("MESSAGE_CREATE", sentinel)
            calls = bot.backends["b"].calls
            await fake.wait_until(lambda: len(calls) == 1 + answered and calls[-1][1] == "sentinel?"
                                  or len(calls) > 1 + answered)
            await bot.idle(10)
    questions = [text for _session, text in calls]
    if answered:
        assert len(questions) == 2 and questions[1] == "sentinel?", questions
        asked = next(e["d"] for e in recorded["payload"] if e["t"] in ("MESSAGE_CREATE", "INTERACTION_CREATE"))
        expected = asked["content"] if "content" in asked else asked["data"]["options"][0]["value"]
        assert questions[0] in expected
        shown = [c for c in fake.calls if c.method in ("POST", "PATCH") and isinstance(c.json, dict)
                 and str(c.json.get("content")).endswith(ANSWER)]  # a file's note may stand above
        assert len(shown) >= 2  # the recorded question's answer and the sentinel's
    else:
        assert questions == ["sentinel?"]
    interaction = next((e["d"] for e in recorded["payload"] if e["t"] == "INTERACTION_CREATE"), None)
    if interaction is not None:  # every interaction gets its callback, within Discord's 3 s
        assert fake.requests("POST", f"/interactions/{interaction['id']}/")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in caplog.text
