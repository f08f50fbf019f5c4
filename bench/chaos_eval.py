"""What bench/chaos.py concludes from what the fakes recorded: the screen and the backend's log.

The screen is rebuilt from the fake Slack's calls: every `chat.postMessage` starts a bot
message, every `chat.update` gives it a new state, in the order Slack received them (the
last one is what people see). Each question is then judged by the bot messages that
belong to it: a message belongs to the question whose answer text it ever showed, and a
message that never showed answer text (a placeholder, a notice) to the earliest question
of its thread asked before it and not yet covered by another message.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from chaos_fakes import Ask, answer_for

#: what the Slack adapter shows until the first answer text (its placeholder "_thinking…_")
PLACEHOLDER = "thinking…"
#: a notice saying an answer was cut off
INTERRUPTED = "interrupted"
#: a notice asking the person to ask again
ASK_AGAIN = "ask again"

_ANSWER_OF = re.compile(r"Answer to (\S+?):")


@dataclass(slots=True)
class Question:
    """One question a person asks: its thread, its place in that thread, and its delivery."""

    thread: int
    index: int
    text: str
    event_id: str
    #: how many Slack calls the fake had seen when the question was first sent (None: never sent)
    sent_at: int | None = None
    acked: bool = False
    acked_before_kill: bool = False


@dataclass(slots=True)
class State:
    """What a bot message read after one call: answer body, notices around it, who sent it."""

    body: str
    notes: str
    at: int
    process: str

    @property
    def everything(self) -> str:
        return f"{self.body}\n{self.notes}"


@dataclass(slots=True)
class Message:
    """A bot message and every state it went through, in the order Slack received them."""

    ts: str
    thread_ts: str
    states: list[State]
    question: Question | None = None

    @property
    def final(self) -> State:
        return self.states[-1]

    @property
    def answers(self) -> str | None:
        """The question whose answer text this message ever showed."""
        for state in self.states:
            if match := _ANSWER_OF.search(state.body):
                return match.group(1)
        return None

    @property
    def stuck(self) -> bool:
        """Still reading the progress placeholder, or nothing at all."""
        final = self.final
        return PLACEHOLDER in final.body or not final.everything.strip()

    @property
    def erased(self) -> bool:
        """Some answer text it showed was later taken away."""
        shown = ""
        for state in self.states:
            if shown and shown not in state.body:
                return True
            if state.body.strip() and PLACEHOLDER not in state.body:
                shown = state.body
        return False


def _shown(params: dict[str, Any]) -> tuple[str, str]:
    """(answer body, notices) of a chat.postMessage/chat.update: markdown (or section)
    blocks are the body, context blocks the notices; without blocks, the text is the body."""
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not blocks:
        return params.get("text") or "", ""
    body = "".join(b["text"] if b.get("type") == "markdown" else b["text"].get("text", "")
                   for b in blocks if b.get("type") in ("markdown", "section") and b.get("text"))
    notes = "\n".join(e.get("text", "") for b in blocks if b.get("type") == "context" for e in b.get("elements", []))
    return body, notes


class Screen:
    """The bot's messages as Slack shows them, built incrementally from the fake's calls."""

    def __init__(self, token_prefix: str) -> None:
        self.token_prefix = token_prefix
        self.messages: dict[str, Message] = {}  # ts -> message, in posting order
        self.seen = 0

    def update(self, calls: Sequence[Any]) -> bool:
        """Take in the calls not seen yet; True if a bot message changed."""
        changed = False
        for at in range(self.seen, len(calls)):
            call = calls[at]
            if call.method not in ("chat.postMessage", "chat.update") or not call.response.get("ok"):
                continue
            process = (call.token or "").removeprefix(self.token_prefix)
            state = State(*_shown(call.params), at, process)
            ts = call.response.get("ts") or call.params.get("ts")
            if call.method == "chat.postMessage":
                self.messages[ts] = Message(ts, call.params.get("thread_ts") or "", [state])
            elif ts in self.messages:
                self.messages[ts].states.append(state)
            changed = True
        self.seen = len(calls)
        return changed


@dataclass(slots=True)
class Counts:
    """The figures of a run (and, added up, of all runs). The last five are failures."""

    tried: int = 0
    acked: int = 0
    answered: int = 0
    marked: int = 0
    re_answered: int = 0
    told: int = 0
    stuck: int = 0
    erased: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0

    FAILURES = ("stuck", "erased", "lost", "duplicated", "out_of_order")

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def assign(screen: Screen, questions: Iterable[Question], roots: dict[str, int]) -> None:
    """Say which question each bot message belongs to (see the module docstring).

    `roots` maps a thread's root ts to the thread number."""
    by_text = {q.text: q for q in questions}
    by_thread: dict[int, list[Question]] = defaultdict(list)
    for q in by_text.values():
        by_thread[q.thread].append(q)
    covered: set[str] = set()
    for message in screen.messages.values():
        message.question = by_text.get(message.answers or "")
        if message.question is not None:
            covered.add(message.question.text)
    for message in screen.messages.values():
        thread = roots.get(message.thread_ts)
        if message.question is not None or thread is None:
            continue
        posted = message.states[0].at
        waiting = [q for q in sorted(by_thread[thread], key=lambda q: q.index)
                   if q.sent_at is not None and q.sent_at <= posted and q.text not in covered]
        if waiting:
            message.question = waiting[0]
            covered.add(waiting[0].text)


