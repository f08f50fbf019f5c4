"""Local mode: no app_id/app_password, as the Agents Playground and the Emulator expect.

Unauthenticated activities are answered at their `serviceUrl` without a token, only while the
server binds to a loopback address and only when that `serviceUrl` is on this machine too.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import httpx
import pytest
from botkit_plugins.teams import TeamsConfig, is_loopback
from botkit_plugins.teams.testing import TENANT, FakeBotFramework

from botkit.adapters import Outgoing
from botkit.cli import main
from botkit.testing import running_bot


@pytest.fixture
async def fake():
    service = await FakeBotFramework(local=True).start()
    yield service
    await service.close()


def _config(tmp_path, server_host: str, teams: str = "{}"):
    path = tmp_path / "config.yaml"
    path.write_text(f"server: {{host: '{server_host}', port: 3000}}\n"
                    f"adapters:\n  teams: {teams}\n"
                    "backends:\n  kb: {type: local}\n")
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "bot.example.com"])
def test_check_refuses_local_mode_off_loopback(tmp_path, capsys, host):
    status = main(["check", "-c", str(_config(tmp_path, host))])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("config.yaml:3: adapters.teams: no app_id/app_password means local mode")
    assert f"not '{host}'" in err and "server.host" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_check_accepts_local_mode_on_loopback(tmp_path, capsys, host):
    assert main(["check", "-c", str(_config(tmp_path, host))]) == 0
    assert "teams (teams)" in capsys.readouterr().out


def test_run_refuses_it_too(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", str(_config(tmp_path, "0.0.0.0"))],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "config.yaml:3: adapters.teams:" in proc.stderr and "Traceback" not in proc.stderr


def test_half_the_credentials_is_an_error_that_keeps_the_secret(tmp_path, capsys):
    status = main(["check", "-c", str(_config(tmp_path, "127.0.0.1", "{app_password: hunter2-secret}"))])
    err = capsys.readouterr().err
    assert status == 2
    assert "adapters.teams: give both app_id and app_password, or neither" in err
    assert "hunter2-secret" not in err


def test_an_empty_app_id_does_not_silently_mean_local_mode():
    with pytest.raises(ValueError, match="app_id"):
        TeamsConfig(app_id="", app_password="")


def test_loopback_hosts():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "", "10.0.0.1", "localhost.example.com", "::ffff:8.8.8.8"))


async def test_unauthenticated_activity_is_answered_without_a_token(fake, make_adapter, caplog):
    with caplog.at_level(logging.WARNING, "botkit.teams"):
        adapter, bot, post = await make_adapter()
    assert adapter.config.local
    assert "local mode" in caplog.text and "NOT authenticated" in caplog.text
    assert await post(fake.activity("hello", kind="groupChat"), token=None) == 202
    assert await post(fake.activity("and you?", kind="groupChat"), token="anything-at-all") == 202
    inbound = bot.inbound[0]
    assert inbound.text == "hello" and inbound.thread.workspace == TENANT
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("Hi there", final=True))
    assert [(c.method, c.authorization, c.status) for c in fake.calls] == [("POST", None, 201), ("PUT", None, 200)]
    assert fake.token_requests == [] and fake.jwks_fetches == 0


@pytest.mark.parametrize("service_url", ["https://smba.trafficmanager.net/teams/", "http://10.0.0.5:56150/",
                                         "not a url", None])
async def test_a_service_url_off_this_machine_is_refused(fake, make_adapter, service_url):
    _adapter, bot, post = await make_adapter()
    activity = fake.activity("hello")
    activity["serviceUrl"] = service_url
    assert await post(activity, token=None) == 403
    assert bot.inbound == [] and fake.calls == []


async def test_through_the_dispatcher_and_store_in_a_one_to_one_chat(fake, tmp_path):
    """The real bot: the question is journaled, answered by native streaming, with sources."""
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "adapters": {"teams": fake.adapter_config()},
        "backends": {"kb": {"type": "fake", "answer": "Refunds take 14 days [1].", "chunks": 3,
                            "sources": [{"title": "Refund policy", "url": "https://example.com/refunds"}]}},
        "middlewares": {"citations": {}},
        "dispatch": {"progress_delay": 0},
    }
    async with running_bot(config, tmp_path) as bot:
        activity = fake.activity("How long do refunds take?")
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(f"{bot.server.url}/api/messages", json=activity)
        assert response.status_code == 202
        await bot.idle(10)
    final = fake.calls[-1]
    assert final.streaminfo == {"type": "streaminfo", "streamType": "final", "streamId": fake.calls[0].answer["id"]}
    # the cited source as a Teams citation (a pill on [1]) instead of a link and a footer
    assert final.body["text"] == "Refunds take 14 days [1]."
    [_, message] = final.body["entities"]
    assert message["citation"] == [{"@type": "Claim", "position": 1, "appearance": {
        "@type": "DigitalDocument", "name": "Refund policy", "abstract": "Refund policy",
        "url": "https://example.com/refunds"}}]
    assert all(c.authorization is None and c.status in (201, 202) for c in fake.calls)
