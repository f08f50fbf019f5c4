"""Files on Slack questions end to end: signed Events API requests, the real bolt/slack_sdk,
files downloaded from the fake Slack's file host with the bot token, the OpenAI-compatible
backend talking to its loopback fake (which records the content parts it was sent)."""

from __future__ import annotations

import base64
from typing import Any

from botkit.testing import running_bot
from botkit_plugins.openai.fake import FakeOpenAI
from botkit_plugins.slack.testing import BOT_USER, FakeSlack, event_callback

from .conftest import bot_config, message, post_event

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
LOG = b"2024-05-01 12:00:01 ERROR db: connection refused (port 5432)\n"


def openai(model: FakeOpenAI, **settings: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": model.url + "/v1", "model": "vision-1", "system_prompt": None,
            **settings}


def with_files(text: str, *files: dict[str, Any], event_id: str = "EvF1") -> dict[str, Any]:
    """A mention carrying files (Slack sends app_mention with `files` for a shared file)."""
    return event_callback(message(f"<@{BOT_USER}> {text}", files=list(files)), event_id)


def final_text(fake: FakeSlack) -> str:
    """What the answer reads at the end (its fallback text: notes and answer)."""
    updates = fake.of("chat.update")
    return (updates[-1] if updates else fake.of("chat.postMessage")[-1])["text"]


async def test_an_image_reaches_the_model_as_an_image_part_and_a_text_file_is_inlined(fake, tmp_path):
    image = fake.file("screenshot.png", PNG, "image/png")
    log = fake.file("db.log", LOG, "text/plain")
    async with FakeOpenAI(answer="The database is down.") as model:
        config = bot_config(fake)
        config["backends"] = {"gpt": openai(model)}
        async with running_bot(config, tmp_path) as bot:
            await post_event(bot.server.url, with_files("what went wrong?", image, log))
            await fake.wait_for(lambda f: "The database is down." in final_text(f) if f.of("chat.postMessage")
                                else False)
            await bot.idle(5)
    [content] = model.questions()
    assert content[0]["type"] == "text"
    assert content[0]["text"] == ("what went wrong?\n\n--- db.log (text/plain) ---\n" + LOG.decode() +
                                  "\n--- end of db.log ---")
    assert content[1:] == [{"type": "image_url",
                            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}]
    assert sorted(fake.downloads) == sorted([image["id"], log["id"]])
    assert "not read" not in final_text(fake)


async def test_a_file_over_the_limit_is_not_downloaded_and_the_user_is_told(fake, tmp_path):
    dump = fake.file("heap.dump", b"\0" * 5000, "application/octet-stream")
    big_log = fake.file("huge.log", b"x" * 5000, "text/plain")
    async with FakeOpenAI(answer="Without the files, I can only guess.") as model:
        config = bot_config(fake, dispatch={"max_file_size": "1KB"})
        config["backends"] = {"gpt": openai(model)}
        async with running_bot(config, tmp_path) as bot:
            await post_event(bot.server.url, with_files("why so slow?", dump, big_log))
            await fake.wait_for(lambda f: bool(f.of("chat.postMessage")) and "only guess" in final_text(f))
            await bot.idle(5)
    assert fake.downloads == []
    text = final_text(fake)
    assert "📎 huge.log was not read: it is larger than the 1 KB limit." in text
    assert "📎 heap.dump was not read: this backend reads images and text files only." in text
    [question] = model.questions()  # a plain string: nothing to send as a part
    assert question == ("why so slow?\n\n(Also attached, but not read: heap.dump (application/octet-stream, 5 KB); "
                        "huge.log (text/plain, 5 KB).)")


async def test_a_backend_that_reads_no_files_answers_with_a_note(fake, tmp_path):
    log = fake.file("db.log", LOG, "text/plain")
    shared = message("", kind="message", subtype="file_share", channel="D1", channel_type="im", files=[log])
    async with running_bot(bot_config(fake, backend={"answer": "Here is what I know."}), tmp_path) as bot:
        await post_event(bot.server.url, event_callback(shared, "EvF2"))
        await fake.wait_for(lambda f: bool(f.of("chat.postMessage")) and "what I know" in final_text(f))
        await bot.idle(5)
    assert fake.downloads == []
    final = (fake.of("chat.update") or fake.of("chat.postMessage"))[-1]
    assert final["blocks"][0] == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "📎 db.log was not read: this backend does not read files."}]}
    # a message that is only a file asks about the file
    assert bot.backends["b"].calls[0][1] == "About the attached file: db.log (text/plain, 61 bytes)"


async def test_without_the_bot_token_slack_hands_out_no_file(fake, tmp_path):
    image = fake.file("screenshot.png", PNG, "image/png")
    async with FakeOpenAI(answer="No image here.") as model:
        config = bot_config(fake, slack={"bot_token": "xoxb-another-workspace"})
        config["backends"] = {"gpt": openai(model)}
        async with running_bot(config, tmp_path) as bot:
            await post_event(bot.server.url, with_files("see?", image))
            await fake.wait_for(lambda f: bool(f.of("chat.postMessage")) and "No image here." in final_text(f))
            await bot.idle(5)
    assert fake.downloads == []
    assert model.questions() == ["see?\n\n(Also attached, but not read: screenshot.png (image/png, 70 bytes).)"]
    assert ("📎 screenshot.png was not read: Slack did not hand it over (does the app have the files:read "
            "scope?).") in final_text(fake)


async def test_a_partial_file_object_is_looked_up_with_files_info(fake, tmp_path):
    log = fake.file("db.log", LOG, "text/plain")
    partial = {"id": log["id"], "mode": "hosted", "file_access": "check_file_info", "name": "db.log",
               "mimetype": "text/plain"}
    async with FakeOpenAI(answer="Port 5432 refused.") as model:
        config = bot_config(fake)
        config["backends"] = {"gpt": openai(model)}
        async with running_bot(config, tmp_path) as bot:
            await post_event(bot.server.url, with_files("what is this?", partial))
            await fake.wait_for(lambda f: bool(f.of("chat.postMessage")) and "5432" in final_text(f))
            await bot.idle(5)
    assert fake.of("files.info") == [{"file": log["id"]}]
    assert LOG.decode() in model.questions()[0]


def test_the_app_manifest_asks_for_files_read() -> None:
    from pathlib import Path

    import yaml

    import botkit_plugins.slack

    manifest = yaml.safe_load((Path(botkit_plugins.slack.__file__).parent / "manifest.yaml").read_text())
    assert "files:read" in manifest["oauth_config"]["scopes"]["bot"]
