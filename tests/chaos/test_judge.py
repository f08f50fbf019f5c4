"""bench/chaos_eval.py: what counts as answered, marked, told, stuck, erased, lost,
duplicated and out of order, judged from scripted Slack calls and backend requests."""

from __future__ import annotations

from typing import Any

from botkit_plugins.slack.testing import Call
from chaos_eval import Counts, Question, Screen, evaluate
from chaos_fakes import Ask, answer_for

ROOT = "1600000000.000100"
NOTICE = "This answer was interrupted when the bot restarted."


def shown(body: str, notes: tuple[str, ...]) -> dict[str, Any]:
    blocks = [{"type": "markdown", "text": body}]
    blocks += [{"type": "context", "elements": [{"type": "mrkdwn", "text": note}]} for note in notes]
    return {"channel": "C1", "text": body or " ", "blocks": blocks}


def post(ts: str, body: str = "_thinking…_", *notes: str, by: str = "p0") -> Call:
    return Call("chat.postMessage", {**shown(body, notes), "thread_ts": ROOT}, f"xoxb-chaos-{by}",
                response={"ok": True, "ts": ts})


def update(ts: str, body: str, *notes: str, by: str = "p0") -> Call:
    return Call("chat.update", {**shown(body, notes), "ts": ts}, f"xoxb-chaos-{by}", response={"ok": True, "ts": ts})


def judge(calls: list[Call], asks: list[Ask] | None = None, *, questions: int = 2,
          crash: bool = True) -> tuple[Counts, list[str]]:
    """Two questions in one thread, both acked before p0 was killed (and restarted when `crash`)."""
    qs = [Question(0, i, f"r1-t000-q{i}", f"Ev{i}", sent_at=0, acked=True, acked_before_kill=True)
          for i in range(questions)]
    screen = Screen("xoxb-chaos-")
    screen.update(calls)
    if asks is None:
        asks = [Ask(q.text, "p0") for q in qs]
    return evaluate(screen, qs, {ROOT: 0}, asks, killed="p0", crash=crash)


def answer(i: int) -> str:
    return answer_for(f"r1-t000-q{i}")


def test_complete_answers_in_order_are_answered_and_nothing_fails():
    counts, findings = judge([post("1"), update("1", answer(0)[:25]), update("1", answer(0)),
                              post("2"), update("2", answer(1))])
    assert counts == Counts(tried=2, acked=2, answered=2) and findings == []


def test_an_answer_finished_by_the_restarted_process_is_re_answered():
    counts, _ = judge([post("1"), update("1", answer(0)), post("2", by="p1"), update("2", answer(1), by="p1")],
                      asks=[Ask("r1-t000-q0", "p0"), Ask("r1-t000-q1", "p1")])
    assert (counts.answered, counts.re_answered) == (2, 1)


def test_a_replica_answering_in_a_thread_whose_answer_the_kill_cut_off_re_answers():
    calls = [post("1"), update("1", answer(0)[:25]), update("1", answer(0)[:25], NOTICE, by="p1"),
             post("2", by="p1"), update("2", answer(1), by="p1")]
    cut_off, _ = judge(calls, [Ask("r1-t000-q0", "p0"), Ask("r1-t000-q1", "p1")], crash=False)
    finished, _ = judge(calls, [Ask("r1-t000-q0", "p0", finished=True), Ask("r1-t000-q1", "p1")], crash=False)
    assert (cut_off.re_answered, finished.re_answered) == (1, 0)


def test_text_kept_with_an_interrupted_notice_is_marked():
    counts, findings = judge([post("1"), update("1", answer(0)[:25]), update("1", answer(0)[:25], NOTICE, by="p1"),
                              post("2"), update("2", answer(1))])
    assert (counts.answered, counts.marked, counts.erased, counts.lost) == (1, 1, 0, 0), findings


def test_text_replaced_by_the_notice_is_erased_and_the_question_only_told():
    erasing = update("1", "", NOTICE + " Please ask again.", by="p1")
    counts, findings = judge([post("1"), update("1", answer(0)[:25]), erasing, post("2"), update("2", answer(1))])
    assert (counts.erased, counts.marked, counts.told) == (1, 0, 1)
    assert findings[0].startswith("erased (r1-t000-q0)")


def test_a_placeholder_left_behind_is_stuck_and_its_question_lost():
    counts, findings = judge([post("1"), post("2"), update("2", answer(1))])
    assert (counts.stuck, counts.lost, counts.answered) == (1, 1, 1)
    assert [f.split()[0] for f in findings] == ["stuck", "lost"]


def test_a_placeholder_marked_interrupted_belongs_to_the_earliest_open_question():
    counts, _ = judge([post("1"), update("1", "", NOTICE, by="p1"),
                       post("2", by="p1"), update("2", answer(1), by="p1")])
    assert (counts.marked, counts.answered, counts.stuck, counts.lost) == (1, 1, 0, 0)


def test_an_acked_question_with_nothing_on_screen_is_lost():
    counts, findings = judge([post("1"), update("1", answer(0))])
    assert counts.lost == 1 and findings == ["lost r1-t000-q1 (acked before the kill, backend asked by p0): no message"]


def test_two_complete_answers_or_two_backend_requests_are_duplicates():
    twice_on_screen, _ = judge([post("1"), update("1", answer(0)), post("2", by="p1"), update("2", answer(0), by="p1")],
                               questions=1)
    twice_asked, _ = judge([post("1"), update("1", answer(0))], [Ask("r1-t000-q0", "p0"), Ask("r1-t000-q0", "p1")],
                           questions=1)
    assert twice_on_screen.duplicated == 1 and twice_asked.duplicated == 1


def test_a_later_question_asked_or_shown_first_is_out_of_order():
    asked_late, _ = judge([post("1"), update("1", answer(0)), post("2"), update("2", answer(1))],
                          [Ask("r1-t000-q1", "p0"), Ask("r1-t000-q0", "p0")])
    shown_late, findings = judge([post("2"), update("2", answer(1)), post("1"), update("1", answer(0))])
    assert asked_late.out_of_order == 1 and shown_late.out_of_order == 1
    assert findings == ["out of order r1-t000-q0: a later question of its thread went first (screen)"]
