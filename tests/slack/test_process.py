"""`botkit run -c <config>` as a process, Slack pointed at the loopback fake: a signed mention is answered."""

from __future__ import annotations

import asyncio
import signal
import sys

from botkit.testing import read_until, write_config

from .conftest import TS, bot_config, mention, post_event

TOKEN = "xoxb-process-secret-token"


async def test_botkit_run_answers_a_signed_mention(fake, tmp_path):
    config = bot_config(fake, slack={"bot_token": TOKEN}, backend={"answer": "From a real process."})
    path = write_config(config, tmp_path)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "botkit.cli", "run", "-c", str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []
    try:
        listening = read_until(proc.stdout, r"HTTP server listening on (http://\S+)", output)
        url = (await asyncio.wait_for(listening, 20)).group(1)
        await fake.wait_for("auth.test", timeout=20)  # the adapter starts right after the server
        status, _ = await post_event(url, mention())
        assert status == 200
        await fake.wait_for(lambda f: any(u["text"] == "From a real process." for u in f.of("chat.update")), timeout=10)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 20)
        output.append(rest.decode())
    assert proc.returncode == 0, "".join(output)
    assert fake.of("chat.postMessage")[0]["thread_ts"] == TS
    assert {c.token for c in fake.calls} == {TOKEN}
    assert TOKEN not in "".join(output)
