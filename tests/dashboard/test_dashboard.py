"""The operator dashboard over HTTP: who may see it, what it shows, how its config is read,
and that every read it makes follows an index on both stores."""

from __future__ import annotations

import textwrap
import time
from unittest import mock

import aiohttp
import pytest

from botkit.cli import main
from botkit.events import Inbound, Source, ThreadKey
from botkit.store import JournalEntry, Store
from botkit.testing import running_bot
from botkit.turn import Answer

from botkit_plugins.dashboard.figures import figures, percentile
from botkit_plugins.feedback.votes import Votes

TOKEN = "a-dashboard-token-for-tests-42"


def config() -> dict:
    return {"adapters": {"rec": {"type": "recording"}}, "backends": {"kb": {"type": "fake"}},
            "middlewares": {"fcs_warning": {"threshold": 0.6}}, "dashboard": {"token": TOKEN}}


async def record(store: Store, n: int, *, at: float, adapter: str = "slack", status: str = "complete",
                 score: float | None = 0.9, cited: bool = True, first: float | None = 0.5, duration: float = 2.0,
                 question: str = "q") -> None:
    thread = ThreadKey(adapter, "T1", "C1", f"t{n}")
    entry = JournalEntry(Inbound(f"E{n}", thread, "U1", question, adapter), "kb", question)
    session = await store.active_session(thread, "kb")
    assert await store.admit(entry)
    answer = Answer("an answer", sources=[Source(1, "Doc", "https://d")] if cited else [], score=score,
                    status=status, error=None if status == "complete" else "broke", message_ids=[f"m{n}"],
                    first_text_after=first, duration=duration)
    with mock.patch.object(time, "time", lambda: at):
        await store.close_turn(entry, session, answer)


def test_percentile_is_the_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
    assert percentile([1.0, 2.0], 0.95) == 2.0


async def test_the_figures_of_a_window(tmp_path):
    now = 1_000_000.0
    async with running_bot(config(), tmp_path) as bot:
        store = bot.store
        await record(store, 0, at=now - 90_000)  # before the 24 h window
        await record(store, 1, at=now - 3000, first=0.2, duration=1.0)
        await record(store, 2, at=now - 2000, first=0.4, duration=3.0, score=0.5)  # low FCS (threshold 0.6)
        await record(store, 3, at=now - 1000, adapter="teams", status="timeout", first=None, duration=120.0)
        await record(store, 4, at=now - 500, adapter="teams", status="failed", first=1.0, score=None)
        await record(store, 5, at=now - 100, cited=False, first=0.6, duration=2.0)  # answered from nothing
        await Votes(store).record("E1", "U1", "up", None, now)
        await Votes(store).record("E2", "U1", "down", "wrong", now)
        await Votes(store).record("E0", "U1", "up", None, now)  # outside the window
        data = await figures(store, bot.plugins, window="24h", max_turns=100, low_fcs=0.6, now=now)
        assert (data["turns"], data["failed"], data["timeouts"], data["capped"]) == (5, 1, 1, False)
        assert data["statuses"] == {"complete": 3, "timeout": 1, "failed": 1}
        assert data["timings"] == {"first_text_median": 0.4, "first_text_p95": 1.0, "total_median": 2.0,
                                   "total_p95": 3.0}
        assert data["feedback"] == {"up": 1, "down": 1, "comments": 0, "rate": 2 / 3, "up_share": 0.5}
        assert data["low_fcs"]["count"] == 1 and [t["event_id"] for t in data["low_fcs"]["turns"]] == ["E2"]
        assert data["unanswered"]["kinds"] == {"no sources": 1, "failed": 1, "timeout": 1}
        assert [t["event_id"] for t in data["unanswered"]["turns"]] == ["E5", "E4", "E3"]
        assert [(g["adapter"], g["turns"], g["failed"], g["timeouts"]) for g in data["groups"]] == [
            ("slack", 3, 0, 0), ("teams", 2, 1, 1)]
        assert len(data["over_time"]) in (24, 25) and sum(b["turns"] for b in data["over_time"]) == 5
        assert sum(b["failed"] for b in data["over_time"]) == 2
        capped = await figures(store, bot.plugins, window="24h", max_turns=2, low_fcs=0.6, now=now)
        assert capped["capped"] and capped["turns"] == 2


