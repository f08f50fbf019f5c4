"""Fixtures: a fake Vectara on loopback and backends pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from botkit.backends import Question, Session
from botkit.events import AnswerEvent, ThreadKey
from botkit_plugins.vectara.backend import VectaraBackend
from botkit_plugins.vectara.config import VectaraConfig
from botkit_plugins.vectara.fake import FakeVectara

FIXTURES = Path(__file__).with_name("fixtures")
API_KEY = "zqt_SECRET-api-key-0123456789"
THREAD = ThreadKey("test", "w1", "c1", "t1")


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
async def fake() -> AsyncIterator[FakeVectara]:
    async with FakeVectara(api_key=API_KEY) as server:
        yield server


def settings(fake: FakeVectara, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"api_key": API_KEY, "base_url": fake.url,
                            "corpora": [{"corpus_key": "robotics-papers"}]}
    data.update(overrides)
    return data


@pytest.fixture
async def make_backend(fake: FakeVectara, delays: list[float]) -> AsyncIterator[Callable[..., Any]]:
    """`await make_backend(**config)`: a started backend (closed after the test); `backend.sleeps`
    are the waits between retries its transport (`botkit.http`) took, recorded instead of slept."""
    started: list[VectaraBackend] = []

    async def make(**overrides: Any) -> VectaraBackend:
        backend = VectaraBackend("kb", VectaraConfig.model_validate(settings(fake, **overrides)), None)
        backend.sleeps = delays
        await backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        await backend.close()


async def ask(backend: VectaraBackend, text: str, session_id: str | None = None) -> list[AnswerEvent]:
    return [e async for e in backend.stream(Session(THREAD, "kb", session_id), Question(text, "u1"))]
