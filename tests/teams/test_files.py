"""Files on Teams questions end to end: a file sent in a personal chat (pre-authenticated
download URL) and an image pasted into a group chat message (on the connector: the bot's
token), through the real bot to the OpenAI-compatible backend's loopback fake."""

from __future__ import annotations

import base64

from botkit.testing import running_bot
from botkit_plugins.openai.fake import FakeOpenAI

from .test_end_to_end import _post

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
CSV = b"month,refunds\nJanuary,12\nFebruary,30\n"


def config(fake, model, **extra):
    return {"adapters": {"teams": fake.adapter_config(streaming=False)},
            "backends": {"gpt": {"type": "openai", "base_url": model.url + "/v1", "model": "vision-1",
                                 "system_prompt": None}}, **extra}


def final_text(fake) -> str:
    return fake.calls[-1].body["text"]


async def test_a_file_and_a_pasted_image_reach_the_model(fake, tmp_path):
    sent = fake.file_attachment("refunds.csv", CSV)
    pasted = fake.inline_image(PNG)
    async with FakeOpenAI(answer="February doubled.") as model:
        async with running_bot(config(fake, model), tmp_path) as bot:
            assert await _post(bot, fake, fake.activity("what changed?", attachments=[sent])) == 202
            await bot.idle(10)
            group = fake.activity("and this?", kind="groupChat", mention_bot=True, attachments=[pasted])
            assert await _post(bot, fake, group) == 202
            await bot.idle(10)
    csv_question, image_question = model.questions()
    assert csv_question == ("what changed?\n\n--- refunds.csv (text/csv) ---\n" + CSV.decode() +
                            "\n--- end of refunds.csv ---")
    assert image_question == [  # Teams said only "image/*": the bytes say PNG
        {"type": "text", "text": "and this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}]
    assert len(fake.downloads) == 2
    assert final_text(fake) == "February doubled."


async def test_a_backend_without_files_says_so_and_downloads_nothing(fake, tmp_path):
    cfg = {"adapters": {"teams": fake.adapter_config(streaming=False)},
           "backends": {"kb": {"type": "fake", "answer": "From the knowledge base."}}}
    async with running_bot(cfg, tmp_path) as bot:
        activity = fake.activity("", attachments=[fake.file_attachment("refunds.csv", CSV)])
        assert await _post(bot, fake, activity) == 202
        await bot.idle(10)
    assert fake.downloads == []
    assert final_text(fake) == ("📎 refunds.csv was not read: this backend does not read files.\n\n"
                                "From the knowledge base.")
    assert bot.backends["kb"].calls[0][1] == "About the attached file: refunds.csv (text/csv)"
