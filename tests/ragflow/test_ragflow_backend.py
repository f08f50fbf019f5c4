"""The RAGFlow backend against a loopback fake of RAGFlow's HTTP API, fixtures replayed byte for byte."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from botkit.backends import Question, Session
from botkit.events import Done, Failed, SessionInfo, Sources, Status, TextDelta, ThreadKey
from botkit_plugins.ragflow import RagflowConfig
from botkit_plugins.ragflow.answer import CitationRewriter, rewrite_citations
from botkit_plugins.ragflow.backend import RagflowBackend
from botkit_plugins.ragflow.fake import FakeRagflow

FIXTURES = Path(__file__).with_name("fixtures")
THREAD = ThreadKey("discord", "G1", "C1", "thread-9")
CHAT = "b1f2f15691f911ef81180242ac120003"
EXPECTED = ("Robot Utility Models are policies trained on diverse environments and objects that can be deployed "
            "in new environments without further data or training [1]. They reach about a 90% success rate on "
            "unseen environments [2].")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
async def fake():
    async with FakeRagflow() as server:
        server.add_chat("robotics-assistant", CHAT)
        yield server


@pytest.fixture
async def backend(fake):
    backend = make_backend(fake)
    await backend.start()
    yield backend
    await backend.close()


def make_backend(fake, **extra):
    settings = {"base_url": fake.url, "api_key": "ragflow-test-key", "chat_id": CHAT, **extra}
    if "create_chat" in extra:
        del settings["chat_id"]
    return RagflowBackend("robots", RagflowConfig(**settings), SimpleNamespace(backends={}))


async def ask(backend, session, text="What are Robot Utility Models?"):
    return [e async for e in backend.stream(session, Question(text=text, user="U42"))]


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def sources_of(events):
    found = [e for e in events if isinstance(e, Sources)]
    assert len(found) == 1
    return found[0].sources


async def test_a_thread_is_one_ragflow_session(fake, backend):
    session = Session(THREAD, "robots")
    first = await ask(backend, session)
    assert isinstance(first[0], SessionInfo)
    session.session_id = first[0].session_id
    second = await ask(backend, session, "And on unseen objects?")
    assert not any(isinstance(e, SessionInfo) for e in second)

    [created] = fake.calls("POST", "/sessions")
    assert created.path == f"/api/v1/chats/{CHAT}/sessions"
    assert created.json == {"name": "discord:G1:C1:thread-9", "user_id": "U42"}
    assert created.headers["Authorization"] == "Bearer ragflow-test-key"
    asks = fake.calls("POST", "/completions")
    assert [a.json for a in asks] == [
        {"question": "What are Robot Utility Models?", "stream": True, "session_id": session.session_id,
         "user_id": "U42"},
        {"question": "And on unseen objects?", "stream": True, "session_id": session.session_id, "user_id": "U42"},
    ]
    assert [m["role"] for m in fake.sessions[session.session_id]["messages"]] == [
        "assistant", "user", "assistant", "user", "assistant"]
    for events in (first, second):
        assert text_of(events) == EXPECTED and isinstance(events[-1], Done)


@pytest.mark.parametrize("name", ["ragflow_completion_stream.sse", "ragflow_completion_stream_v024_delta.sse"])
async def test_both_stream_generations_give_the_same_text_and_sources(fake, backend, name):
    fake.streams.append(fixture(name))
    events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 3 and "".join(deltas) == EXPECTED  # each piece once, never the whole again
    sources = sources_of(events)
    assert [(s.index, s.title, s.score, s.doc_id) for s in sources] == [
        (1, "robot_utility_models.pdf", 0.8121, "dd58f58e888511ef89c90242ac120006"),
        (2, "robot_utility_models.pdf", 0.6534, "dd58f58e888511ef89c90242ac120006"),
    ]
    assert sources[1].snippet.startswith("The policies reach a 90% success rate")
    assert sources[0].metadata["page"] == 1 and sources[1].metadata["page"] == 4
    assert isinstance(events[-1], Done)


def fake_session(fake):
    sid = "82b0ab2a9c1911ef9d870242ac120006"
    fake.sessions[sid] = {"chat_id": CHAT, "id": sid, "name": "s", "user_id": "", "messages": []}
    return [sid]


@pytest.mark.parametrize("generation", ["cumulative", "incremental"])
@pytest.mark.parametrize("markers", ["id", "hash"])
async def test_generated_streams_and_both_marker_styles(fake, backend, generation, markers):
    fake.generation, fake.markers = generation, markers
    events = await ask(backend, Session(THREAD, "robots"))
    assert text_of(events) == EXPECTED
    assert [s.index for s in sources_of(events)] == [1, 2]


def test_markers_become_one_based_even_when_split_across_deltas():
    assert rewrite_citations("a ##0$$ b [ID:0] c [ID:11]") == "a [1] b [1] c [12]"
    rewriter = CitationRewriter()
    pieces = ["training [", "ID:", "1", "0]. Also ", "#", "#2$", "$ done ["]
    out = "".join(rewriter.feed(p) for p in pieces) + rewriter.flush()
    assert out == "training [11]. Also [3] done ["
    assert rewriter.feed("see [note] and C# ") == "see [note] and C# "


async def test_thinking_markers_of_v024_show_progress_and_the_reasoning_between_them_is_not_answer_text(fake, backend):
    fake.streams.append(
        b'data:{"code": 0, "data": {"answer": "", "reference": {}, "start_to_think": true, "final": false}}\n\n'
        b'data:{"code": 0, "data": {"answer": "The user asks about robots; ", "reference": {}, "final": false}}\n\n'
        b'data:{"code": 0, "data": {"answer": "check the manual.", "reference": {}, "final": false}}\n\n'
        b'data:{"code": 0, "data": {"answer": "", "reference": {}, "end_to_think": true, "final": false}}\n\n'
        b'data:{"code": 0, "data": {"answer": "Robots need oil [ID:0].", "reference": {}, "final": false}}\n\n'
        b'data:{"code": 0, "data": {"answer": "", "reference": {"chunks": [{"document_name": "a.pdf"}]},'
        b' "final": true}}\n\n'
        b'data:{"code": 0, "data": true}\n\n')
    events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    assert events[0] == Status("Thinking…")
    assert text_of(events) == "Robots need oil [1]."  # the reasoning is not part of the answer
    assert sources_of(events)[0].title == "a.pdf"


async def test_in_stream_error_is_a_failure_and_a_log_line(fake, backend, caplog):
    fake.streams.append(fixture("ragflow_completion_stream_error.sse"))
    with caplog.at_level(logging.WARNING, "botkit.backends.http"):
        events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    assert events == [Failed("RAGFlow failed to answer: Session does not exist", retryable=True)]
    assert "code 500: Session does not exist" in caplog.text


async def test_pre_stream_error_with_http_200(fake, backend, caplog):
    with caplog.at_level(logging.WARNING, "botkit.backends.http"):
        events = await ask(backend, Session(THREAD, "robots", session_id="0" * 32))
    assert events == [Failed(f"RAGFlow refused the request: You don't own the session {'0' * 32}")]
    assert "code 102" in caplog.text


@pytest.mark.parametrize("send_key, logged", [(True, "code 109: Authentication error"),
                                              (False, "code 0: `Authorization` can't be empty")])
async def test_auth_errors_in_both_forms(fake, send_key, logged, caplog):
    backend = make_backend(fake, api_key="wrong-key")
    if not send_key:
        del backend.transport.client.headers["Authorization"]
    with caplog.at_level(logging.WARNING, "botkit.backends.http"):
        events = await ask(backend, Session(THREAD, "robots"))
    await backend.close()
    assert events == [Failed("RAGFlow refused botkit's credentials; the operator needs to check the API key")]
    assert logged in caplog.text and "wrong-key" not in caplog.text


async def test_stream_cut_before_end_marker_fails(fake, backend):
    fake.streams.append(fixture("ragflow_completion_stream.sse").split(b'data:{"code": 0, "data": true}')[0])
    events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    assert text_of(events) and isinstance(events[-1], Failed) and events[-1].retryable


async def test_retry_after_is_honoured_before_streaming(fake, backend, delays):
    fake.fail_next(503, "<html>Bad gateway</html>", retry_after="1.5")
    fake.fail_next(429, {"code": 429, "message": "slow down"})
    events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    assert delays == [1.5, 1.0]
    assert len(fake.calls("POST", "/completions")) == 3 and text_of(events) == EXPECTED


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_stream_broken_before_its_first_event_is_asked_again(fake, delays, api):
    fake.drop_next()
    backend = make_backend(fake, **({"api": "openai", "model": "m"} if api == "openai" else {}))
    await backend.start()
    try:
        events = await ask(backend, Session(THREAD, "robots", session_id=fake_session(fake)[0]))
    finally:
        await backend.close()
    assert delays == [0.5] and len(fake.calls("POST", "/completions")) == 2
    assert text_of(events) == EXPECTED and isinstance(events[-1], Done)


async def test_create_chat_reuses_an_assistant_by_name(fake):
    backend = make_backend(fake, create_chat={"name": "robotics-assistant", "dataset_ids": ["d1"]})
    await backend.start()
    await backend.close()
    assert backend.chat_id == CHAT and not fake.calls("POST", "/chats")
    assert fake.calls("GET", "/chats")[0].query["name"] == "robotics-assistant"


async def test_create_chat_creates_a_missing_assistant(fake):
    backend = make_backend(fake, create_chat={"name": "support", "dataset_ids": ["d1"],
                                              "llm": {"model_name": "qwen-plus", "temperature": 0.1},
                                              "prompt": {"top_n": 6, "show_quote": True}})
    await backend.start()
    events = await ask(backend, Session(THREAD, "support"))
    await backend.close()
    [created] = fake.calls("POST", "/api/v1/chats")[:1]
    assert created.json == {"name": "support", "dataset_ids": ["d1"],
                            "llm": {"model_name": "qwen-plus", "temperature": 0.1},
                            "prompt": {"top_n": 6, "show_quote": True}}
    assert backend.chat_id != CHAT and fake.chats[backend.chat_id]["name"] == "support"
    assert fake.calls("POST", "/completions")[0].path == f"/api/v1/chats/{backend.chat_id}/completions"
    assert isinstance(events[-1], Done)


def test_config_needs_exactly_one_way_to_name_the_assistant():
    with pytest.raises(ValueError, match="exactly one"):
        RagflowConfig(base_url="http://x", api_key="k")
    with pytest.raises(ValueError, match="exactly one"):
        RagflowConfig(base_url="http://x", api_key="k", chat_id="c", create_chat={"name": "n"})
    assert "k" not in repr(RagflowConfig(base_url="http://x", api_key="k", chat_id="c").api_key)


async def test_reset_deletes_the_session_when_configured(fake, backend):
    sid = fake_session(fake)[0]
    await backend.end_session(sid)
    assert fake.calls("DELETE")[0].json == {"ids": [sid]} and sid not in fake.sessions
    kept = fake_session(fake)[0]
    keep = make_backend(fake, delete_on_reset=False)
    await keep.end_session(kept)
    assert len(fake.calls("DELETE")) == 1 and kept in fake.sessions
    assert await keep.delete_session(kept) is True  # an operator's delete always deletes
    await keep.close()
    assert len(fake.calls("DELETE")) == 2 and kept not in fake.sessions


async def test_history_lists_sessions_and_turns(fake, backend):
    session = Session(THREAD, "robots")
    events = await ask(backend, session)
    sid = events[0].session_id
    [listed] = await backend.list_sessions()
    assert listed["session_id"] == sid and listed["turns"] == 1 and listed["user"] == "U42"
    [turn] = await backend.list_turns(sid)
    assert turn["question"] == "What are Robot Utility Models?" and turn["answer"] == EXPECTED
    assert [s.index for s in turn["sources"]] == [1, 2]


async def test_openai_mode_sends_history_and_maps_references(fake):
    backend = make_backend(fake, api="openai", max_history_turns=2)
    assert backend.history_turns == 2
    session = Session(THREAD, "robots")
    assert await backend.create_session(session, Question("q", "U1")) is None
    first = await ask(backend, session)
    session.history.append(("What are Robot Utility Models?", text_of(first)))
    second = await ask(backend, session, "How well do they work?")
    await backend.close()
    one, two = fake.calls("POST", "/chats_openai/")
    assert one.path == f"/api/v1/chats_openai/{CHAT}/chat/completions"
    assert one.json == {"model": "model", "stream": True, "reference": True,
                        "messages": [{"role": "user", "content": "What are Robot Utility Models?"}]}
    assert two.json["messages"] == [{"role": "user", "content": "What are Robot Utility Models?"},
                                    {"role": "assistant", "content": EXPECTED},
                                    {"role": "user", "content": "How well do they work?"}]
    assert not fake.calls("POST", "/sessions")
    for events in (first, second):
        assert text_of(events) == EXPECTED and [s.index for s in sources_of(events)] == [1, 2]
    assert second[-1].usage["prompt_tokens"] == 30


async def test_openai_mode_replays_the_fixture_and_maps_errors(fake):
    backend = make_backend(fake, api="openai")
    fake.streams.append(fixture("ragflow_openai_stream.sse"))
    fake.streams.append(b'data:{"choices": [{"delta": {"content": "**ERROR**: LLM quota exceeded"}}]}\n\n'
                        b"data:[DONE]\n\n")
    replayed = await ask(backend, Session(THREAD, "robots"))
    crashed = await ask(backend, Session(THREAD, "robots"))
    backend.config.model = ""  # RAGFlow's 200-with-code answer to a missing field
    missing = await ask(backend, Session(THREAD, "robots"))
    await backend.close()
    assert text_of(replayed) == EXPECTED and sources_of(replayed)[0].title == "robot_utility_models.pdf"
    assert replayed[-1] == Done({"prompt_tokens": 30, "completion_tokens": 214, "total_tokens": 244})
    assert crashed == [Failed("RAGFlow failed to answer: LLM quota exceeded", retryable=True)]
    assert missing == [Failed("RAGFlow refused the request: required argument are missing: model; ")]
