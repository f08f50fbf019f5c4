"""The OpenAI-compatible backend against a loopback fake speaking the streaming format."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from botkit.backends import Question, Session
from botkit.events import Done, Failed, Source, Sources, Status, TextDelta, ThreadKey, Warning
from botkit_plugins.openai import OpenAIConfig
from botkit_plugins.openai.backend import OpenAIBackend
from botkit_plugins.openai.fake import FakeOpenAI

THREAD = ThreadKey("slack", "T1", "C1", "1700000000.0001")


async def collect(backend, session, text="What is botkit?"):
    return [e async for e in backend.stream(session, Question(text=text, user="U1"))]


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.fixture
async def fake():
    async with FakeOpenAI(answer="botkit connects chat platforms to RAG backends.", api_key="sk-test") as server:
        yield server


def make_backend(fake, bot=None, **extra):
    config = OpenAIConfig(base_url=fake.url + "/v1", api_key="sk-test", model="m1", **extra)
    return OpenAIBackend("gpt", config, bot or SimpleNamespace(backends={}))


async def test_streams_deltas_and_sends_history_on_second_turn(fake):
    backend = make_backend(fake, system_prompt="Be brief.", temperature=0.2)
    await backend.start()
    try:
        session = Session(THREAD, "gpt")
        first = await collect(backend, session)
        assert len([e for e in first if isinstance(e, TextDelta)]) == 3
        assert text_of(first) == "botkit connects chat platforms to RAG backends."
        assert isinstance(first[-1], Done) and first[-1].usage["total_tokens"] > 0

        session.history.append(("What is botkit?", text_of(first)))
        session.turn_count = 1
        await collect(backend, session, "And which backends?")
    finally:
        await backend.close()
    one, two = fake.calls("POST", "/chat/completions")
    assert one.headers["Authorization"] == "Bearer sk-test"
    assert one.json["model"] == "m1" and one.json["stream"] is True and one.json["temperature"] == 0.2
    assert one.json["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "What is botkit?"}]
    assert two.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is botkit?"},
        {"role": "assistant", "content": "botkit connects chat platforms to RAG backends."},
        {"role": "user", "content": "And which backends?"},
    ]


async def test_history_is_capped_to_max_history_turns(fake):
    backend = make_backend(fake, max_history_turns=1)
    assert backend.history_turns == 1
    session = Session(THREAD, "gpt", history=[("q1", "a1"), ("q2", "a2")])
    await collect(backend, session, "q3")
    await backend.close()
    contents = [m["content"] for m in fake.requests[-1].json["messages"] if m["role"] != "system"]
    assert contents == ["q2", "a2", "q3"]


async def test_reasoning_is_progress_not_answer(fake):
    fake.reasoning = "Let me think about the platforms first."
    backend = make_backend(fake)
    events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert [e.text for e in events if isinstance(e, Status)] == ["Thinking…"]
    assert "think" not in text_of(events)
    assert events.index(next(e for e in events if isinstance(e, Status))) < events.index(
        next(e for e in events if isinstance(e, TextDelta)))


async def test_retry_honours_retry_after_then_streams(fake, delays):
    fake.fail_next(429, {"error": {"message": "Rate limit reached"}}, retry_after="2")
    fake.fail_next(503, "upstream overloaded")
    backend = make_backend(fake)
    events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert delays == [2.0, 1.0]  # Retry-After, then the doubled backoff (0.5, 1.0)
    assert len(fake.calls("POST")) == 3
    assert isinstance(events[-1], Done) and text_of(events)


async def test_a_stream_broken_before_its_first_chunk_is_asked_again(fake, delays):
    fake.drop_next()
    backend = make_backend(fake)
    events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert delays == [0.5] and len(fake.calls("POST")) == 2
    assert isinstance(events[-1], Done) and text_of(events) == fake.answer


async def test_retries_give_up_with_a_retryable_failure(fake, delays, caplog):
    fake.fail_next(500, {"error": {"message": "boom"}}, times=3)
    backend = make_backend(fake)
    with caplog.at_level(logging.WARNING, "botkit.backends.http"):
        events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert len(delays) == 2
    assert events == [Failed("the OpenAI-compatible server is unavailable right now (HTTP 500); please try again",
                             retryable=True)]
    assert "HTTP 500" in caplog.text and "boom" in caplog.text


async def test_too_long_retry_after_is_not_waited_for(fake, delays):
    fake.fail_next(429, {"error": {"message": "slow down"}}, retry_after="3600")
    backend = make_backend(fake)
    events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert delays == [] and len(fake.calls("POST")) == 1
    assert isinstance(events[-1], Failed) and events[-1].retryable and "rate limiting" in events[-1].message


async def test_bad_key_is_a_clear_failure_without_the_secret(fake, caplog):
    backend = OpenAIBackend("gpt", OpenAIConfig(base_url=fake.url + "/v1", api_key="sk-wrong", model="m"),
                            SimpleNamespace(backends={}))
    with caplog.at_level(logging.WARNING):
        events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert events == [Failed("the OpenAI-compatible server refused botkit's credentials; "
                             "the operator needs to check the API key")]
    assert "Incorrect API key provided" in caplog.text and "sk-wrong" not in caplog.text
    assert "sk-wrong" not in repr(backend.config)


async def test_error_inside_stream_and_cut_off_stream(fake):
    fake.streams.append(b'data: {"choices":[{"delta":{"content":"Part"}}]}\n\n'
                        b'data: {"error":{"message":"model crashed"}}\n\n')
    fake.streams.append(b'data: {"choices":[{"delta":{"content":"Part"}}]}\n\n')
    backend = make_backend(fake)
    crashed = await collect(backend, Session(THREAD, "gpt"))
    cut = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert crashed == [TextDelta("Part"), Failed("the OpenAI-compatible server failed: model crashed")]
    assert cut[0] == TextDelta("Part") and isinstance(cut[-1], Failed) and cut[-1].retryable


async def test_length_finish_is_a_warning(fake):
    fake.streams.append(b'data: {"choices":[{"delta":{"content":"Half an ans"},"finish_reason":"length"}]}\n\n'
                        b"data: [DONE]\n\n")
    backend = make_backend(fake)
    events = await collect(backend, Session(THREAD, "gpt"))
    await backend.close()
    assert events == [TextDelta("Half an ans"),
                      Warning("truncated", "The answer was cut off at the model's length limit."), Done(None)]


async def test_azure_style_key_header_and_query(fake):
    fake.api_key = None
    config = OpenAIConfig(base_url=fake.url + "/v1", api_key="az-key", api_key_header="api-key",
                          query={"api-version": "2024-10-21"}, model="gpt-4o", include_usage=False)
    backend = OpenAIBackend("azure", config, SimpleNamespace(backends={}))
    events = await collect(backend, Session(THREAD, "azure"))
    await backend.close()
    request = fake.requests[-1]
    assert request.headers["api-key"] == "az-key" and "Authorization" not in request.headers
    assert request.query == {"api-version": "2024-10-21"} and "stream_options" not in request.json
    assert events[-1] == Done(None)


class Passages:
    """A stand-in for the local backend's retrieval."""

    def __init__(self):
        self.asked = []

    async def retrieve(self, query, limit):
        self.asked.append((query, limit))
        return [Source(1, "Install guide", snippet="pip install botkit"),
                Source(2, "Config guide", url="https://docs.example/config", snippet="One YAML file.")]