async def test_without_the_token_nothing_with_it_everything(tmp_path):
    async with running_bot(config(), tmp_path) as bot, aiohttp.ClientSession() as session:
        await record(bot.store, 1, at=time.time() - 60, question="<script>alert('q')</script>")
        url = f"{bot.server.url}/dashboard"
        async with session.get(url) as refused:
            page = await refused.text()
            assert refused.status == 401 and 'name="token"' in page and "alert" not in page
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        async with session.get(url, headers={"Accept": "application/json"}) as refused:
            assert refused.status == 401 and "turns" not in await refused.json()
        async with session.get(url, headers={"Authorization": "Bearer not-the-token"}) as refused:
            assert refused.status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.get(url + "?format=json&window=7d", headers=bearer) as response:
            data = await response.json()
            assert response.status == 200 and data["window"] == "7d" and data["turns"] == 1
            assert data["recent"][0]["question"] == "<script>alert('q')</script>"
            turn_id = data["recent"][0]["id"]
        async with session.get(url, headers=bearer) as response:
            page = await response.text()
            assert response.status == 200 and "<script>" not in page
            assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;" in page
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        async with session.get(f"{url}/turns/{turn_id}", headers=bearer) as response:
            assert response.status == 200 and "<script>" not in await response.text()
        async with session.get(f"{url}/turns/{turn_id}") as response:
            assert response.status == 401
        for missing in ("999999", "abc", "9" * 40):
            async with session.get(f"{url}/turns/{missing}", headers=bearer) as response:
                assert response.status == 404


async def test_people_log_in_with_the_token_and_get_a_strict_cookie(tmp_path):
    async with running_bot(config(), tmp_path) as bot:
        url = f"{bot.server.url}/dashboard"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # an IP address
            async with session.post(f"{url}/login", data={"token": "wrong"}) as response:
                assert response.status == 401 and "not right" in await response.text()
            async with session.post(f"{url}/login", data={"token": TOKEN},
                                    headers={"Origin": "https://evil.example.net"}) as response:
                assert response.status == 403
            async with session.post(f"{url}/login", data={"token": TOKEN}, allow_redirects=False) as response:
                assert response.status == 303
                cookie = response.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
            async with session.get(url) as response:
                assert response.status == 200 and "Turns over time" in await response.text()
            async with session.post(f"{url}/logout", allow_redirects=False) as response:
                assert response.status == 303
            async with session.get(url) as response:
                assert response.status == 401


def check(tmp_path, capsys, text: str) -> tuple[int, str, str]:
    path = tmp_path / "config.yaml"
    path.write_text("plugins: [botkit.testing]\nbackends: {kb: {type: fake}}\n" + textwrap.dedent(text))
    status = main(["check", "-c", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_dashboard_section_is_checked_like_every_other(tmp_path, capsys, monkeypatch):
    status, out, _ = check(tmp_path, capsys, "dashboard: {token: a-long-enough-token-1234}\n")
    assert status == 0 and "sections:    dashboard" in out and "a-long-enough-token-1234" not in out
    status, _, err = check(tmp_path, capsys, "dashboard:\n  token: short\n")
    assert status == 2 and "config.yaml:4: dashboard.token: the dashboard token must be at least 16" in err
    assert "short" not in err.replace("short", "", 0).split("must")[0]
    status, _, err = check(tmp_path, capsys, "dashbord: {token: a-long-enough-token-1234}\n")
    assert status == 2 and "unknown key 'dashbord' (did you mean 'dashboard'?)" in err
    status, _, err = check(tmp_path, capsys, "dashboard: {token: a-long-enough-token-1234, window: 2d}\n")
    assert status == 2 and "dashboard.window: window must be one of 1h, 24h, 7d, 30d" in err
    monkeypatch.delenv("BOTKIT_DASHBOARD_TOKEN", raising=False)
    status, _, err = check(tmp_path, capsys, 'dashboard: {token: "${BOTKIT_DASHBOARD_TOKEN}"}\n')
    assert status == 2 and "environment variable BOTKIT_DASHBOARD_TOKEN is not set" in err
    status, _, err = check(tmp_path, capsys, "dashboard: [1, 2]\n")
    assert status == 2 and "dashboard: expected a mapping" in err


def test_a_plugin_section_may_not_take_a_core_name(tmp_path):
    from botkit.bot import load
    from botkit.plugins import PluginError

    plugin = tmp_path / "clash.py"
    plugin.write_text("from botkit import hookimpl\nfrom botkit.config import Section\n\n"
                      "class S(Section):\n    x: int = 1\n\n"
                      "@hookimpl\ndef botkit_register_sections(register):\n    register('server', S, S)\n")
    path = tmp_path / "config.yaml"
    path.write_text("plugins: [./clash.py]\nbackends: {kb: {type: local}}\n")
    with pytest.raises(PluginError, match="section 'server' is one of the core's"):
        load(path)
