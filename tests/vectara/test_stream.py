"""A Vectara thread against the fake: paths, bodies, headers, and the answer events they become."""

from __future__ import annotations

import asyncio
import logging

import pytest

from botkit.backends import Question, Session
from botkit.events import Done, Failed, Score, SessionInfo, Sources, TextDelta, Warning
from botkit_plugins.vectara.fake import Reply, Stream

from .conftest import API_KEY, THREAD, ask


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


CONFIGURED = {
    "corpora": [
        {"corpus_key": "robotics-papers", "metadata_filter": "doc.year >= 2023", "lexical_interpolation": 0.005,
         "semantics": "default", "custom_dimensions": {"boost": 1.5}},
        {"corpus_key": "faq_2=x"},
    ],
    "search": {"limit": 25, "offset": 0,
               "context_configuration": {"sentences_before": 2, "sentences_after": 2, "start_tag": "<em>",
                                         "end_tag": "</em>"},
               "reranker": {"type": "customer_reranker", "reranker_name": "Rerank_Multilingual_v1", "limit": 50,
                            "cutoff": 0.2, "include_context": True}},
    "generation": {"generation_preset_name": "mockingbird-2.0", "max_used_search_results": 5,
                   "max_response_characters": 300, "response_language": "eng",
                   "model_parameters": {"llm_name": "gpt-4o", "max_tokens": 512, "temperature": 0.0},
                   "citations": {"style": "numeric"}, "enable_factual_consistency_score": True},
    "chat": {"store": True},
    "save_history": True,
    "intelligent_query_rewriting": False,
    "request_timeout": 20,
}


async def test_three_turn_thread_is_one_chat_with_configured_request(fake, make_backend):
    backend = await make_backend(**CONFIGURED)
    first = await ask(backend, "What are Robot Utility Models?")
    chat_id = next(e.session_id for e in first if isinstance(e, SessionInfo))
    second = await ask(backend, "How do they generalise?", chat_id)
    third = await ask(backend, "And the success rate?", chat_id)

    posts = fake.posts()
    assert [p.path for p in posts] == ["/v2/chats", f"/v2/chats/{chat_id}/turns", f"/v2/chats/{chat_id}/turns"]
    assert len(fake.chats) == 1 and len(fake.turns[chat_id]) == 3
    expected_search = {
        "corpora": CONFIGURED["corpora"],
        "limit": 25, "offset": 0,
        "context_configuration": CONFIGURED["search"]["context_configuration"],
        "reranker": CONFIGURED["search"]["reranker"],
    }
    for post, query in zip(posts, ["What are Robot Utility Models?", "How do they generalise?",
                                   "And the success rate?"]):
        assert post.json == {"query": query, "search": expected_search, "generation": CONFIGURED["generation"],
                             "chat": {"store": True}, "save_history": True, "intelligent_query_rewriting": False,
                             "stream_response": True}
        assert post.headers["x-api-key"] == API_KEY
        assert post.headers["content-type"] == "application/json"
        assert post.headers["accept"] == "text/event-stream"
        assert post.headers["request-timeout"] == "20"
        assert post.headers["request-timeout-millis"] == "20000"
    for events in (first, second, third):
        assert isinstance(events[-1], Done)
        assert text_of(events) == "".join(fake.answer)
    # later turns report the same chat, with their own turn ids
    infos = [next(e for e in evs if isinstance(e, SessionInfo)) for evs in (first, second, third)]
    assert {i.session_id for i in infos} == {chat_id}
    assert len({i.turn_id for i in infos}) == 3


async def test_stream_maps_to_events_in_order(fake, make_backend):
    backend = await make_backend()
    events = await ask(backend, "What are Robot Utility Models?")
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Sources", "SessionInfo"] + ["TextDelta"] * len(fake.answer) + ["Score", "Done"]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == fake.answer  # incremental, one per generation_chunk, untouched
    sources = events[0].sources
    assert [(s.index, s.title, s.url, s.doc_id) for s in sources] == [
        (1, "Robot Utility Models", "https://example.org/rum.pdf", "rum-paper"),
        (2, "RUM results", None, "rum-results"),
    ]
    assert sources[0].snippet.startswith("Robot Utility Models are trained") and sources[0].score == 0.88
    assert events[-2] == Score(0.82)
    assert events[-1].usage == {"turn_id": events[1].turn_id}


async def test_citation_marker_split_across_chunks_survives_in_the_text(fake, make_backend):
    fake.answer = ["Deployed zero-shot [", "1", "]. Success rate 90% [2", "]."]
    backend = await make_backend()
    events = await ask(backend, "q")
    text = text_of(events)
    assert text == "Deployed zero-shot [1]. Success rate 90% [2]."
    indexes = {s.index for s in next(e for e in events if isinstance(e, Sources)).sources}
    assert {1, 2} <= indexes