async def test_retrieval_puts_numbered_passages_in_the_prompt(fake):
    passages = Passages()
    fake.answer = "Install it with pip [1] and write one YAML file [2]."
    backend = make_backend(fake, SimpleNamespace(backends={"docs": passages}),
                           retrieval={"backend": "docs", "top_k": 2})
    await backend.start()
    events = await collect(backend, Session(THREAD, "gpt"), "How do I set it up?")
    await backend.close()
    assert passages.asked == [("How do I set it up?", 2)]
    assert isinstance(events[0], Sources) and [s.index for s in events[0].sources] == [1, 2]
    system = fake.requests[-1].json["messages"][0]
    assert system["role"] == "system"
    assert "[1] Install guide\npip install botkit" in system["content"]
    assert "[2] Config guide\nOne YAML file." in system["content"] and "[N]" in system["content"]
    assert text_of(events) == "Install it with pip [1] and write one YAML file [2]."


async def test_retrieval_backend_must_exist(fake):
    backend = make_backend(fake, retrieval={"backend": "nope"})
    with pytest.raises(Exception, match="nope"):
        await backend.start()
    await backend.close()


async def test_verify_lists_the_models_with_the_key_and_a_server_without_that_list_is_only_reachable(fake):
    backend = make_backend(fake)
    try:
        assert await backend.verify() == "signed in; model 'm1' is not among the 1 it lists"
        assert fake.calls("GET", "/models")[-1].headers["Authorization"] == "Bearer sk-test"
        fake.fail_next(404, {"error": {"message": "Not Found"}})
        assert await backend.verify() == "reachable (it has no /models to check the key with)"
    finally:
        await backend.close()
