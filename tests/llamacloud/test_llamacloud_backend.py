"""The LlamaCloud backend against a loopback fake of the index chat API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from botkit.backends import Question, Session
from botkit.events import Done, Failed, SessionInfo, Sources, Status, TextDelta, ThreadKey, Warning
from botkit_plugins.llamacloud import LlamaCloudConfig
from botkit_plugins.llamacloud.backend import LlamaCloudBackend
from botkit_plugins.llamacloud.fake import ANSWER, FakeLlamaCloud

FIXTURES = Path(__file__).with_name("fixtures")
THREAD = ThreadKey("teams", "tenant-1", "19:conv", "root-1")
INDEXES = ["idx-abc123", "idx-def456"]
PROJECT = "0b0e6a52-8d5e-4f39-9a3b-2f6c3f1e9d11"


@pytest.fixture
async def fake():
    async with FakeLlamaCloud() as server:
        yield server


def make_backend(fake, **extra):
    config = LlamaCloudConfig(**{"base_url": fake.url, "api_key": "llx-test-key", "index_ids": INDEXES,
                                 "project_id": PROJECT, **extra})
    return LlamaCloudBackend("reports", config, SimpleNamespace(backends={}))


@pytest.fixture
async def backend(fake):
    backend = make_backend(fake)
    yield backend
    await backend.close()


async def ask(backend, session, text="What were the main findings in Q3?"):
    return [e async for e in backend.stream(session, Question(text=text, user="U1"))]


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_thread_is_one_chat_session(fake, backend):
    session = Session(THREAD, "reports")
    first = await ask(backend, session)
    assert isinstance(first[0], SessionInfo)
    session.session_id = first[0].session_id
    second = await ask(backend, session, "And Q4?")
    assert not any(isinstance(e, SessionInfo) for e in second)

    [created] = fake.calls("POST", "/api/v1/chat")[:1]
    assert created.path == "/api/v1/chat" and created.json == {"index_ids": INDEXES}
    streams = fake.calls("POST", "/messages/stream")
    assert [r.path for r in streams] == [f"/api/v1/chat/{session.session_id}/messages/stream"] * 2
    assert streams[1].json == {"index_ids": INDEXES, "prompt": "And Q4?", "require_all_indexes": False}
    assert all(r.headers["Authorization"] == "Bearer llx-test-key" for r in fake.requests)
    assert all(r.query == {"project_id": PROJECT} for r in fake.requests)
    assert len(fake.sessions) == 1
    for events in (first, second):
        assert text_of(events) == ANSWER
        assert isinstance(events[-1], Done) and events[-1].usage["total_output_tokens"] == 214


async def test_fixture_stream_thinking_and_tools_are_progress_only(fake, backend):
    fake.streams.append((FIXTURES / "llamacloud_chat_stream.sse").read_bytes())
    events = await ask(backend, Session(THREAD, "reports", session_id=fake.add_session(INDEXES)))
    statuses = [e.text for e in events if isinstance(e, Status)]
    assert statuses == ["Thinking…", "Searching for “Q3 main findings”…", "Reading q3_report.pdf…"]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Q3 revenue grew 12% year over year",
                      ", driven by enterprise subscriptions (q3_report.pdf, p. 2)."]
    assert "search the bound indexes" not in text_of(events) and "retrieve" not in text_of(events)
    [sources] = [e.sources for e in events if isinstance(e, Sources)]
    assert [(s.index, s.title, s.doc_id, s.score, s.metadata["page"]) for s in sources] == [
        (1, "q3_report.pdf", "dfl-1b2c3d", 0.81, 2)]
    assert sources[0].snippet.startswith("Q3 revenue grew 12%")
    assert events[-1] == Done({"total_input_tokens": 5123, "total_output_tokens": 214, "turns": 2,
                               "duration_ms": 6234.5})


@pytest.mark.parametrize("event_names, space, crlf", [(True, True, False), (True, False, True),
                                                      (False, True, True), (False, False, False)])
async def test_any_framing_gives_the_same_answer(fake, backend, event_names, space, crlf):
    fake.event_names, fake.space, fake.crlf = event_names, space, crlf
    events = await ask(backend, Session(THREAD, "reports"))
    assert text_of(events) == ANSWER and isinstance(events[-1], Done)
    assert [e.text for e in events if isinstance(e, Status)][0] == "Thinking…"


async def test_stop_with_is_error_fixture(fake, backend, caplog):
    fake.streams.append((FIXTURES / "llamacloud_chat_stream_error.sse").read_bytes())
    with caplog.at_level(logging.WARNING):
        events = await ask(backend, Session(THREAD, "reports", session_id=fake.add_session(INDEXES)))
    assert events == [
        Warning("indexes_skipped", "Some indexes could not be searched for this answer: idx-def456."),
        Failed("LlamaCloud could not answer: Index idx-def456 could not be queried"),
    ]
    assert "is_error: Index idx-def456 could not be queried" in caplog.text


async def test_skipped_indexes_warn_and_require_all_fails(fake):
    fake.skip = ["idx-def456"]
    lenient = make_backend(fake)
    strict = make_backend(fake, require_all_indexes=True)
    answered = await ask(lenient, Session(THREAD, "reports"))
    refused = await ask(strict, Session(THREAD, "reports"))
    await lenient.close()
    await strict.close()
    assert text_of(answered) == ANSWER and isinstance(answered[-1], Done)
    assert any(isinstance(e, Warning) and "idx-def456" in e.message for e in answered)
    assert fake.calls("POST", "/messages/stream")[-1].json["require_all_indexes"] is True
    assert isinstance(refused[-1], Failed) and "idx-def456" in refused[-1].message


async def test_long_prompts_are_refused_or_truncated(fake, backend):
    long = "x" * 1001
    refused = await ask(backend, Session(THREAD, "reports"), long)
    assert refused == [Failed("your question is 1001 characters long and LlamaCloud accepts at most 1000; "
                              "please ask a shorter question")]
    assert fake.requests == []
    cutting = make_backend(fake, long_prompts="truncate")
    cut = await ask(cutting, Session(THREAD, "reports"), long)
    await cutting.close()
    assert isinstance(cut[0], Warning) and cut[0].code == "prompt_truncated" and "1000" in cut[0].message
    assert fake.calls("POST", "/messages/stream")[0].json["prompt"] == "x" * 1000
    assert text_of(cut) == ANSWER


async def test_http_errors_become_clear_failures(fake, caplog):
    wrong = make_backend(fake, api_key="llx-wrong")
    with caplog.at_level(logging.WARNING):
        denied = await ask(wrong, Session(THREAD, "reports"))
    await wrong.close()
    assert denied == [Failed("LlamaCloud refused botkit's credentials; the operator needs to check the API key")]
    assert "HTTP 401" in caplog.text and "Invalid API key" in caplog.text and "llx-wrong" not in caplog.text

    right = make_backend(fake)
    fake.fail_next(422, json.loads((FIXTURES / "llamacloud_error_422.json").read_text()))
    invalid = await ask(right, Session(THREAD, "reports", session_id=fake.add_session(INDEXES)))
    await right.close()
    assert invalid == [Failed("LlamaCloud refused the request (HTTP 422): "
                              "prompt: String should have at most 1000 characters")]


async def test_a_session_gone_upstream_is_replaced(fake, backend):
    events = await ask(backend, Session(THREAD, "reports", session_id="ses-deleted"))
    assert isinstance(events[0], SessionInfo) and events[0].session_id in fake.sessions
    assert text_of(events) == ANSWER
    assert [r.path for r in fake.calls("POST")] == ["/api/v1/chat/ses-deleted/messages/stream", "/api/v1/chat",
                                                    f"/api/v1/chat/{events[0].session_id}/messages/stream"]


async def test_a_stream_broken_before_its_first_event_is_asked_again(fake, backend, delays):
    fake.drop_next()
    events = await ask(backend, Session(THREAD, "reports", session_id=fake.add_session(INDEXES)))
    assert delays == [0.5] and len(fake.calls("POST", "/messages/stream")) == 2
    assert text_of(events) == ANSWER and isinstance(events[-1], Done)


async def test_retry_after_before_the_stream(fake, backend, delays):
    fake.fail_next(502, {"detail": "Bad gateway"}, retry_after="0.25")
    events = await ask(backend, Session(THREAD, "reports", session_id=fake.add_session(INDEXES)))
    assert delays == [0.25] and text_of(events) == ANSWER


async def test_unbound_sessions_pass_indexes_per_message(fake):
    backend = make_backend(fake, bind_indexes=False, index_ids=["idx-one"])
    events = await ask(backend, Session(THREAD, "reports"))
    await backend.close()
    assert fake.calls("POST", "/api/v1/chat")[0].json == {"index_ids": None}
    assert fake.calls("POST", "/messages/stream")[0].json["index_ids"] == ["idx-one"]
    assert isinstance(events[-1], Done)


async def test_history_list_summary_turns_delete(fake):
    fake.page_size_cap = 2
    backend = make_backend(fake)
    events = await ask(backend, Session(THREAD, "reports"))
    sid = events[0].session_id
    others = [fake.add_session(INDEXES) for _ in range(2)]
    listed = await backend.list_sessions()
    assert [s["session_id"] for s in listed] == [sid, *others]
    pages = fake.calls("GET", "/api/v1/chat")
    assert [p.query.get("page_token") for p in pages] == [None, "2"]
    assert (await backend.summary(sid))["turns"] == 1
    [turn] = await backend.list_turns(sid)
    assert turn["question"] == "What were the main findings in Q3?" and turn["answer"] == ANSWER
    assert [s.title for s in turn["sources"]] == ["q3_report.pdf"] and turn["usage"]["turns"] == 2
    assert await backend.delete_session(sid) is True and sid not in fake.sessions
    assert await backend.delete_session(sid) is True  # already gone: 404 is fine
    assert fake.calls("DELETE")[0].headers["Accept"] == "*/*"
    await backend.close()