async def test_sources_use_configured_metadata_keys_and_fall_back_to_doc_id(fake, make_backend):
    fake.search_results = [
        {"text": "a", "document_metadata": {"name": "Handbook"}, "part_metadata": {"link": "https://x/h#p3"},
         "document_id": "doc-1"},
        {"text": "b", "document_metadata": {}, "document_id": "doc-2"},
        *({"text": f"r{i}", "document_id": f"doc-{i}"} for i in range(3, 9)),
    ]
    backend = await make_backend(source_keys={"title": ["name", "title"], "url": ["link"]},
                                 generation={"max_used_search_results": 3})
    sources = next(e for e in await ask(backend, "q") if isinstance(e, Sources)).sources
    assert [(s.index, s.title, s.url) for s in sources] == [
        (1, "Handbook", "https://x/h#p3"), (2, "doc-2", None), (3, "doc-3", None)]


async def test_error_event_mid_stream_keeps_partial_text_and_fails(fake, make_backend, caplog):
    fake.script(Stream([
        {"type": "chat_info"},
        {"type": "generation_chunk", "generation_chunk": "Partial answer"},
        {"type": "error", "messages": ["INTERNAL: generation failed"]},
        {"type": "end"},
    ]))
    backend = await make_backend()
    with caplog.at_level(logging.WARNING, logger="botkit.backends.vectara"):
        events = await ask(backend, "q")
    assert text_of(events) == "Partial answer"
    assert isinstance(events[-1], Failed)
    assert "INTERNAL: generation failed" in events[-1].message
    assert not any(isinstance(e, Done) for e in events)
    assert "INTERNAL: generation failed" in caplog.text


async def test_dropped_connection_mid_stream_fails_retryable_without_retrying(fake, make_backend):
    fake.script(Stream([{"type": "chat_info"},
                        {"type": "generation_chunk", "generation_chunk": "Half an ans"},
                        {"type": "generation_chunk", "generation_chunk": "wer"}], cut_after=2))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert text_of(events) == "Half an ans"
    assert isinstance(events[-1], Failed) and events[-1].retryable
    assert len(fake.posts()) == 1  # text was shown: never asked twice


async def test_connection_dropped_before_any_event_is_retried(fake, make_backend):
    fake.script(Stream([{"type": "chat_info"}], cut_after=0))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert isinstance(events[-1], Done)
    assert text_of(events) == "".join(fake.answer)
    assert len(fake.posts()) == 2 and len(backend.sleeps) == 1


async def test_crlf_comments_unknown_types_and_any_order_after_chat_info(fake, make_backend):
    fake.script(Stream([
        ": keep-alive comment\r\n\r\n",
        "event:chat_info\r\ndata:{\"type\":\"chat_info\",\"chat_id\":\"cht_crlf\",\"turn_id\":\"trn_1\"}\r\n\r\n",
        "event:factual_consistency_score\r\ndata:{\"type\":\"factual_consistency_score\","
        "\"factual_consistency_score\":0.4}\r\n\r\n",
        "event:generation_chunk\r\ndata: {\"type\":\"generation_chunk\",\"generation_chunk\":\"Hello\"}\r\n\r\n",
        "event:something_new\ndata:{\"type\":\"something_new\",\"x\":1}\n\n",
        "event:generation_info\ndata:{\"type\":\"generation_info\",\"rephrased_query\":\"Hello?\"}\n\n",
        "event:search_results\ndata:{\"type\":\"search_results\",\"search_results\":[{\"document_id\":\"d\"}]}\n\n",
        "event:generation_chunk\rdata:{\"type\":\"generation_chunk\",\"generation_chunk\":\" world\"}\r\r",
        "data:not json\n\n",
        "event:end\ndata:{\"type\":\"end\"}\n\n",
        "event:generation_chunk\ndata:{\"type\":\"generation_chunk\",\"generation_chunk\":\" AFTER END\"}\n\n",
    ]))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert events[0] == SessionInfo("cht_crlf", "trn_1")
    assert Score(0.4) in events
    assert text_of(events) == "Hello world"
    assert next(e for e in events if isinstance(e, Sources)).sources[0].title == "d"
    assert events[-1] == Done({"turn_id": "trn_1", "rephrased_query": "Hello?"})


