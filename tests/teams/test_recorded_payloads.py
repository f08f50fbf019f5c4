"""Teams activities written from Microsoft's documentation examples (tests/fixtures/teams),
signed and posted to `/api/messages` of a running bot: each is answered, ignored on purpose or
acknowledged (an invoke gets its 200), never refused with a 4xx/5xx, never a logged error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from botkit_plugins.teams.testing import BOT_ID

from botkit.testing import running_bot

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "teams").glob("*.json"))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_every_recorded_activity_is_answered_ignored_or_acknowledged(fake, tmp_path, caplog, path):
    recorded = json.loads(path.read_text())
    # the example's bot and connector stand for the bot receiving it and the loopback connector
    text = path.read_text().replace(recorded["bot_id"], BOT_ID).replace(recorded["service_url"], fake.service_url)
    activity = json.loads(text)["payload"]
    config = {"server": {"host": "127.0.0.1", "port": 0},
              "adapters": {"teams": fake.adapter_config(tenant_id=None)},  # multi-tenant: the example's tenant
              "backends": {"kb": {"type": "fake", "answer": "Recorded answer"}},
              "middlewares": {"feedback": {}},  # as deployed: answers ask for Teams' 👍/👎, votes are recorded
              "dispatch": {"progress_delay": 0}}
    with caplog.at_level(logging.WARNING):
        async with running_bot(config, tmp_path) as bot:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(f"{bot.server.url}/api/messages", json=activity,
                                             headers={"Authorization": f"Bearer {fake.sign()}"})
            assert response.status_code in (200, 201, 202), response.text
            await bot.idle(10)
    answers = [c for c in fake.calls if c.body.get("text") == "Recorded answer"]
    if recorded["expect"] == "answered":
        assert answers, fake.calls
        assert all(c.conversation == activity["conversation"]["id"] for c in fake.calls)
        assert all(c.body.get("replyToId") == activity["id"] for c in fake.calls if c.method == "POST")
    else:
        assert fake.calls == []
    if activity["type"] == "invoke":
        assert response.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in caplog.text
