"""From a question (and the thread's earlier questions) to weighted search terms.

Terms are letters and digits only, so nothing the user types can be read as FTS5 syntax
(quotes, colons, `AND`/`OR`/`NEAR`, `-`, `*`, parentheses); each term is then quoted in
the MATCH expression as a string literal. Follow-ups ("how do I configure it?") borrow
the earlier questions' terms at a lower weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: weight of a term borrowed from an earlier question (the question's own terms weigh 1)
HISTORY_WEIGHT = 0.5
#: a question with fewer terms than this, or with a pronoun, is read as a follow-up
SHORT_QUESTION = 3
MAX_TERMS = 16

_WORD = re.compile(r"[^\W_]+")

#: words that refer back to something said before
_REFERRING = frozenset("it its it's this that these those they them their there one ones".split())
_LEADING_FOLLOW_UP = ("and ", "also ", "what about ", "how about ", "then ")

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before being
below between both but by can cannot could couldn did didn do does doesn doing don down during each else
ever few for from further get gets got had hadn has hasn have haven having he her here hers herself him
himself his how i if in into is isn it its itself just let lets like ll me might more most much must my
myself near no nor not now of off on once one ones only or other ought our ours ourselves out over own
please re really s same shall she should shouldn so some such t tell than thank thanks that the their
theirs them themselves then there these they this those through to too under until up ve very want was
wasn way we were weren what when where which while who whom why will with won would wouldn you your
yours yourself yourselves
""".split())


@dataclass(slots=True)
class Query:
    """Search terms with weights; `own` counts the terms of the question itself."""

    terms: dict[str, float] = field(default_factory=dict)
    own: int = 0

    @property
    def empty(self) -> bool:
        return not self.terms


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def terms(text: str) -> list[str]:
    """The content words of `text`, lower-cased, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOP_WORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def is_follow_up(question: str) -> bool:
    """Does the question lean on what was asked before?"""
    text = question.strip().lower()
    return (len(terms(text)) < SHORT_QUESTION or text.startswith(_LEADING_FOLLOW_UP)
            or any(w in _REFERRING for w in words(text)))


def build_query(question: str, earlier: list[str]) -> Query:
    """The question's terms (weight 1), plus, for a follow-up, the earlier questions'."""
    own = terms(question)[:MAX_TERMS]
    query = Query({t: 1.0 for t in own}, len(own))
    if earlier and is_follow_up(question):
        for text in reversed(earlier):  # the most recent question first
            for term in terms(text):
                if len(query.terms) >= MAX_TERMS:
                    return query
                query.terms.setdefault(term, HISTORY_WEIGHT)
    return query


def match_expression(terms: list[str]) -> str:
    """An FTS5 MATCH expression that finds any of `terms` (each a quoted string literal)."""
    return " OR ".join(f'"{t}"' for t in terms)
