"""Feedback: vote normalisation, the prompt note, votes from platform events and messages, export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import Any

import pytest

from botkit.adapters import Surface
from botkit.events import Draft
from botkit.testing import running_bot

from botkit_plugins.feedback import FeedbackConfig, message_vote, normalize, submit_feedback
from botkit_plugins.feedback.export import COLUMNS, write
from botkit_plugins.feedback.middleware import Feedback
from botkit_plugins.feedback.votes import Votes


@pytest.mark.parametrize(("raw", "value"), [
    ("+1", "up"), ("+1::skin-tone-3", "up"), ("👍", "up"), ("👍🏽", "up"), ("thumbsup", "up"), ("like", "up"),
    (True, "up"), ("-1", "down"), ("👎", "down"), (" :thumbsdown: ", "down"), (False, "down"),
    ("heart", None), ("what about proxies?", None), ("", None),
])
def test_normalize(raw, value) -> None:
    assert normalize(raw) == value


@pytest.mark.parametrize(("text", "value"), [
    ("👍", "up"), (" -1 ", "down"), (":thumbsdown:", "down"), ("👎🏻", "down"),
    ("no", None), ("yes", None), ("like this?", None),
])
def test_message_vote_takes_only_unmistakable_tokens(text, value) -> None:
    assert message_vote(text) == value


def test_prompt_note_only_on_complete_final_answers() -> None:
    mw = Feedback(FeedbackConfig(prompt="Rate me"), bot=None)  # type: ignore[arg-type]
    surface = Surface("p", "a", "slack", 4000)
    final = Draft(text="answer", final=True)
    mw.botkit_render(final, surface)
    assert [(n.kind, n.text) for n in final.notes] == [("feedback", "Rate me")]
    for draft in (Draft(text="answer"), Draft(text="partial", final=True, failed="backend failed"),
                  Draft(text="", final=True)):
        mw.botkit_render(draft, surface)
        assert draft.notes == []


ROWS = [{"at": 1.5, "event_id": "ev1", "thread": "p:w:c:t", "adapter": "rec", "backend": "b", "user": "u2",
         "value": "down", "comment": 'wrong, "old" version', "question": "q?", "answer": "a\nb", "score": None,
         "extra": "not exported"}]


def test_export_csv_and_jsonl() -> None:
    out = io.StringIO()
    assert write(ROWS, out, "csv") == 1
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(row) == COLUMNS
    assert row["comment"] == 'wrong, "old" version' and row["answer"] == "a\nb" and row["value"] == "down"
    out = io.StringIO()
    write(ROWS, out, "jsonl")
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == {k: ROWS[0][k] for k in COLUMNS}


# -- through the real dispatcher ------------------------------------------------------------


async def votes(bot) -> dict[str, dict[str, Any]]:
    """What the store holds, by user."""
    return {row["user"]: row for row in await Votes(bot.store).list()}


CONFIG = {"adapters": {"rec": {"type": "recording", "markup": "plain"}},
          "backends": {"b": {"type": "fake", "answer": "the answer"}},
          "middlewares": {"feedback": {}}}


async def answered(bot) -> str:
    rec = bot.adapters["rec"]
    await rec.inject("question?", event_id="ev1")
    await bot.idle(5)
    return rec.order[-1]


async def test_reaction_from_a_platform_event_is_recorded(tmp_path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        rec = bot.adapters["rec"]
        message_id = await answered(bot)
        assert rec.texts()[-1] == "the answer\n\nWas this helpful? Reply 👍 or 👎."
        thread = rec.thread()
        assert await submit_feedback(bot, thread, message_id, "u2", "+1")
        assert not await submit_feedback(bot, thread, "m-unknown", "u2", "+1")
        assert not await submit_feedback(bot, thread, message_id, "u2", "heart")
        assert (await votes(bot))["u2"]["value"] == "up"
        # a 👎 without a comment asks for one, in the thread
        assert await submit_feedback(bot, thread, message_id, "u3", "thumbsdown")
        await rec.wait_for(lambda: "What was wrong" in rec.texts()[-1])
        u3 = (await votes(bot))["u3"]
        assert (u3["event_id"], u3["value"], u3["comment"]) == ("ev1", "down", None)
        assert await submit_feedback(bot, thread, message_id, "u4", "-1", comment="outdated")
        assert (await votes(bot))["u4"]["comment"] == "outdated"


async def test_votes_and_comments_given_as_messages(tmp_path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("👎", event_id="ev0")  # nothing answered yet: an ordinary question
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["👎"]
        await rec.inject("question?", event_id="ev1")
        await bot.idle(5)
        await rec.inject("👎", user="u2", event_id="ev2")
        await bot.idle(5)
        assert "What was wrong" in rec.texts()[-1]
        await rec.inject("feedback: the version is outdated", user="u2", event_id="ev3")
        await bot.idle(5)
        assert rec.texts()[-1] == "Thanks for the feedback!"
        u2 = (await votes(bot))["u2"]
        assert (u2["event_id"], u2["value"], u2["comment"]) == ("ev1", "down", "the version is outdated")
        assert len(bot.backends["b"].calls) == 2  # votes and comments never reach the backend


async def test_feedback_off_when_not_configured(tmp_path) -> None:
    config = {**CONFIG, "middlewares": {}}
    async with running_bot(config, tmp_path) as bot:
        message_id = await answered(bot)
        assert "helpful" not in bot.adapters["rec"].texts()[-1]
        assert not await submit_feedback(bot, bot.adapters["rec"].thread(), message_id, "u2", "+1")


async def test_feedback_lands_in_the_real_store_and_export(tmp_path) -> None:
    from botkit.cli import main

    async with running_bot(CONFIG, tmp_path) as bot:
        message_id = await answered(bot)
        assert await submit_feedback(bot, bot.adapters["rec"].thread(), message_id, "u2", "-1", comment="old")
    out = tmp_path / "feedback.jsonl"
    assert await asyncio.to_thread(main, ["feedback", "export", "-c", str(tmp_path / "config.yaml"),
                                          "--format", "jsonl", "-o", str(out)]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["event_id"], row["user"], row["value"], row["comment"]) == ("ev1", "u2", "down", "old")
    assert row["question"] == "question?" and row["answer"] == "the answer"


def test_export_command_is_registered_with_the_cli() -> None:
    from botkit.cli import build_parser
    from botkit.plugins import load_plugins

    from botkit_plugins.feedback.export import export

    before = time.time()
    args = build_parser(load_plugins()).parse_args(["feedback", "export", "--format", "jsonl", "--since", "7d"])
    assert (args.func, args.format, args.output) == (export, "jsonl", "-")
    assert before - 7 * 86400 - 1 <= args.since <= time.time() - 7 * 86400  # a duration, like sessions --since


async def test_a_reaction_from_any_adapter_lands_in_the_store(tmp_path) -> None:
    async with running_bot(CONFIG, tmp_path) as bot:
        message_id = await answered(bot)
        rec = bot.adapters["rec"]
        await bot.plugins.reaction(adapter=rec, thread=rec.thread(), message_id=message_id, user="u3", reaction="+1")
        await bot.plugins.reaction(adapter=rec, thread=rec.thread(), message_id=message_id, user="u4",
                                   reaction="tada")  # not a vote
        rows = await Votes(bot.store).list()
    assert [(r["user"], r["value"]) for r in rows] == [("u3", "up")]
