"""The web adapter without a browser: its WebSocket protocol, what it refuses, its page's
headers, the conversation kept across a restart, `botkit web`, and that it adds nothing to
the turns of other adapters."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import pytest

from botkit.testing import running_bot

from botkit_plugins.web import WebConfig

BROWSER = "browser-id-0123456789abcdef"


def config(**web: Any) -> dict:
    return {
        "adapters": {"web": web},
        "backends": {"kb": {"type": "fake", "chunks": 3, "answer": "About {question}: see [1].",
                            "sources": [{"title": "Guide", "url": "https://docs.example.com/guide"}]}},
        "middlewares": {"citations": {}},
        "dispatch": {"progress_delay": 0},
    }


class Page:
    """A chat page as the server sees it: a WebSocket that has said hello."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict] = []

    async def next(self, kind: str, timeout: float = 5.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads((await self.ws.receive()).data)
                self.received.append(message)
                if message["type"] == kind:
                    return message

    async def final_answer(self) -> dict:
        while True:
            message = await self.next("message")
            if message["final"]:
                return message

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))


async def connect(session: aiohttp.ClientSession, bot, *, browser: str = BROWSER, conversation: str = "conv-1",
                  **headers: str) -> Page:
    ws = await session.ws_connect(f"{bot.server.url}/chat/ws", headers=headers)
    page = Page(ws)
    await page.send(type="hello", browser=browser, conversation=conversation)
    await page.next("history")
    return page


async def test_a_question_is_answered_by_messages_that_grow_to_the_final_one(tmp_path):
    async with running_bot(config(), tmp_path) as bot, aiohttp.ClientSession() as session:
        page = await connect(session, bot)
        await page.send(type="ask", id="question-1", text="  refunds  ")
        assert await page.next("question") == {"type": "question", "id": "question-1", "text": "refunds"}
        final = await page.final_answer()
        assert final["reply_to"] == "question-1" and final["text"].startswith("About refunds: see [[1]](<https://")
        assert [n["kind"] for n in final["notes"]] == ["sources"] and "Guide" in final["notes"][0]["text"]
        states = [m for m in page.received if m["type"] == "message"]
        assert {m["id"] for m in states} == {final["id"]}  # one message, edited
        assert states[0]["status"] == "Searching…" and not states[0]["text"]  # the progress shown first
        thread = (await bot.store.list_sessions())[0]["thread"]
        assert thread.startswith("web:web:") and BROWSER not in thread  # the browser id itself is never kept


async def test_a_question_sent_again_after_a_reconnect_is_answered_once(tmp_path):
    async with running_bot(config(), tmp_path) as bot, aiohttp.ClientSession() as session:
        page = await connect(session, bot)
        await page.send(type="ask", id="question-1", text="once")
        await page.final_answer()
        again = await connect(session, bot)
        await again.send(type="ask", id="question-1", text="once")
        await again.next("accepted")
        await bot.idle(5)
        assert [text for _, text in bot.backends["kb"].calls] == ["once"]


async def test_what_is_refused_and_the_connection_goes_on(tmp_path):
    async with running_bot(config(max_question_chars=20), tmp_path) as bot, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{bot.server.url}/chat/ws")
        page = Page(ws)
        await page.send(type="ask", id="question-1", text="hello")
        assert (await page.next("error"))["text"] == "say hello first"
        await ws.send_str("not json")
        await page.next("error")
        await page.send(type="hello", browser="short", conversation="conv-1")
        assert "another shape" in (await page.next("error"))["text"]
        await page.send(type="hello", browser=BROWSER, conversation="conv-1")
        await page.next("history")
        await page.send(type="ask", id="question-2", text="x" * 21)
        refused = await page.next("error")
        assert refused["id"] == "question-2" and "at most 20 characters" in refused["text"]
        await page.send(type="ask", id="../../etc", text="hello")
        await page.next("error")
        await page.send(type="feedback", message="m" * 6, value="love")
        await page.next("error")
        await page.send(type="ask", id="question-3", text="fits")
        assert (await page.final_answer())["reply_to"] == "question-3"  # still answering
        assert [text for _, text in bot.backends["kb"].calls] == ["fits"]


async def test_only_allowed_origins_may_connect(tmp_path):
    async with running_bot(config(allowed_origins=["https://docs.example.com"]), tmp_path) as bot, \
            aiohttp.ClientSession() as session:
        url = f"{bot.server.url}/chat/ws"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, headers={"Origin": "https://evil.example.net"})
        assert refused.value.status == 403
        host = bot.server.url.removeprefix("http://")
        for origin in ("https://docs.example.com", f"http://{host}"):
            await (await session.ws_connect(url, headers={"Origin": origin})).close()
        async with session.get(f"{bot.server.url}/chat") as page:
            policy = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://docs.example.com" in policy and "script-src 'self';" in policy


