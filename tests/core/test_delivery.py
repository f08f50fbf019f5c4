"""How answers reach a platform (issue 15): a platform that cannot edit gets each answer once,
complete; the progress post waits out a 429 like an edit, unless the answer comes first;
observers (metrics) hear of every post, edit and 429."""

from __future__ import annotations

import asyncio

from botkit.testing import running_bot

ANSWER = "The first part of the answer, then the second part, then the end."


def config(backend: dict, **recording) -> dict:
    return {"adapters": {"rec": {"type": "recording", **recording}},
            "backends": {"b": {"type": "fake", "answer": ANSWER, **backend}},
            "dispatch": {"progress_delay": 0}}


class Heard:
    """A delivery observer that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def delivered(self, adapter, *, sent: bool, final: bool) -> None:
        self.events.append(("post" if sent else "edit", final))

    def rate_limited(self, adapter, retry_after: float) -> None:
        self.events.append(("429", retry_after))


async def test_a_platform_that_cannot_edit_gets_the_answer_once_complete(tmp_path):
    async with running_bot(config({"chunks": 4, "delay": 0.05}, can_edit=False), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("question?")
        await bot.idle(5)
    assert [(kind, message.final) for kind, _, message in rec.calls] == [("send", True)]
    assert rec.texts() == [ANSWER]


async def test_a_long_answer_on_a_platform_that_cannot_edit_is_several_posts(tmp_path):
    async with running_bot(config({"chunks": 5, "delay": 0.02}, can_edit=False, max_length=40), tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("question?")
        await bot.idle(5)
    assert {kind for kind, _, _ in rec.calls} == {"send"} and len(rec.calls) >= 2
    assert " ".join(text.strip() for text in rec.texts()) == ANSWER


async def test_a_rate_limited_progress_post_is_tried_again(tmp_path):
    async with running_bot(config({"chunks": 2, "delay": 0.5}), tmp_path) as bot:
        heard = Heard()
        bot.deliveries.append(heard)
        rec = bot.adapters["rec"]
        rec.fail_next = [0.05]  # the placeholder's first post
        await rec.inject("question?")
        await bot.idle(5)
    kinds = [kind for kind, _, _ in rec.calls]
    assert kinds[0] == "send" and not rec.calls[0][2].text  # the placeholder, after its 429
    assert "edit" in kinds and rec.texts() == [ANSWER]  # the answer edited into it
    assert heard.events[:2] == [("429", 0.05), ("post", False)] and heard.events[-1] == ("edit", True)


async def test_an_answer_does_not_wait_for_a_rate_limited_progress_post(tmp_path):
    async with running_bot(config({"chunks": 1, "delay": 0.1}), tmp_path) as bot:
        rec = bot.adapters["rec"]
        rec.fail_next = [30.0]  # the placeholder is refused for long
        started = asyncio.get_running_loop().time()
        await rec.inject("question?")
        await bot.idle(5)
        took = asyncio.get_running_loop().time() - started
    assert took < 5
    assert [(kind, message.final) for kind, _, message in rec.calls] == [("send", True)]  # no placeholder left
    assert rec.texts() == [ANSWER]


async def test_one_message_holds_an_answer_up_to_four_characters_under_the_platforms_limit(tmp_path):
    """The margin the renderer keeps below `max_length` holds for an answer with no notes too
    (which skips sorting notes)."""
    for max_length, posts in ((len(ANSWER) + 4, 1), (len(ANSWER) + 3, 2)):
        backend = {"chunks": 1, "delay": 0.0}
        folder = tmp_path / str(posts)
        folder.mkdir()
        async with running_bot(config(backend, can_edit=False, max_length=max_length), folder) as bot:
            rec = bot.adapters["rec"]
            await rec.inject("question?")
            await bot.idle(5)
        assert len(rec.calls) == posts, (max_length, rec.texts())
        assert " ".join(text.strip() for text in rec.texts()) == ANSWER
