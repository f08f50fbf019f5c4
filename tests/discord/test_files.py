"""Files on Discord questions end to end: attachments downloaded from the fake CDN (signed
URLs) only when the backend reads them, through the real discord.py and the OpenAI fake."""

from __future__ import annotations

import base64
from pathlib import Path

from botkit.testing import running_bot
from botkit_plugins.discord.testing import BOT_ID, CHANNEL_ID, FakeDiscord
from botkit_plugins.openai.fake import FakeOpenAI

from .conftest import bot_config

JPEG = base64.b64decode("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcp"
                        "LDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAA"
                        "AAAAAAD/2gAIAQEAAD8AKp//2Q==")
TRACE = b"Traceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'user'\n"


async def ask_with(fake: FakeDiscord, bot, text: str, *attachments) -> str:
    question = fake.message(CHANNEL_ID, f"<@{BOT_ID}> {text}".strip(), mentions_bot=True,
                            attachments=list(attachments))
    await fake.dispatch("MESSAGE_CREATE", question)
    await fake.wait_for("POST", f"/channels/{question['id']}/messages")
    await bot.idle(10)
    [answer] = [m for m in fake.messages.values() if m["channel_id"] == question["id"]]
    return answer["content"]


async def test_attachments_reach_the_model_from_the_cdn(fake: FakeDiscord, tmp_path: Path) -> None:
    trace = fake.attachment("trace.txt", TRACE, "text/plain; charset=utf-8")
    photo = fake.attachment("screen.jpg", JPEG, "image/jpeg")
    async with FakeOpenAI(answer="The user key is missing.") as model:
        config = bot_config(fake)
        config["backends"] = {"b": {"type": "openai", "base_url": model.url + "/v1", "model": "m",
                                    "system_prompt": None}}
        async with running_bot(config, tmp_path) as bot:
            answer = await ask_with(fake, bot, "why?", trace, photo)
    [content] = model.questions()
    assert content == [
        {"type": "text", "text": "why?\n\n--- trace.txt (text/plain) ---\n" + TRACE.decode() +
                                 "\n--- end of trace.txt ---"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}}]
    assert sorted(fake.downloads) == sorted([trace["id"], photo["id"]])
    assert answer == "The user key is missing."


async def test_the_signed_url_is_what_gets_the_file(fake: FakeDiscord, tmp_path: Path) -> None:
    """A file whose URL lost its signature is refused by the CDN; the user is told, and a file
    Discord says is too large is not fetched at all."""
    unsigned = fake.attachment("trace.txt", TRACE, "text/plain")
    unsigned["url"] = unsigned["url"].split("?")[0]
    huge = fake.attachment("server.log", b"x" * 100, "text/plain", size=50_000_000)
    async with FakeOpenAI(answer="I could not see the files.") as model:
        config = bot_config(fake)
        config["backends"] = {"b": {"type": "openai", "base_url": model.url + "/v1", "model": "m"}}
        async with running_bot(config, tmp_path) as bot:
            answer = await ask_with(fake, bot, "look", unsigned, huge)
    assert fake.downloads == []
    assert answer.splitlines()[:2] == ["-# 📎 trace.txt was not read: it could not be downloaded.",
                                       "-# 📎 server.log was not read: it is larger than the 10 MB limit."]
    assert answer.endswith("I could not see the files.")


async def test_a_message_that_is_only_a_file_is_answered_with_the_note(fake: FakeDiscord, discord_bot) -> None:
    async with discord_bot({"answer": "Here is what I know."}) as bot:
        answer = await ask_with(fake, bot, "", fake.attachment("notes.md", b"# Notes\n", "text/markdown"))
        assert bot.backends["b"].calls[0][1] == "About the attached file: notes.md (text/markdown, 8 bytes)"
    assert answer == "-# 📎 notes.md was not read: this backend does not read files.\n\nHere is what I know."
    assert fake.downloads == []