def unresolved(screen: Screen, questions: Iterable[Question], roots: dict[str, int]) -> int:
    """Acked questions not yet answered, marked or told, plus messages still stuck: the
    run has settled when this is 0."""
    assign(screen, questions, roots)
    resolved = {m.question.text for m in screen.messages.values() if m.question is not None and _resolves(m)}
    open_questions = sum(1 for q in questions if q.acked and q.text not in resolved)
    return open_questions + sum(1 for m in screen.messages.values() if m.stuck)


def _complete(message: Message) -> bool:
    return message.question is not None and answer_for(message.question.text) in message.final.body


def _marked(message: Message) -> bool:
    return INTERRUPTED in message.final.everything.lower() and not message.erased


def _told(message: Message) -> bool:
    return ASK_AGAIN in message.final.everything.lower()


def _resolves(message: Message) -> bool:
    return _complete(message) or _marked(message) or _told(message)


def _overtaken(order: list[Question]) -> set[str]:
    """Questions that something asked later in their thread went ahead of."""
    late: set[str] = set()
    highest: dict[int, int] = {}
    for question in order:
        if question.index < highest.get(question.thread, -1):
            late.add(question.text)
        highest[question.thread] = max(highest.get(question.thread, -1), question.index)
    return late


def _describe(message: Message) -> str:
    """A bot message in a finding: its ts and the states it went through, shortened."""
    def short(state: State) -> str:
        text = " ".join(state.everything.split())
        return repr(text if len(text) <= 60 else text[:28] + "…" + text[-28:])
    states = [short(s) for s in message.states]
    if len(states) > 4:
        states[1:-2] = ["…"]
    return f"message {message.ts} in thread {message.thread_ts}: " + " -> ".join(states)


def evaluate(screen: Screen, questions: list[Question], roots: dict[str, int], asks: list[Ask], *,
             killed: str, crash: bool) -> tuple[Counts, list[str]]:
    """The run's figures, and one line per failure saying what went wrong where.

    `killed` names the process that was killed. An answer is re-answered when another
    process gave it to a question acked before the kill in a thread the killed process
    had: every thread when `crash` (it was the only process), else the threads where the
    kill cut off one of its backend requests (it was answering there)."""
    assign(screen, questions, roots)
    by_text = {q.text: q for q in questions}
    messages: dict[str, list[Message]] = defaultdict(list)
    for message in screen.messages.values():
        if message.question is not None:
            messages[message.question.text].append(message)
    asked = [(by_text[a.question], a.process) for a in asks if a.question in by_text]
    askers: dict[str, list[str]] = defaultdict(list)
    for q, process in asked:
        askers[q.text].append(process)
    cut_off = {by_text[a.question].thread for a in asks if a.process == killed and not a.finished}
    killed_had = {q.thread for q in questions if crash or q.thread in cut_off}

    counts = Counts()
    findings: list[str] = []
    for message in screen.messages.values():
        owner = message.question.text if message.question else "no question"
        if message.stuck:
            counts.stuck += 1
            findings.append(f"stuck ({owner}) {_describe(message)}")
        if message.erased:
            counts.erased += 1
            findings.append(f"erased ({owner}) {_describe(message)}")
    for q in questions:
        mine = messages.get(q.text, [])
        complete = [m for m in mine if _complete(m)]
        counts.tried += q.sent_at is not None
        if len(complete) > 1 or len(askers[q.text]) > 1:
            counts.duplicated += 1
            findings.append(f"duplicated {q.text}: {len(complete)} complete answers, backend asked by "
                            f"{', '.join(askers[q.text])}")
        if not q.acked:
            continue
        counts.acked += 1
        if complete:
            counts.answered += 1
            by = complete[0].final.process
            counts.re_answered += by != killed and q.acked_before_kill and q.thread in killed_had
        elif any(_marked(m) for m in mine):
            counts.marked += 1
        elif any(_told(m) for m in mine):
            counts.told += 1
        else:
            counts.lost += 1
            when = "before" if q.acked_before_kill else "after"
            seen = "; ".join(_describe(m) for m in mine) or "no message"
            findings.append(f"lost {q.text} (acked {when} the kill, backend asked by "
                            f"{', '.join(askers[q.text]) or 'nobody'}): {seen}")

    first_asked = list({q.text: q for q, _ in asked}.values())
    shown = sorted((m for m in screen.messages.values() if m.answers),
                   key=lambda m: next(s.at for s in m.states if _ANSWER_OF.search(s.body)))
    first_shown = list({q.text: q for q in (m.question for m in shown) if q is not None}.values())
    late = {"backend": _overtaken(first_asked), "screen": _overtaken(first_shown)}
    for q in questions:
        where = [name for name, texts in late.items() if q.text in texts]
        if where:
            counts.out_of_order += 1
            findings.append(f"out of order {q.text}: a later question of its thread went first ({', '.join(where)})")
    return counts, findings
