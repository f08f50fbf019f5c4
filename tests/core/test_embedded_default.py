"""The README's first command: `botkit run` with no config answers from the embedded default
(console adapter, local backend, an in-memory store) — as a process, as a newcomer runs it."""

from __future__ import annotations

import asyncio
import sys


async def test_botkit_run_without_a_config_answers_a_piped_question(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run", cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(b"How do I add a Slack adapter?\n"), 60)
    assert proc.returncode == 0, err.decode()
    answer = out.decode()
    assert "Slack" in answer and "[1]" in answer and "Sources" in answer
    assert "ERROR" not in err.decode() and "Traceback" not in err.decode()
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran: the store is in memory
