"""The dispatcher end to end: a recording adapter and a scripted backend, real store and renderer."""

from __future__ import annotations

import asyncio
import gc

from botkit.bot import _GC_YOUNG_THRESHOLD
from botkit.events import TextDelta
from botkit.pipeline import workers
from botkit.store import StoreUnreachable
from botkit.testing import running_bot


def config(**backend):
    return {
        "adapters": {"rec": {"type": "recording"}},
        "backends": {"b": {"type": "fake", **backend}},
    }


async def test_one_answer_per_event_id_under_retries(tmp_path):
    async with running_bot(config(answer="hello"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        results = await asyncio.gather(*(rec.inject("hi", event_id="E1") for _ in range(5)))
        await bot.idle(5)
        assert results.count(True) == 1
        assert len(bot.backends["b"].calls) == 1
        assert rec.texts() == ["hello"]


async def test_dedupe_survives_a_restart(tmp_path):
    async with running_bot(config(answer="hello"), tmp_path) as bot:
        assert await bot.adapters["rec"].inject("hi", event_id="E1")
        await bot.idle(5)
    async with running_bot(config(answer="hello"), tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert not await rec.inject("hi", event_id="E1")
        assert await rec.inject("hi", event_id="E2")
        await bot.idle(5)
        assert bot.backends["b"].calls == [("fake-session-1", "hi")]  # the thread's session survived too


async def test_turns_in_a_thread_run_in_order_while_threads_run_concurrently(tmp_path):
    async with running_bot(config(answer="{question}", chunks=2), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        for n in range(5):
            await rec.inject(f"a{n}", thread="A")
        await rec.inject("b0", thread="B")
        # both threads are waiting at the backend at once: one turn each, not a global queue
        await asyncio.wait_for(_until(lambda: {q for _, q in backend.calls} == {"a0", "b0"}), 5)
        backend.gate.set()
        await bot.idle(5)
        assert [q for _, q in backend.calls if q.startswith("a")] == ["a0", "a1", "a2", "a3", "a4"]
        answers_a = [t for t in rec.texts() if t.startswith("a")]
        assert answers_a == ["a0", "a1", "a2", "a3", "a4"]


async def test_latest_wins_edits_are_bounded_for_a_slow_adapter(tmp_path):
    words = " ".join(f"w{i}" for i in range(60))
    cfg = config(answer=words, chunks=60, delay=0.01)
    cfg["adapters"]["rec"]["edit_interval"] = 0.2
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("go")
        await bot.idle(10)
        edits = [m for kind, _, m in rec.calls if kind == "edit"]
        # ~0.6 s of streaming at one edit per 0.2 s: a handful of edits, not 60
        assert 2 <= len(edits) <= 7
        texts = [m.text for m in edits]
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # every edit carries newer text
        assert edits[-1].final and edits[-1].text == words


async def test_final_text_is_delivered_after_a_429(tmp_path):
    cfg = config(answer="alpha beta gamma delta", chunks=4, delay=0.02)
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        backend = bot.backends["b"]
        backend.gate = asyncio.Event()
        await rec.inject("go")
        await rec.wait_for(lambda: len(rec.calls) == 1)  # the placeholder
        rec.fail_next = [0.05, 0.05]  # the next two edits are rate limited
        backend.gate.set()
        await bot.idle(5)
        assert rec.texts() == ["alpha beta gamma delta"]
        assert rec.calls[-1][2].final


async def test_long_answers_split_without_breaking_code_blocks(tmp_path):
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(120)) + "\n```"
    answer = "Here is the script.\n\n" + code + "\n\nThat is all."
    cfg = config(answer=answer, chunks=10)
    cfg["adapters"]["rec"]["max_length"] = 500
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("code please")
        await bot.idle(5)
        texts = rec.texts()
        assert len(texts) >= 6
        assert all(len(t) <= 500 for t in texts)
        assert all(t.count("```") % 2 == 0 for t in texts)
        joined = "\n".join(texts)
        assert all(f"print({i})" in joined for i in range(120))
        assert texts[-1].endswith("That is all.")


async def test_backend_failing_mid_answer_keeps_partial_text_and_adds_a_notice(tmp_path):
    cfg = config(answer="one two three four", chunks=4, fail_after=2)
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("go")
        await bot.idle(5)
        (final,) = [m for m in rec.messages.values()]
        assert final.final and final.status is None
        assert final.text == "one two th"  # two chunks of five characters
        assert any("couldn't finish" in n.text and "failed on purpose" in n.text for n in final.notes)


async def test_backend_exception_and_timeout_end_in_a_notice(tmp_path):
    cfg = config()
    cfg["dispatch"] = {"turn_timeout": 0.3}
    async with running_bot(cfg, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]

        def boom(session, question):
            raise RuntimeError("secret internals")

        backend.script = boom
        await rec.inject("first")
        await bot.idle(5)
        backend.script = None
        backend.gate = asyncio.Event()  # never set: the turn times out
        await rec.inject("second")
        await bot.idle(5)
        first, second = rec.texts()
        assert "failed unexpectedly" in first and "secret internals" not in first
        assert "within 0.3 s" in second
        assert "thinking" not in first + second


async def test_shutdown_marks_unfinished_answers_interrupted(tmp_path):
    async with running_bot(config(), tmp_path, grace=0.1) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        await rec.inject("never answered")
        await rec.wait_for(lambda: len(rec.calls) == 1)
    (text,) = rec.texts()
    assert "stopped while answering" in text


async def test_busy_reply_past_the_per_thread_bound(tmp_path):
    cfg = config(answer="ok")
    cfg["dispatch"] = {"max_queued_per_thread": 2}
    async with running_bot(cfg, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        for n in range(3):
            assert await rec.inject(f"q{n}")
        await rec.wait_for(lambda: any("busy" in t for t in rec.texts()))
        backend.gate.set()
        await bot.idle(5)
        assert len(backend.calls) == 2
        assert rec.texts().count("ok") == 2


async def test_strategy_latest_answers_only_the_newest_waiting_message(tmp_path):
    cfg = config(answer="{question}")
    cfg["dispatch"] = {"strategy": "latest"}
    async with running_bot(cfg, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        for n in range(4):
            await rec.inject(f"q{n}")
        backend.gate.set()
        await bot.idle(5)
        assert [q for _, q in backend.calls] == ["q0", "q3"]


async def test_reset_and_help_commands(tmp_path):
    async with running_bot(config(answer="turn {turn}"), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        await rec.inject("one")
        await rec.inject("two")
        await rec.inject("reset")
        await rec.inject("three")
        await rec.inject("help")
        await bot.idle(5)
        texts = rec.texts()
        assert any("Ask me a question" in t for t in texts)  # help answers at once, ahead of the queue
        texts = [t for t in texts if "Ask me a question" not in t]
        assert texts[:2] == ["turn 1", "turn 2"]
        assert "new conversation" in texts[2]
        assert texts[3] == "turn 1"
        assert backend.ended == ["fake-session-1"] and backend.deleted == []
        assert [sid for sid, _ in backend.calls] == [None, "fake-session-1", None]


async def test_routes_pick_backends_and_unrouted_messages_are_ignored(tmp_path):
    cfg = {
        "adapters": {"rec": {"type": "recording"}},
        "backends": {"sales": {"type": "fake", "answer": "sales"}, "support": {"type": "fake", "answer": "support"}},
        "routes": [{"adapter": "rec", "direct": True, "backend": "sales"},
                   {"adapter": "nobody", "backend": "support"}] ,
    }
    cfg["adapters"]["nobody"] = {"type": "recording"}
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert await rec.inject("dm", direct=True)
        assert not await rec.inject("in a channel")
        await bot.idle(5)
        assert rec.texts() == ["sales"]


async def test_health_and_readiness_endpoints(tmp_path):
    import httpx

    cfg = config()
    cfg["server"] = {"host": "127.0.0.1", "port": 0, "enabled": True}
    async with running_bot(cfg, tmp_path) as bot:
        async with httpx.AsyncClient(base_url=bot.server.url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True


async def test_turns_are_recorded_with_sessions_and_timings(tmp_path):
    cfg = config(answer="cited [1]", sources=[{"title": "Doc", "url": "https://example.invalid/doc"}], score=0.9)
    async with running_bot(cfg, tmp_path) as bot:
        await bot.adapters["rec"].inject("q1")
        await bot.idle(5)
        record = await bot.store.active_session(bot.adapters["rec"].thread(), "b")
        (turn,) = await bot.store.turns_of(record.id)
        assert turn["question"] == "q1" and turn["answer"] == "cited [1]" and turn["status"] == "complete"
        assert turn["score"] == 0.9 and turn["sources"][0]["title"] == "Doc"
        assert turn["message_ids"] == ["m1"] and turn["first_text_after"] is not None
        assert record.session_id == "fake-session-1" and record.turn_count == 1


async def _until(predicate, interval: float = 0.005):
    while not predicate():
        await asyncio.sleep(interval)


async def test_done_usage_and_a_replaced_session_id_are_recorded(tmp_path):
    from botkit.events import Done, SessionInfo

    async with running_bot(config(), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        await rec.inject("first")
        await bot.idle(5)
        backend.script = lambda session, question: [SessionInfo("replacement"), TextDelta("ok"),
                                                    Done({"rephrased_query": "second?"})]
        await rec.inject("second")
        await bot.idle(5)
        record = await bot.store.active_session(rec.thread(), "b")
        turns = await bot.store.turns_of(record.id)
        assert record.session_id == "replacement"
        assert turns[1]["flags"]["usage"] == {"rephrased_query": "second?"}


async def test_native_commands_work_whatever_the_command_words(tmp_path):
    from botkit.events import Inbound

    cfg = config(answer="turn {turn}")
    cfg["dispatch"] = {"reset_commands": [], "help_commands": []}
    async with running_bot(cfg, tmp_path) as bot:
        rec = bot.adapters["rec"]
        await rec.inject("one")
        await rec.inject("reset")  # not a command word here: a question
        await bot.submit(Inbound("cmd1", rec.thread(), "u1", "/reset", adapter="rec", command="reset"))
        await rec.inject("two")
        await bot.idle(5)
        texts = rec.texts()
        assert texts[0] == "turn 1" and texts[1] == "turn 2"
        assert "new conversation" in texts[2] and texts[3] == "turn 1"


async def test_questions_still_waiting_at_shutdown_are_answered_after_the_restart(tmp_path):
    async with running_bot(config(answer="{question}"), tmp_path, grace=0.1) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        backend.gate = asyncio.Event()
        await rec.inject("running")
        await rec.inject("waiting")
        await rec.wait_for(lambda: len(rec.calls) == 1)
    (text,) = rec.texts()
    assert "stopped while answering" in text  # the running answer is cut off, its text kept
    async with running_bot(config(answer="{question}"), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        await rec.wait_for(lambda: any(t == "waiting" for t in rec.texts()))
        await bot.idle(5)
        assert [q for _, q in backend.calls] == ["waiting"]  # the queued one is answered, nothing twice
        assert await bot.store.pending(rec.thread()) == []


async def test_a_turn_whose_store_is_out_of_reach_waits_and_is_answered_once_it_is_back(tmp_path, monkeypatch):
    """The store's database out of reach as a turn begins (PostgreSQL restarting): the turn is
    neither dropped nor left half-shown; its thread is taken up again and it is answered once."""
    monkeypatch.setattr(workers, "RETRY_AFTER", 0.05)
    async with running_bot({**config(answer="hello"), "dispatch": {"progress_delay": 0}}, tmp_path) as bot:
        store, rec = bot.store, bot.adapters["rec"]
        failures = {"active_session": 1, "start_turn": 1}

        def out_of_reach_once(name):
            call = getattr(store, name)

            def maybe(*args, **kwargs):
                if failures[name]:
                    failures[name] -= 1
                    raise StoreUnreachable("the database cannot be reached (a test)")
                return call(*args, **kwargs)
            return maybe

        for name in failures:
            monkeypatch.setattr(store, name, out_of_reach_once(name))
        assert await rec.inject("hi", event_id="E1")
        await rec.wait_for(lambda: rec.texts() == ["hello"])
        await bot.idle(5)
        assert failures == {"active_session": 0, "start_turn": 0}
        assert len(bot.backends["b"].calls) == 1
        assert rec.texts() == ["hello"]  # (the placeholder it shows once it runs, edited: none left behind)
        assert await store.pending(rec.thread("t1")) == []


async def test_one_bad_row_does_not_lose_the_rest_of_a_store_batch(tmp_path):
    from botkit.events import Inbound, ThreadKey
    from botkit.store import JournalEntry, SessionRecord
    from botkit.store.sqlite import SQLiteStore
    from botkit.turn import Answer

    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        thread = ThreadKey("t", "w", "c", "1")
        record = await store.active_session(thread, "b")
        await store.flush()
        bad, good = (JournalEntry(Inbound(e, thread, "u", "q", "a"), "b", "q") for e in ("bad", "good"))
        assert await store.admit(bad) and await store.admit(good)
        # a turn pointing at a session that does not exist breaks the foreign key...
        ghost = SessionRecord(999, thread, "b", None, 0.0, 0.0)
        await store.claim_event("e1")
        await store.close_turn(bad, ghost, Answer("x"))
        await store.close_turn(good, record, Answer("answer"))
        await store.flush()
        # ...but the rest of its batch is still written
        assert [t["event_id"] for t in await store.turns_of(record.id)] == ["good"]
        reopened = SQLiteStore(str(tmp_path / "s.db"))
    finally:
        await store.close()
    await reopened.open()
    try:
        assert not await reopened.claim_event("e1")
        assert await reopened.pending(thread) == []
    finally:
        await reopened.close()


async def test_many_threads_share_a_bounded_pool_of_workers_and_keep_their_order(tmp_path, monkeypatch):
    """More threads with work than worker tasks: the rest wait in line, none is dropped or
    reordered, and no more tasks live than the pool allows (the garbage collector's bill)."""
    monkeypatch.setattr("botkit.pipeline.workers.POOL_SIZE", 4)
    async with running_bot(config(answer="{question}", jitter=0.003), tmp_path) as bot:
        rec, backend, workers = bot.adapters["rec"], bot.backends["b"], bot.dispatcher.workers
        backend.gate = asyncio.Event()
        for n in range(3):
            for t in range(40):
                await rec.inject(f"t{t}-{n}", thread=f"T{t}")
        await asyncio.wait_for(_until(lambda: len(backend.calls) == 4), 5)
        assert len(workers.busy_threads()) == 40  # every thread with work is known, waiting or running
        assert sum(t.get_coro().__qualname__ == "ThreadWorkers._work" for t in asyncio.all_tasks()) == 4
        backend.gate.set()
        await bot.idle(10)
        assert len(backend.calls) == 120
        for t in range(40):
            assert [x for x in rec.texts() if x.startswith(f"t{t}-")] == [f"t{t}-{n}" for n in range(3)]


async def test_progress_is_shown_only_when_no_text_arrived_within_the_delay(tmp_path):
    async with running_bot({**config(answer="Answer to {question}."), "dispatch": {"progress_delay": 0.2}},
                           tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        await rec.inject("fast", event_id="E1")
        await bot.idle(5)
        assert [(kind, message.plain(), message.final) for kind, _, message in rec.calls] == [
            ("send", "Answer to fast.", True)]  # one platform call: no placeholder to edit

        backend.gate = asyncio.Event()
        await rec.inject("slow", event_id="E2")
        await rec.wait_for(lambda: len(rec.calls) == 2)  # the placeholder, while the backend still thinks
        assert rec.calls[1][2].status and not rec.calls[1][2].final
        backend.gate.set()
        await bot.idle(5)
        kinds = [(kind, message_id) for kind, message_id, _ in rec.calls[1:]]
        assert kinds == [("send", rec.calls[1][1]), ("edit", rec.calls[1][1])]  # the placeholder grew into the answer
        assert rec.texts() == ["Answer to fast.", "Answer to slow."]


async def test_an_answer_longer_than_the_cap_is_cut_there_with_a_notice(tmp_path):
    """A runaway backend must not fill the thread: past `dispatch.max_answer_chars` the stream
    is left, what fits is shown with the failure notice, and the turn is recorded as failed."""
    runaway = {**config(answer="0123456789" * 250, chunks=5), "dispatch": {"max_answer_chars": 1_000}}
    async with running_bot(runaway, tmp_path) as bot:
        rec = bot.adapters["rec"]
        assert await rec.inject("say everything", event_id="E1")
        await bot.idle(5)
        (message,) = rec.messages.values()
        assert message.text == "0123456789" * 100
        assert "longer than 1,000 characters" in message.plain() and message.final
        assert len(bot.backends["b"].calls) == 1
        [turn] = [t async for t in bot.store.iter_turns()]
        assert turn["status"] == "failed" and len(turn["answer"]) == 1_000


async def test_the_garbage_collector_is_tuned_while_bots_run_and_given_back_when_the_last_stops(tmp_path):
    before = gc.get_threshold()
    assert before[0] != _GC_YOUNG_THRESHOLD
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with running_bot(config(answer="hello"), tmp_path / "a"):
        assert gc.get_threshold() == (_GC_YOUNG_THRESHOLD, *before[1:])
        async with running_bot(config(answer="hello"), tmp_path / "b"):
            assert gc.get_threshold()[0] == _GC_YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == _GC_YOUNG_THRESHOLD  # one bot still runs
    assert gc.get_threshold() == before
