"""The console at a terminal (a real pty): line editing and history, Ctrl-C stops the answer,
Ctrl-C at the prompt leaves with 130, Ctrl-D with 0, and log lines never land inside an answer."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

PLUGIN = '''
import asyncio, logging
from botkit import Backend, Done, TextDelta, hookimpl
from botkit.config import Section

class ChattyConfig(Section):
    pass

class Chatty(Backend):
    """Logs a warning between its words; "slow" then waits (a backend that takes its time)."""
    async def stream(self, session, question):
        for word in ("alpha ", "beta ", "gamma ", "delta"):
            yield TextDelta(word)
            logging.getLogger("chatty").warning("between words")
            await asyncio.sleep(0.02)
        if question.text == "slow":
            yield TextDelta(" waiting")
            await asyncio.sleep(60)
        yield Done()

@hookimpl
def botkit_register_backends(register):
    register("chatty", Chatty, ChattyConfig)
'''


@pytest.fixture
def console(tmp_path: Path):
    (tmp_path / "chatty.py").write_text(PLUGIN)
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""
        plugins: [./chatty.py]
        store: {{url: "sqlite:///:memory:"}}
        adapters: {{console: {{history_file: {tmp_path / "history"}}}}}
        backends: {{b: {{type: chatty}}}}
        log: {{level: INFO}}
        """))
    child = pexpect.spawn(sys.executable, ["-m", "botkit.cli", "run", "-c", "config.yaml"], cwd=str(tmp_path),
                          env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1",
                               "HOME": str(tmp_path)}, timeout=30, encoding="utf-8", dimensions=(40, 200))
    child.expect_exact("you>")
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_logs_wait_for_the_answer_and_history_recalls_a_question(console):
    console.sendline("hello")
    console.expect_exact("alpha beta gamma delta")  # the log lines did not split it
    console.expect_exact("between words")  # ... they come after it, above the next prompt
    console.expect_exact("you>")
    console.send("\x1b[A")  # arrow up: the last question, from the history
    console.expect_exact("hello")
    console.send("\r")
    console.expect_exact("alpha beta gamma delta")
    console.expect_exact("you>")
    console.sendeof()  # Ctrl-D leaves
    console.expect(pexpect.EOF)
    console.close()
    assert console.exitstatus == 0


def test_ctrl_c_stops_the_answer_then_leaves_at_the_prompt(console):
    console.sendline("slow")
    console.expect_exact("waiting")
    console.sendintr()  # Ctrl-C while the answer streams: it stops, the prompt comes back
    console.expect_exact("cancelled")
    console.expect_exact("you>")
    console.sendline("hello")  # the same thread goes on
    console.expect_exact("alpha beta gamma delta")
    console.expect_exact("you>")
    console.sendintr()  # Ctrl-C at the prompt leaves
    console.expect(pexpect.EOF)
    console.close()
    assert console.exitstatus == 130
