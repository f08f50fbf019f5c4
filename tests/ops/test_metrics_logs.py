"""/metrics after real turns, /readyz, and what the log shows (and never shows)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import time

import aiohttp
import yaml

from botkit.events import Failed
from botkit.testing import running_bot
from botkit_plugins.feedback.votes import Votes

from .conftest import with_


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample in the text exposition format."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        if metric.split("{")[0] == name:
            got = ",".join(sorted(metric[metric.find("{") + 1:-1].split(","))) if "{" in metric else ""
            if got == want:
                return float(value)
    return None


async def test_metrics_count_turns_latency_429s_errors_sessions_fcs_and_feedback(clock, tmp_path):
    async with running_bot(with_(metrics={"enabled": True}), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["kb"]
        rec.fail_next = [0.0]  # one 429 from the platform, waited out by the renderer
        await rec.inject("q1", thread="t1")
        await bot.idle(5)
        backend.script = lambda session, question: [Failed("upstream down")]
        await rec.inject("q2", thread="t2")
        await bot.idle(5)
        turn = (await bot.store.turns_of((await bot.store.list_sessions(channel="c1"))[-1]["id"]))[0]
        await Votes(bot.store).record(turn["event_id"], "u2", "down", None, time.time())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bot.server.url}/metrics") as response:
                assert response.status == 200 and response.content_type == "text/plain"
                text = await response.text()

    assert sample(text, "botkit_turns_total", adapter="rec", backend="kb", outcome="complete") == 1
    assert sample(text, "botkit_turns_total", adapter="rec", backend="kb", outcome="failed") == 1
    assert sample(text, "botkit_backend_errors_total", backend="kb", kind="failed") == 1
    assert sample(text, "botkit_rate_limited_total", platform="slack", adapter="rec") == 1
    assert sample(text, "botkit_time_to_first_text_seconds_count", adapter="rec", backend="kb") == 1
    assert sample(text, "botkit_turn_duration_seconds_count", adapter="rec", backend="kb") == 2
    assert sample(text, "botkit_edits_per_answer_count", adapter="rec") == 2
    assert sample(text, "botkit_factual_consistency_count", backend="kb") == 1
    assert sample(text, "botkit_factual_consistency_bucket", backend="kb", le="0.2") == 1
    assert sample(text, "botkit_queue_depth") == 0
    assert sample(text, "botkit_sessions_active") == 2
    assert sample(text, "botkit_feedback", value="down") == 1


async def test_readyz_fails_while_the_store_or_an_adapter_is_down(tmp_path, monkeypatch):
    async with running_bot(with_(server={"host": "127.0.0.1", "port": 0, "enabled": True}), tmp_path) as bot:
        async with aiohttp.ClientSession() as http:
            async def ready() -> int:
                async with http.get(f"{bot.server.url}/readyz") as response:
                    return response.status

            assert await ready() == 200
            assert (await (await http.get(f"{bot.server.url}/metrics")).text()).startswith("# HELP")
            async def down() -> bool:
                return False

            monkeypatch.setattr(bot.store, "ping", down)
            assert await ready() == 503
            monkeypatch.undo()
            monkeypatch.setattr(type(bot.adapters["rec"]), "ready", property(lambda self: False))
            assert await ready() == 503


LEAKY = '''
import logging
from pydantic import SecretStr
from botkit import hookimpl
from botkit.logs import content
from botkit.testing import FakeBackend, FakeBackendConfig

log = logging.getLogger("leaky")

class LeakyConfig(FakeBackendConfig):
    api_key: SecretStr

class Leaky(FakeBackend):
    async def stream(self, session, question):
        log.info("calling upstream with key %s about %s", self.config.api_key.get_secret_value(),
                 content(question.text))
        async for event in super().stream(session, question):
            yield event

@hookimpl
def botkit_register_backends(register):
    register("leaky", Leaky, LeakyConfig)
'''
SECRET = "sk-very-secret-0123456789"
QUESTION = "What is the launch code for project nightingale?"
ANSWER = "The answer stays between us"


async def run_console_bot(tmp_path, log: dict) -> tuple[str, str]:
    """`botkit run` with the console adapter, one piped question; returns (stdout, stderr)."""
    (tmp_path / "leaky.py").write_text(textwrap.dedent(LEAKY))
    config = {"plugins": ["botkit.testing", "./leaky.py"], "store": {"url": "sqlite:///bot.db"}, "log": log,
              "adapters": {"console": {}},
              "backends": {"kb": {"type": "leaky", "api_key": "${LEAKY_KEY}", "answer": ANSWER, "chunks": 3}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run", "-c", str(tmp_path / "config.yaml"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**__import__("os").environ, "LEAKY_KEY": SECRET}, cwd=tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(f"{QUESTION}\n".encode()), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


async def test_json_logs_parse_carry_the_thread_and_hide_secrets_and_texts(tmp_path):
    out, err = await run_console_bot(tmp_path, {"format": "json", "level": "DEBUG"})
    assert ANSWER in out
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    turn_lines = [line for line in lines if line["logger"] == "leaky"]
    assert len(turn_lines) == 1
    assert turn_lines[0]["thread"].startswith("console:") and turn_lines[0]["turn"]
    assert "***" in turn_lines[0]["message"] and f"<{len(QUESTION)} chars>" in turn_lines[0]["message"]
    assert all("thread" not in line for line in lines if line["logger"] == "botkit" and "started" in line["message"])
    for forbidden in (SECRET, QUESTION, "launch code", ANSWER):
        assert forbidden not in err


async def test_message_texts_are_logged_only_when_asked_and_secrets_never(tmp_path):
    _, err = await run_console_bot(tmp_path, {"format": "text", "content": True})
    line = next(line for line in err.splitlines() if " leaky: " in line)
    assert QUESTION in line and "[thread=console:" in line and "turn=" in line
    assert SECRET not in err
