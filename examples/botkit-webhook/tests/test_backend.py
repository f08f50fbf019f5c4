"""The jsonqa backend, asked through botkit's recording adapter."""

import json

import pytest

from botkit import Question, Session, Sources, TextDelta, ThreadKey
from botkit.bot import StartupError

FAQ = [
    {"question": "How long do refunds take?", "answer": "Refunds take five working days.",
     "source": {"title": "Refund policy", "url": "https://example.com/refunds"}},
    {"question": "Where is my invoice?", "answer": "Invoices are under Billing, then History."},
]


@pytest.fixture
def faq(tmp_path):
    (tmp_path / "faq.json").write_text(json.dumps(FAQ))
    return {"qa": {"type": "jsonqa", "path": "faq.json"}}  # relative: to the config file's folder


async def test_the_closest_question_is_answered_with_its_source(botkit_recording, faq):
    rec = await botkit_recording(backends=faq)
    await rec.inject("how long do refunds take for a broken phone?")
    await rec.bot.idle(5)
    assert rec.texts() == ["Refunds take five working days. [1]"]
    [source] = rec.messages[rec.order[-1]].sources
    assert (source.index, source.title, source.url) == (1, "Refund policy", "https://example.com/refunds")


async def test_an_unknown_question_gets_the_not_found_answer_without_sources(botkit_recording, faq):
    rec = await botkit_recording(backends=faq)
    await rec.inject("what is the meaning of life?")
    await rec.bot.idle(5)
    assert rec.texts() == ["Sorry, I don't know that one."]


async def test_the_answer_streams_in_chunks(botkit_recording, faq):
    rec = await botkit_recording(backends=faq)
    backend = rec.bot.backends["qa"]
    events = [e async for e in backend.stream(Session(ThreadKey("test", "w", "c", "t"), "qa"),
                                              Question("where is my invoice", "u1"))]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "Invoices are under Billing, then History."
    assert not [e for e in events if isinstance(e, Sources)]  # this pair names no source


async def test_a_missing_file_stops_the_start_with_its_path(botkit_recording, tmp_path):
    with pytest.raises(StartupError, match=r"backend 'qa' could not start: cannot read .*nowhere\.json"):
        await botkit_recording(backends={"qa": {"type": "jsonqa", "path": "nowhere.json"}})


async def test_a_file_of_another_shape_is_named_with_the_problem(botkit_recording, tmp_path):
    (tmp_path / "faq.json").write_text(json.dumps([{"question": "only a question"}]))
    with pytest.raises(StartupError, match=r"faq\.json is not a list of question/answer pairs: 0\.answer"):
        await botkit_recording(backends={"qa": {"type": "jsonqa", "path": "faq.json"}})
