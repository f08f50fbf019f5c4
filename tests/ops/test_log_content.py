"""`log.content: false` at DEBUG (issue 13): no message text in any line, from botkit or from
any library it drives. A real `botkit run` answers on Slack (slack-bolt, slack_sdk, aiohttp)
from Vectara (httpx, httpx-sse) and on Discord (discord.py's gateway and HTTP) from an
OpenAI-compatible endpoint, with questions and answers carrying markers that are then looked
for in everything the process printed. With `log.content: true` the same run logs them: the
markers are where a leak would show.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from botkit.testing import read_until, write_config
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, GUILD_ID, FakeDiscord
from botkit_plugins.openai.fake import FakeOpenAI
from botkit_plugins.slack.testing import BOT_USER, FakeSlack, event_callback, sign
from botkit_plugins.vectara.fake import FakeVectara

SLACK_QUESTION, SLACK_ANSWER = "how does the quokka-question-1 work", "The quokka-answer-1 works well."
DISCORD_QUESTION, DISCORD_ANSWER = "what is the wombat-question-2", "The wombat-answer-2 is fine."
MARKERS = ("quokka-question-1", "quokka-answer-1", "wombat-question-2", "wombat-answer-2")
SECRET = "log-content-signing-secret"


def deployment(slack: FakeSlack, vectara: FakeVectara, discord: FakeDiscord, openai: FakeOpenAI,
               content: bool) -> dict:
    return {
        "log": {"level": "DEBUG", "content": content},
        "server": {"host": "127.0.0.1", "port": 0},
        "adapters": {
            "slack": {"type": "slack", "bot_token": "xoxb-log-test", "signing_secret": SECRET,
                      "api_url": slack.api_url, "edit_interval": 0.01},
            "discord": {"type": "discord", "token": "discord-log-test", "api_url": discord.api_url,
                        "gateway_url": discord.gateway_url, "guilds": [int(GUILD_ID)], "edit_interval": 0,
                        "guild_ready_timeout": 0.05},
        },
        "backends": {
            "vectara": {"type": "vectara", "api_key": "vectara-log-test", "base_url": vectara.url,
                        "corpora": [{"corpus_key": "docs"}]},
            "gpt": {"type": "openai", "base_url": openai.url + "/v1", "api_key": "sk-log-test", "model": "m"},
        },
        "routes": [{"adapter": "slack", "backend": "vectara"}, {"adapter": "discord", "backend": "gpt"}],
    }


async def run_and_ask(tmp_path: Path, content: bool) -> str:
    """Everything `botkit run` printed while answering one question on each platform."""
    async with FakeSlack() as slack, FakeVectara(api_key="vectara-log-test", answer=[SLACK_ANSWER]) as vectara, \
            FakeDiscord() as discord, FakeOpenAI(answer=DISCORD_ANSWER, api_key="sk-log-test") as openai:
        path = write_config(deployment(slack, vectara, discord, openai, content), tmp_path)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "run", "-c", str(path), cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        seen: list[str] = []
        try:
            url = (await asyncio.wait_for(read_until(process.stdout, r"HTTP server listening on (http://\S+)", seen),
                                          30)).group(1)
            await asyncio.wait_for(read_until(process.stdout, "botkit started", seen), 30)
            body = json.dumps(event_callback({"type": "app_mention", "user": "U1", "channel": "C1",
                                              "text": f"<@{BOT_USER}> {SLACK_QUESTION}", "ts": "1700000000.000100",
                                              "event_ts": "1700000000.000100"}, "EvLog1"))
            async with aiohttp.ClientSession() as session:
                async with session.post(url + "/slack/events", data=body, headers=sign(body, SECRET)) as resp:
                    assert resp.status == 200
            await discord.dispatch("MESSAGE_CREATE", discord.message(CHANNEL_ID, f"<@{BOT_ID}> {DISCORD_QUESTION}",
                                                                     mentions_bot=True))
            await slack.wait_for(lambda f: any(SLACK_ANSWER in (c.get("text") or "")
                                               for c in f.of("chat.postMessage") + f.of("chat.update")), timeout=30)
            await discord.wait_until(lambda: any(DISCORD_ANSWER in m["content"] for m in discord.messages.values()),
                                     timeout=30)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            rest, _ = await asyncio.wait_for(process.communicate(), 30)
            seen.append(rest.decode())
        assert process.returncode == 0, "".join(seen)
        return "".join(seen)


async def test_no_message_text_in_any_debug_line_without_log_content(tmp_path):
    output = await run_and_ask(tmp_path, content=False)
    assert " DEBUG botkit" in output  # botkit's own DEBUG lines are there
    leaked = [line for line in output.splitlines() if any(marker in line for marker in MARKERS)]
    assert not leaked, "\n".join(leaked[:10])


async def test_the_same_run_logs_texts_with_log_content(tmp_path):
    """The control: where `log.content: true` lets texts through, the markers show (all but
    the Slack question, which no line carries either way)."""
    output = await run_and_ask(tmp_path, content=True)
    assert [marker for marker in MARKERS if marker not in output] == ["quokka-question-1"]
