"""The `jsonqa` backend: answers from a JSON file of question/answer pairs, with its source.

    [{"question": "How long do refunds take?", "answer": "Five working days.",
      "source": {"title": "Refund policy", "url": "https://example.com/refunds"}}]

The pair whose question shares the most words with the one asked wins (at least
`min_overlap` of its words); its answer is streamed in `chunks` pieces.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from botkit import AnswerEvent, Backend, BackendError, Done, Question, Section, Session, Source, Sources, TextDelta
from botkit.bot import Bot


class JsonQAConfig(Section):
    #: the JSON file; a relative path starts at the config file's folder
    path: Path
    #: how many pieces an answer is streamed in
    chunks: int = Field(3, ge=1, le=50)
    #: the share of a stored question's words the asked one must contain
    min_overlap: float = Field(0.5, gt=0, le=1)
    not_found: str = "Sorry, I don't know that one."


class Link(BaseModel):
    title: str
    url: str | None = None


class Pair(BaseModel):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    source: Link | None = None


PAIRS = TypeAdapter(list[Pair])


def words(text: str) -> set[str]:
    """The lower-cased words of `text`, for comparing questions."""
    return set(re.findall(r"\w+", text.lower()))


def pieces(text: str, count: int) -> list[str]:
    """`text` in about `count` pieces, cut before spaces."""
    tokens = re.findall(r"\s*\S+", text)
    size = -(-len(tokens) // count)
    return ["".join(tokens[i:i + size]) for i in range(0, len(tokens), size)]


class JsonQABackend(Backend):
    config: JsonQAConfig

    def __init__(self, name: str, config: JsonQAConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.pairs: list[Pair] = []

    async def start(self) -> None:
        path = self.config.path.expanduser()
        if not path.is_absolute():
            path = self.bot.config.base_dir / path
        try:
            self.pairs = PAIRS.validate_json(path.read_bytes())
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc.strerror}") from None
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise BackendError(f"{path} is not a list of question/answer pairs: {where}: {problem['msg']}") from None

    def match(self, text: str) -> Pair | None:
        """The pair whose question the asked `text` covers best, if it covers enough of it."""
        asked = words(text)
        best, score = None, 0.0
        for pair in self.pairs:
            known = words(pair.question)
            share = len(known & asked) / len(known) if known else 0.0
            if share > score:
                best, score = pair, share
        return best if score >= self.config.min_overlap else None

    async def stream(self, session: Session, question: Question) -> AsyncIterator[AnswerEvent]:
        pair = self.match(question.text)
        if pair is None:
            yield TextDelta(self.config.not_found)
            yield Done()
            return
        text = pair.answer
        if pair.source is not None:
            yield Sources([Source(1, pair.source.title, pair.source.url)])
            text += " [1]"
        for piece in pieces(text, self.config.chunks):
            yield TextDelta(piece)
        yield Done()