async def test_warnings_become_warning_events(fake, make_backend):
    fake.script(Reply(200, {"chat_id": "cht_w", "turn_id": "trn_w", "answer": "A.",
                            "warnings": ["exceeded_max_input_length_fcs", "brand_new_warning"]}))
    backend = await make_backend(stream=False)
    events = await ask(backend, "q")
    warnings = [e for e in events if isinstance(e, Warning)]
    assert [w.code for w in warnings] == ["exceeded_max_input_length_fcs", "brand_new_warning"]
    assert "factual consistency" in warnings[0].message and "brand_new_warning" in warnings[1].message


async def test_non_streaming_mode_maps_the_json_response(fake, make_backend):
    backend = await make_backend(stream=False)
    first = await ask(backend, "first")
    chat_id = first[1].session_id
    second = await ask(backend, "second", chat_id)
    posts = fake.posts()
    assert [p.json["stream_response"] for p in posts] == [False, False]
    assert "accept" not in posts[0].headers or posts[0].headers["accept"] != "text/event-stream"
    assert posts[1].path == f"/v2/chats/{chat_id}/turns"
    assert [type(e).__name__ for e in first] == ["Sources", "SessionInfo", "TextDelta", "Score", "Done"]
    assert text_of(second) == "".join(fake.answer)


async def test_too_long_or_empty_question_fails_before_any_request(fake, make_backend):
    backend = await make_backend()
    long = await ask(backend, "x" * 5001)
    empty = await ask(backend, "   ")
    assert len(long) == 1 and isinstance(long[0], Failed) and "5001" in long[0].message
    assert len(empty) == 1 and isinstance(empty[0], Failed)
    assert fake.requests == []
    ok = await ask(backend, "x" * 5000)
    assert isinstance(ok[-1], Done)


async def test_closing_the_stream_early_closes_the_upstream_request(fake, make_backend):
    gate = asyncio.Event()
    fake.script(Stream([{"type": "chat_info"}] + [{"type": "generation_chunk", "generation_chunk": "x"}] * 20,
                       gate=gate, gate_at=1))
    backend = await make_backend()
    stream = backend.stream(Session(THREAD, "kb"), Question("q", "u1"))
    first = await asyncio.wait_for(anext(stream), 5)
    assert isinstance(first, SessionInfo)
    await stream.aclose()  # what the dispatcher does on cancellation or a turn timeout
    gate.set()
    async with fake.received:
        await asyncio.wait_for(fake.received.wait_for(lambda: fake.hangups), 5)
    assert fake.hangups == ["/v2/chats"]


async def test_turn_deadline_is_enforced_client_side(fake, make_backend):
    fake.script(Stream([{"type": "chat_info"}] + [{"type": "generation_chunk", "generation_chunk": "."}] * 50,
                       delay=0.05))
    backend = await make_backend(request_timeout=0.3)
    events = await ask(backend, "q")
    assert isinstance(events[-1], Failed) and events[-1].retryable
    assert "too long" in events[-1].message
    assert 0 < len(text_of(events)) < 50


async def test_a_stream_that_ends_without_its_end_event_is_cut_off_not_complete(fake, make_backend, caplog):
    fake.script(Stream([{"type": "chat_info"}, {"type": "generation_chunk", "generation_chunk": "The first half"}]))
    backend = await make_backend()
    with caplog.at_level(logging.WARNING, logger="botkit.backends.vectara"):
        events = await ask(backend, "q")
    assert text_of(events) == "The first half"  # what arrived is kept
    assert isinstance(events[-1], Failed) and "cut off" in events[-1].message and events[-1].retryable
    assert not any(isinstance(e, Done) for e in events)
    assert "without its end event" in caplog.text


@pytest.mark.parametrize("payload", [
    {"type": "generation_chunk", "generation_chunk": 5},
    {"type": "generation_chunk", "generation_chunk": ["a", "list"]},
    {"type": "search_results", "search_results": "not a list"},
    {"type": "search_results", "search_results": [3]},
    {"type": "error", "messages": [1, 2]},
    {"type": "chat_info", "chat_id": {"a": "dict"}},
])
async def test_a_payload_of_the_wrong_types_ends_the_turn_with_a_readable_notice(fake, make_backend, caplog, payload):
    fake.script(Stream([{"type": "chat_info"}, {"type": "generation_chunk", "generation_chunk": "Before. "},
                        payload, {"type": "end"}]))
    backend = await make_backend()
    with caplog.at_level(logging.WARNING, logger="botkit.backends.vectara"):
        events = await ask(backend, "q")
    assert text_of(events).startswith("Before. ")
    assert isinstance(events[-1], Failed) and events[-1].message == "the knowledge base sent an answer botkit cannot read"
    assert "unreadable" in caplog.text and "Traceback" not in caplog.text
