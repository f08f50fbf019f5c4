"""`botkit run -c <config>` as a process answers a signed Teams activity end to end."""

from __future__ import annotations

import asyncio
import re
import shutil
import os
import signal

import httpx

from botkit.testing import read_until, write_config


async def test_botkit_run_answers_a_signed_activity(fake, tmp_path):
    path = write_config({
        "adapters": {"teams": fake.adapter_config(app_password="${TEAMS_PASSWORD}")},
        "backends": {"kb": {"type": "fake", "answer": "Hello from the process"}},
    }, tmp_path)
    botkit = shutil.which("botkit")
    assert botkit, "the botkit console script is installed with the project"
    command = [botkit, "run", "-c", str(path)]
    env = {**os.environ, "TEAMS_PASSWORD": "s3cret-password"}
    process = await asyncio.create_subprocess_exec(*command, cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        match = await asyncio.wait_for(
            read_until(process.stderr, re.compile(r"listening on (http://127\.0\.0\.1:\d+)"), seen), 20)
        activity = fake.activity("hi", kind="groupChat")
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(f"{match.group(1)}/api/messages", json=activity,
                                         headers={"Authorization": f"Bearer {fake.sign()}"})
        assert response.status_code == 202
        await fake.wait_for(lambda f: any(c.body.get("text") == "Hello from the process" for c in f.calls), 15)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), 20)
        await asyncio.wait_for(process.wait(), 20)
    log = "".join(seen) + rest.decode()
    assert process.returncode == 0, log
    assert "s3cret-password" not in log
    assert fake.calls[0].activity_id == activity["id"]