async def test_the_page_escapes_its_title_and_serves_only_its_own_files(tmp_path):
    title = '</title><script>alert(1)</script>'
    async with running_bot(config(title=title, welcome="</script><b>hi</b>"), tmp_path) as bot, \
            aiohttp.ClientSession() as session:
        async with session.get(f"{bot.server.url}/chat") as response:
            html = await response.text()
        assert "<script>alert(1)</script>" not in html and "&lt;/title&gt;&lt;script&gt;" in html
        assert "</script><b>" not in html  # the settings' JSON cannot close its element
        for name, status in (("chat.js", 200), ("chat.css", 200), ("../__init__.py", 404), ("widget.js", 200)):
            async with session.get(f"{bot.server.url}/chat/static/{name}") as response:
                assert response.status == status, name
        async with session.get(f"{bot.server.url}/chat/widget.js") as response:
            assert response.status == 200 and "iframe" in await response.text()


def test_allowed_origins_must_be_origins():
    assert WebConfig(allowed_origins=["HTTPS://Docs.Example.com/", "*"]).allowed_origins == [
        "https://docs.example.com", "*"]
    for wrong in ("docs.example.com", "https://docs.example.com/path", "javascript:alert(1)", "https://u@x.com"):
        with pytest.raises(ValueError):
            WebConfig(allowed_origins=[wrong])


async def test_the_conversation_is_shown_again_after_a_restart(tmp_path):
    settings = config()
    settings["store"] = {"url": "sqlite:///chat.db"}
    async with running_bot(settings, tmp_path) as bot, aiohttp.ClientSession() as session:
        page = await connect(session, bot)
        await page.send(type="ask", id="question-1", text="<b>refunds</b>")
        answered = await page.final_answer()
    async with running_bot(settings, tmp_path) as bot, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{bot.server.url}/chat/ws")
        page = Page(ws)
        await page.send(type="hello", browser=BROWSER, conversation="conv-1")
        items = (await page.next("history"))["items"]
        assert [(i["type"], i["id"]) for i in items] == [("question", "question-1"), ("message", answered["id"])]
        assert items[0]["text"] == "<b>refunds</b>"  # as typed: the page shows it as text
        assert items[1]["text"] == answered["text"] and items[1]["notes"] == answered["notes"]
        await page.send(type="hello", browser=BROWSER, conversation="conv-2")
        assert (await page.next("history"))["items"] == []  # another conversation
        await page.send(type="hello", browser="another-browser-0123456789", conversation="conv-1")
        assert (await page.next("history"))["items"] == []  # another browser's conversation is its own


async def test_the_rate_limit_middleware_answers_in_the_page(tmp_path):
    settings = config()
    settings["middlewares"]["ratelimit"] = {"per_user": "1/minute"}
    async with running_bot(settings, tmp_path) as bot, aiohttp.ClientSession() as session:
        page = await connect(session, bot)
        await page.send(type="ask", id="question-1", text="one")
        await page.final_answer()
        await page.send(type="ask", id="question-2", text="two")
        told = await page.final_answer()
        assert told["reply_to"] == "question-2" and "again" in told["text"].lower()
        assert [text for _, text in bot.backends["kb"].calls] == ["one"]


async def test_the_web_chat_and_the_dashboard_add_no_hook_to_the_turns_of_other_adapters(tmp_path):
    """What runs per turn is the per-turn hooks' implementations: configuring the web chat
    and the dashboard must add none (the renderer, intake and runner call only those)."""
    per_turn = ("botkit_message_received", "botkit_render", "botkit_answer_complete", "botkit_reaction")
    base = {"adapters": {"rec": {"type": "recording"}}, "backends": {"kb": {"type": "fake"}},
            "middlewares": {"citations": {}, "feedback": {}}}
    with_web = {**base, "adapters": {"rec": {"type": "recording"}, "web": {}},
                "dashboard": {"token": "a-token-long-enough-123"}}
    found = []
    for n, settings in enumerate((base, with_web)):
        folder = tmp_path / str(n)
        folder.mkdir()
        async with running_bot(settings, folder) as bot:
            hooks = bot.plugins.pm.hook
            found.append({name: [i.plugin_name for i in getattr(hooks, name).get_hookimpls()] for name in per_turn})
            built = {name for name, _ in bot.plugins.pm.list_name_plugin()}
    assert found[0] == found[1]
    assert {"adapter:web", "section:dashboard"} <= built  # both were built, and hook into no turn


async def test_botkit_web_runs_the_bundled_docs_bot_in_the_browser(tools, tmp_path):
    process = tools.spawn([sys.executable, "-m", "botkit.cli", "web", "--port", "0"], cwd=tmp_path)
    url = process.wait_for(r"the web chat is at (http://127\.0\.0\.1:\d+/chat)", 60).group(1)
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200 and "<title>botkit</title>" in await response.text()
        ws = await session.ws_connect(url + "/ws")
        page = Page(ws)
        await page.send(type="hello", browser=BROWSER, conversation="conv-1")
        await page.next("history")
        await page.send(type="ask", id="question-1", text="How do I add a Slack adapter?")
        answer = await page.final_answer()
        assert "bot_token" in answer["text"] and any(n["kind"] == "sources" for n in answer["notes"])
    process.stop()
    assert "Traceback" not in process.output, process.output
