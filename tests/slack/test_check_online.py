"""`botkit check --online` against the loopback fakes: it signs in and says as whom."""

from __future__ import annotations

import asyncio

from botkit.cli import main
from botkit.testing import write_config
from botkit_plugins.slack.testing import BOT_USER, FakeSlack
from botkit_plugins.vectara.fake import FakeVectara

from .conftest import SECRET

API_KEY = "zqt_online-check-0123456789"


async def test_check_online_signs_in_to_slack_and_the_backend(fake: FakeSlack, tmp_path, capsys) -> None:
    async with FakeVectara(api_key=API_KEY) as vectara:
        config = write_config({
            "adapters": {"slack": {"type": "slack", "bot_token": "xoxb-online-token", "signing_secret": SECRET,
                                   "api_url": fake.api_url}},
            "backends": {"kb": {"type": "vectara", "api_key": API_KEY, "base_url": vectara.url,
                                "corpora": [{"corpus_key": "docs"}]}},
            "log": {"level": "ERROR"}}, tmp_path)
        status = await asyncio.to_thread(main, ["check", "--online", "-c", str(config)])
        out = capsys.readouterr().out
        assert status == 0, out
        assert f"adapter slack: signed in as botkit ({BOT_USER})" in out
        assert "backend kb: signed in" in out
        assert fake.of("auth.test")
        config.write_text(config.read_text().replace(API_KEY, "zqt_wrong-key-0123456789"))
        status = await asyncio.to_thread(main, ["check", "--online", "-c", str(config)])
        out = capsys.readouterr().out
        assert status == 1 and "backend kb: FAILED:" in out and "zqt_wrong-key" not in out
