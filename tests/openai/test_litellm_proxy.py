"""The OpenAI-compatible backend against a real OpenAI-compatible server: LiteLLM's proxy.

The proxy runs a mock model (`mock_response`, no upstream) from its own virtualenv, which the
test setup creates once in the tool cache, so LiteLLM's dependencies never meet botkit's. Each
question goes through the real bot (dispatcher, store, renderer) with streaming on; the mock's
answer repeats the user messages the proxy received, so the history botkit sent is visible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.testing import free_port, running_bot

LITELLM = "litellm[proxy]==1.108.7"
MASTER_KEY = "sk-botkit-litellm-test"
FILES = Path(__file__).with_name("litellm")


def _install(tools) -> Path:
    """The proxy's executable, installed into a virtualenv of its own on first use."""
    venv = tools.cache / ("litellm-" + LITELLM.partition("==")[2])
    executable = venv / "bin" / "litellm"
    done = venv / ".installed"
    if done.exists() and executable.exists():
        return executable
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", LITELLM],
                         capture_output=True, text=True, timeout=1200)
    if pip.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        tools.missing(f"could not install {LITELLM} into its own virtualenv: {pip.stderr[-600:]}")
    done.write_text(LITELLM + "\n")
    return executable


@pytest.fixture(scope="module")
def proxy_url(tools, tmp_path_factory):
    executable = _install(tools)
    workdir = tmp_path_factory.mktemp("litellm")
    for name in ("config.yaml", "mock_hooks.py"):
        shutil.copy(FILES / name, workdir / name)
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}  # no fetch of the price list
    proxy = tools.spawn([str(executable), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port),
                         "--telemetry", "False"], cwd=workdir, env=env)
    proxy.wait_for(r"Uvicorn running on http://127\.0\.0\.1", 180)
    yield f"http://127.0.0.1:{port}/v1"
    proxy.stop()


def deployment(url: str, *, model: str = "mock-gpt") -> dict:
    return {"adapters": {"rec": {"type": "recording"}},
            "backends": {"llm": {"type": "openai", "base_url": url, "api_key": MASTER_KEY, "model": model,
                                 "system_prompt": "Be brief.", "retry": {"attempts": 3, "backoff": 0.2}}}}


async def answers(config: dict, tmp_path: Path, *questions: str, thread_of: dict[str, str] | None = None) -> list[str]:
    """Ask each question in turn through a running bot (thread "t1" unless `thread_of` says
    otherwise), each answered before the next; every message as it reads at the end."""
    async with running_bot(config, tmp_path) as bot:
        rec = bot.adapters["rec"]
        for question in questions:
            await rec.inject(question, thread=(thread_of or {}).get(question, "t1"))
            await bot.idle(30)
        return rec.texts()


async def test_streamed_answers_carry_the_threads_history(proxy_url, tmp_path):
    texts = await answers(deployment(proxy_url), tmp_path, "What is botkit?", "Does it stream?", "A new thread?",
                          thread_of={"A new thread?": "t2"})
    assert texts == ["Heard 1: What is botkit?", "Heard 2: What is botkit? | Does it stream?",
                     "Heard 1: A new thread?"]


async def test_a_rate_limit_is_retried_and_then_answered(proxy_url, tmp_path):
    texts = await answers(deployment(proxy_url), tmp_path, "[429 once] still there?")
    assert texts == ["Heard 1: [429 once] still there? (request 2)"]


@pytest.mark.parametrize(("question", "notice"), [
    ("[429] again?", "the OpenAI-compatible server is rate limiting requests; please try again in a moment"),
    ("[500] broken?", "the OpenAI-compatible server is unavailable right now (HTTP 500); please try again"),
])
async def test_persistent_errors_end_in_a_readable_notice(proxy_url, tmp_path, question, notice):
    texts = await answers(deployment(proxy_url), tmp_path, question)
    assert texts == [f"Sorry, I couldn't finish this answer: {notice}"]


async def test_an_unknown_model_is_named_in_the_notice(proxy_url, tmp_path):
    [text] = await answers(deployment(proxy_url, model="no-such-model"), tmp_path, "Hello?")
    assert text.startswith("Sorry, I couldn't finish this answer: the OpenAI-compatible server refused the "
                           "request (HTTP 400): /chat/completions: Invalid model name passed in model=no-such-model")
    assert MASTER_KEY not in text
