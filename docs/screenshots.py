"""Takes the README's screenshots of the web chat and the dashboard: `python docs/screenshots.py`.

A bot with the web chat, a scripted backend and the dashboard runs on 127.0.0.1; its store
gets a day of made-up turns (through the store's own API) so the dashboard has something
to show; Debian's Chromium, driven by Playwright as in the tests, asks two questions in the
chat, rates an answer, logs in to the dashboard, and saves both pages next to this file.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from botkit.events import Done, Inbound, Score, SessionInfo, Source, Sources, TextDelta, ThreadKey
from botkit.store import JournalEntry, Store
from botkit_plugins.feedback.votes import Votes
from botkit.testing import chromium, running_bot
from botkit.turn import Answer

DOCS = Path(__file__).resolve().parent
TOKEN = "screenshots-only-token-0123456789"
DOC = "https://docs.example.com"
SOURCES = [Source(1, "Refund policy", f"{DOC}/refunds"), Source(2, "Payments and cards", f"{DOC}/payments"),
           Source(3, "Gift cards", f"{DOC}/gift-cards")]
ANSWERS = {
    "How long do refunds take?": (
        "Refunds are issued within **14 days** of the parcel arriving back at our warehouse [1]. The money goes "
        "back to the card you paid with; your bank may take another 3–5 working days to show it [2].\n\n"
        "To see where a refund stands, open *Orders* and pick the order: its status says `refund issued` once "
        "it has left us [1].", 0.91),
    "Can I get a refund for a gift card?": (
        "Gift cards can be refunded within 30 days if no part of them was spent [3]. A partly used card "
        "may be refunded as store credit [3][1].", 0.32),
}
QUESTIONS = ["How do I reset my password?", "Where is my order?", "Can I change the delivery address?",
             "Do you ship to Norway?", "How long do refunds take?", "Is there a student discount?",
             "How do I cancel my subscription?", "Why was my card declined?", "Can I return a sale item?"]


def script(session, question):
    text, score = ANSWERS.get(question.text, ("I could not find that in the docs.", None))
    events = [] if session.session_id else [SessionInfo("demo-session")]
    events.append(Sources(SOURCES))
    events += [TextDelta(word + " ") for word in text.split(" ")]
    if score is not None:
        events.append(Score(score))
    return [*events, Done()]


async def seed(store: Store, now: float) -> None:
    """A day of turns on several platforms, as the store records them."""
    rng = random.Random(17)
    times = sorted(now - 60 - 86_000 * rng.random() ** 0.8 for _ in range(420))
    for n, at in enumerate(times):
        adapter = rng.choice(["slack", "slack", "slack", "teams", "teams", "web", "discord"])
        backend = "support" if adapter in ("slack", "teams") else "docs"
        thread = ThreadKey(adapter, "T01", f"C{n % 9}", f"{n}")
        question = rng.choice(QUESTIONS)
        entry = JournalEntry(Inbound(f"seed-{n}", thread, f"U{n % 37}", question, adapter), backend, question)
        session = await store.active_session(thread, backend)
        await store.admit(entry)
        status = rng.choices(["complete", "failed", "timeout"], [0.93, 0.04, 0.03])[0]
        cited = rng.random() > 0.12
        first = rng.lognormvariate(-0.2, 0.45) if status != "timeout" else None
        answer = Answer("…", sources=SOURCES[:2] if cited else [], score=round(rng.betavariate(6, 1.6), 2),
                        status=status, error=None if status == "complete" else "the backend failed",
                        message_ids=[f"seed-m{n}"], first_text_after=first,
                        duration=(first or 0) + rng.lognormvariate(1.0, 0.4), edits=4)
        with mock.patch.object(time, "time", lambda: at):
            await store.close_turn(entry, session, answer)
        if status == "complete" and rng.random() < 0.3:
            await Votes(store).record(f"seed-{n}", f"U{n % 37}", "up" if rng.random() < 0.8 else "down", None, at)
    await store.flush()


async def main() -> int:
    config = {
        "adapters": {"web": {"title": "Acme Help", "welcome": "Ask about orders, payments and refunds."}},
        "backends": {"docs": {"type": "fake"}, "support": {"type": "fake"}},
        "routes": [{"adapter": "web", "backend": "docs"}, {"backend": "support"}],
        "middlewares": {"citations": {}, "fcs_warning": {"threshold": 0.5}, "feedback": {}},
        "dashboard": {"token": TOKEN},
        "dispatch": {"progress_delay": 0},
    }
    with tempfile.TemporaryDirectory() as folder:
        async with running_bot(config, Path(folder)) as bot, chromium() as browser:
            bot.backends["docs"].script = script
            await seed(bot.store, time.time())
            page = await browser.new_page(viewport={"width": 760, "height": 900}, device_scale_factor=1)
            await page.goto(f"{bot.server.url}/chat")
            for n, question in enumerate(ANSWERS, start=1):
                box = page.get_by_role("textbox", name="Your question")
                await box.fill(question)
                await box.press("Enter")
                await page.locator(".answer").nth(n - 1).get_by_role("button", name="Helpful", exact=True).wait_for()
            await page.locator(".answer").first.get_by_role("button", name="Helpful", exact=True).click()
            await page.get_by_role("textbox", name="Your question").fill("Do you ship to Norway?")
            await page.wait_for_timeout(300)
            await page.screenshot(path=str(DOCS / "web-chat.png"))

            page = await browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            await page.goto(f"{bot.server.url}/dashboard")
            await page.get_by_label("Dashboard token").fill(TOKEN)
            await page.get_by_role("button", name="Log in").click()
            await page.get_by_role("region", name="Figures").wait_for()
            await page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
    print(f"wrote {DOCS / 'web-chat.png'} and {DOCS / 'dashboard.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
