"""`botkit run -c config.yaml` as a process, its discord adapter on the loopback fake."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

from botkit.testing import read_until, write_config
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, GUILD_ID, FakeDiscord


async def test_botkit_run_answers_a_mention(fake: FakeDiscord, tmp_path: Path) -> None:
    config = write_config({
        "adapters": {"discord": {"type": "discord", "token": "${DISCORD_TEST_TOKEN}", "api_url": fake.api_url,
                                 "gateway_url": fake.gateway_url, "guilds": [int(GUILD_ID)],
                                 "edit_interval": 0, "guild_ready_timeout": 0.05}},
        "backends": {"b": {"type": "fake", "answer": "Answered by a process."}},
    }, tmp_path)
    command = shutil.which("botkit")
    argv = [command] if command else [sys.executable, "-m", "botkit.cli"]
    process = await asyncio.create_subprocess_exec(
        *argv, "run", "-c", str(config), cwd=tmp_path, env={"DISCORD_TEST_TOKEN": "process-token", "PATH": ""},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    log: list[str] = []
    try:
        await asyncio.wait_for(read_until(process.stdout, "botkit started", log), 30)  # signal handlers are set
        question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> are you a process?", mentions_bot=True)
        await fake.dispatch("MESSAGE_CREATE", question)
        await fake.wait_until(lambda: any(m["content"] == "Answered by a process."
                                          for m in fake.messages.values()), timeout=30)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
    output = "".join(log) + rest.decode()
    assert process.returncode == 0, output
    assert fake.identify[0]["token"] == "process-token"
    assert fake.requests("POST", f"/channels/{CHANNEL_ID}/messages/{question['id']}/threads")
    assert "process-token" not in output  # the token never reaches the log
