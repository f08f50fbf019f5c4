"""The web chat and the dashboard in a real browser: headless Chromium (Debian's) driven by
Playwright, typing and clicking like a person, against a bot serving on 127.0.0.1.

The backend is the scripted fake, streaming its answer in chunks with random latencies
between them, as a real backend does. Everything the page loads comes from botkit's own
server: any request elsewhere is aborted (and would fail the page's own policy anyway).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from aiohttp import web

from botkit.cli import main
from botkit.testing import eventually, running_bot, serve_loopback
from botkit_plugins.feedback.votes import Votes

SOURCE_URL = "https://docs.example.com/refunds"
TOKEN = "dashboard-token-for-tests-0123456789"
WAIT_MS = 15_000
NOT_LOOPBACK = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost)[:/])")


def config(**web_settings) -> dict:
    return {
        "adapters": {"web": {"title": "Refunds help", **web_settings}},
        "backends": {"kb": {"type": "fake", "chunks": 8, "delay": 0.12, "jitter": 0.3,
                            "status": "Searching the refund policy…", "score": 0.3,
                            "answer": "You asked: {question}. Refunds take **14 days** [1] once the parcel "
                                      "is back, and the money goes to the card you paid with [2].",
                            "sources": [{"title": "Refund policy", "url": SOURCE_URL},
                                        {"title": "Payments", "url": "https://docs.example.com/payments"}]}},
        "middlewares": {"citations": {}, "fcs_warning": {"threshold": 0.5}, "feedback": {}},
        "dashboard": {"token": TOKEN},
        "dispatch": {"progress_delay": 0},
    }


@pytest.fixture
async def bot(tmp_path):
    async with running_bot(config(), tmp_path) as running:
        yield running


async def open_page(browser, url: str):
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 900, "height": 800})
    page.set_default_timeout(WAIT_MS)  # for actions; assertions have their own default, 5 s:
    expect.set_options(timeout=WAIT_MS)  # a slow CI machine may take longer than that to show an answer
    await page.route(NOT_LOOPBACK, lambda route: route.abort())
    await page.goto(url)
    return page


async def ask(page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    await box.fill(question)
    await box.press("Enter")


async def watch_answer(page, count: int) -> list[str]:
    """The texts answer number `count` (1-based) showed, in order, until it was final."""
    from playwright.async_api import expect

    answer = page.locator(".answer").nth(count - 1)
    await expect(answer).to_be_attached(timeout=WAIT_MS)
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        text = await answer.inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if "Sources" in text:
            return seen
        try:  # the next state the page shows, whenever it comes
            await expect(answer).not_to_have_text(text, use_inner_text=True,
                                                  timeout=max(deadline - time.monotonic(), 0) * 1000)
        except AssertionError:
            break
    raise AssertionError(f"the answer never completed; it showed {seen}")


async def test_an_answer_grows_as_it_streams_and_ends_with_links_sources_and_the_warning(bot, browser):
    from playwright.async_api import expect

    page = await open_page(browser, bot.server.url + "/chat")
    await expect(page).to_have_title("Refunds help")
    await ask(page, "How long do refunds take?")
    await expect(page.get_by_role("log").get_by_text("How long do refunds take?")).to_be_visible()
    seen = await watch_answer(page, 1)

    assert any("Searching the refund policy" in text for text in seen), seen  # the progress status
    partial = [t for t in seen if t.startswith("You asked") and "Sources" not in t]
    assert len(set(partial)) >= 2, seen  # it visibly grew: two different partial texts at least
    for shorter, longer in zip(partial, partial[1:]):
        assert len(longer.rstrip("▍")) >= len(shorter.rstrip("▍"))
    answer = page.locator(".answer").first
    await expect(answer.get_by_text("Refunds take")).to_be_visible()
    await expect(answer.locator("strong").filter(has_text="14 days")).to_be_visible()
    cite = answer.get_by_role("link", name="[1]")
    await expect(cite).to_have_attribute("href", SOURCE_URL)
    sources = answer.locator(".sources")
    await expect(sources.get_by_role("link", name="Refund policy")).to_have_attribute("href", SOURCE_URL)
    await expect(sources.get_by_role("link", name="Payments")).to_be_visible()
    warning = answer.get_by_role("note").filter(has_text="may not be supported by the sources")
    await expect(warning).to_be_visible()
    await expect(answer.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    await expect(answer.get_by_role("button", name="Not helpful")).to_be_visible()


async def test_feedback_clicks_are_recorded_and_exported(tmp_path, browser, capsys):
    async with running_bot(config(), tmp_path) as bot:
        page = await open_page(browser, bot.server.url + "/chat")
        await ask(page, "Can I get a refund?")
        await watch_answer(page, 1)
        await ask(page, "And for a gift?")
        await watch_answer(page, 2)
        first, second = page.locator(".answer").nth(0), page.locator(".answer").nth(1)
        await first.get_by_role("button", name="Helpful", exact=True).click()
        await second.get_by_role("button", name="Not helpful").click()
        from playwright.async_api import expect

        await expect(first.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
        # a 👎 asks for a comment, as on every platform; answered in the page
        await expect(page.get_by_text("What was wrong or missing?")).to_be_visible()
        await ask(page, "feedback: it did not say how gifts are refunded")
        await expect(page.get_by_text("Thanks for the feedback!")).to_be_visible()
        votes = await Votes(bot.store).list()
        assert [(v["question"], v["value"], v["comment"]) for v in votes] == [
            ("Can I get a refund?", "up", None),
            ("And for a gift?", "down", "it did not say how gifts are refunded")]
        assert {v["adapter"] for v in votes} == {"web"}
    capsys.readouterr()
    command = ["feedback", "export", "-c", str(tmp_path / "config.yaml"), "--format", "jsonl"]
    assert await asyncio.to_thread(main, command) == 0  # the CLI runs its own event loop
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["question"], row["value"]) for row in exported] == [("Can I get a refund?", "up"),
                                                                      ("And for a gift?", "down")]


async def test_a_reload_continues_the_conversation_and_new_conversation_starts_another(bot, browser):
    from playwright.async_api import expect

    backend = bot.backends["kb"]
    page = await open_page(browser, bot.server.url + "/chat")
    await ask(page, "first question")
    await watch_answer(page, 1)
    await page.reload()
    log = page.get_by_role("log")
    await expect(log.get_by_text("first question", exact=True)).to_be_visible()  # the conversation is still there
    await expect(log.get_by_role("link", name="Refund policy")).to_be_visible()
    await ask(page, "a follow-up")
    await watch_answer(page, 2)
    assert backend.calls[0] == (None, "first question")  # a new thread: the backend makes a session
    assert backend.calls[1] == ("fake-session-1", "a follow-up")  # the same session, after the reload

    await page.get_by_role("button", name="New conversation").click()
    await expect(log.get_by_text("first question", exact=True)).to_be_hidden()
    await expect(page.get_by_text("Ask a question: answers come from the knowledge base")).to_be_visible()
    await ask(page, "a new start")
    await watch_answer(page, 1)
    assert backend.calls[2] == (None, "a new start")  # a new thread: a new backend session
    await page.reload()
    await expect(log.get_by_text("a new start", exact=True)).to_be_visible()
    await expect(log.get_by_text("first question", exact=True)).to_be_hidden()
    threads = {s["thread"] for s in await bot.store.list_sessions()}
    assert len(threads) == 2 and all(t.startswith("web:web:") for t in threads)


async def test_html_in_a_question_is_shown_as_text(bot, browser):
    from playwright.async_api import expect

    page = await open_page(browser, bot.server.url + "/chat")
    hostile = '<img src=x onerror="window.injected=1"><b id="bold">bold</b> <script>window.injected=2</script>'
    await ask(page, hostile)
    await watch_answer(page, 1)  # the fake backend repeats the question in its answer
    log = page.get_by_role("log")
    await expect(log.locator(".question").get_by_text(hostile, exact=True)).to_be_visible()
    await expect(log.get_by_text(f"You asked: {hostile}.")).to_be_visible()
    assert await page.locator("#log img, #log b, #log script, #bold").count() == 0
    assert await page.evaluate("window.injected") is None


async def test_the_widget_puts_the_chat_on_an_allowed_site(tmp_path, browser):
    from playwright.async_api import expect

    shop: dict[str, str] = {}  # the shop's page names the bot's port, known once the bot runs

    async def shop_page(request: web.Request) -> web.Response:
        return web.Response(text=shop["html"], content_type="text/html")

    host = web.Application()
    host.router.add_get("/", shop_page)
    runner, port = await serve_loopback(host)
    site = f"http://127.0.0.1:{port}"
    try:
        async with running_bot(config(allowed_origins=[site]), tmp_path) as bot:
            shop["html"] = (f'<!doctype html><title>Shop</title><h1>Our shop</h1>'
                            f'<script src="{bot.server.url}/chat/widget.js" data-label="Ask us" async></script>')
            page = await open_page(browser, site + "/")
            await page.get_by_role("button", name="Ask us").click()
            chat = page.frame_locator("iframe[title=Chat]")
            box = chat.get_by_role("textbox", name="Your question")
            await box.fill("Do you refund shipping?")
            await box.press("Enter")
            await expect(chat.get_by_role("link", name="Refund policy")).to_be_visible()
            await expect(chat.get_by_text("You asked: Do you refund shipping?")).to_be_visible()
    finally:
        await runner.cleanup()


async def test_the_dashboard_refuses_without_the_token_and_shows_the_figures_with_it(bot, browser):
    from playwright.async_api import expect

    page = await open_page(browser, bot.server.url + "/chat")
    await ask(page, "How long do refunds take?")
    await watch_answer(page, 1)
    await page.locator(".answer").first.get_by_role("button", name="Helpful", exact=True).click()

    async def voted() -> bool:
        return bool(await Votes(bot.store).list())

    await eventually(voted)  # the vote is in the store before the dashboard is asked

    refused = await page.goto(bot.server.url + "/dashboard")
    assert refused is not None and refused.status == 401
    await expect(page.get_by_label("Dashboard token")).to_be_visible()
    assert "How long do refunds take" not in await page.content()  # none of the data
    await page.get_by_label("Dashboard token").fill("not the token at all")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("That token is not right.")

    await page.get_by_label("Dashboard token").fill(TOKEN)
    await page.get_by_role("button", name="Log in").click()
    figures = page.get_by_role("region", name="Figures")
    await expect(figures.get_by_text("Turns", exact=True)).to_be_visible()
    await expect(figures.locator(".card").filter(has_text="Turns").locator(".value")).to_have_text("1")
    await expect(figures.locator(".card").filter(has_text="Feedback").locator(".value")).to_have_text("👍 1 · 👎 0")
    await expect(figures.locator(".card").filter(has_text="Low FCS").locator(".value")).to_have_text("1")
    table = page.get_by_role("region", name="By adapter and backend")
    await expect(table.get_by_role("row").filter(has_text="web")).to_contain_text("kb")
    recent = page.get_by_role("region", name="Recent questions")
    await recent.get_by_role("link", name="How long do refunds take?").click()
    await expect(page.get_by_role("heading", name=re.compile(r"^Turn \d+$"))).to_be_visible()
    await expect(page.get_by_text("Refunds take **14 days** [1]")).to_be_visible()  # the answer as recorded
    await expect(page.get_by_role("link", name="Refund policy")).to_have_attribute("href", SOURCE_URL)
    await page.get_by_role("link", name="Back to the dashboard").click()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_label("Dashboard token")).to_be_visible()


def test_screenshots_of_both_pages_are_committed():
    docs = Path(__file__).parents[2] / "docs"
    for name in ("web-chat.png", "dashboard.png"):
        data = (docs / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, name
