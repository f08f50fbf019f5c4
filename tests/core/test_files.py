"""Files on questions through the real dispatcher: read only when the backend asks, within the
size limit, and a note above the answer for every file the backend did not read."""

from __future__ import annotations

import json

from botkit.events import Attachment, Inbound, ThreadKey
from botkit.files import human_size
from botkit.store.base import JournalEntry
from botkit.testing import running_bot

LOG = Attachment("build.log", "text/plain", 11, url="mem://build.log", data={"id": "F1"})


def config(**backend):
    return {
        "adapters": {"rec": {"type": "recording", "placeholder": False}},
        "backends": {"b": {"type": "fake", "answer": "Answer.", **backend}},
    }


async def test_a_backend_that_reads_no_files_answers_with_a_note_and_nothing_is_downloaded(tmp_path):
    async with running_bot(config(), tmp_path) as bot:
        rec = bot.adapters["rec"]
        rec.files[LOG.url] = b"error: boom"
        await rec.inject("why did it fail?", attachments=(LOG,))
        await bot.idle(5)
        message = rec.messages[rec.order[0]]
    assert rec.downloads == []
    assert message.text == "Answer."
    [note] = message.notes
    assert (note.kind, note.placement) == ("attachments", "above")
    assert note.text == "📎 build.log was not read: this backend does not read files."
    assert message.plain().startswith("📎 build.log was not read")


async def test_a_backend_that_reads_gets_the_content_and_no_note_is_shown(tmp_path):
    async with running_bot(config(read_files=True), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        rec.files[LOG.url] = b"error: boom"
        await rec.inject("why did it fail?", attachments=(LOG,))
        await bot.idle(5)
    assert backend.files == [("build.log", b"error: boom")]
    assert rec.messages[rec.order[0]].notes == []


async def test_a_file_over_the_limit_is_not_downloaded_and_the_user_is_told(tmp_path):
    big = Attachment("dump.bin", "application/octet-stream", 5_000_000, url="mem://dump")
    unknown = Attachment("grows.txt", "text/plain", None, url="mem://grows")  # the platform gave no size
    cfg = {**config(read_files=True), "dispatch": {"max_file_size": "1MB"}}
    async with running_bot(cfg, tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        rec.files["mem://grows"] = b"x" * 1_500_000
        await rec.inject("look", attachments=(big, unknown))
        await bot.idle(5)
        message = rec.messages[rec.order[0]]
    assert rec.downloads == ["mem://grows"]  # the declared size was enough to refuse the first
    assert backend.files == [("dump.bin", "it is larger than the 1 MB limit"),
                             ("grows.txt", "it is larger than the 1 MB limit")]
    assert message.notes[0].text == ("📎 dump.bin was not read: it is larger than the 1 MB limit.\n"
                                     "📎 grows.txt was not read: it is larger than the 1 MB limit.")


async def test_a_message_that_is_only_a_file_is_asked_about_the_file(tmp_path):
    async with running_bot(config(), tmp_path) as bot:
        rec, backend = bot.adapters["rec"], bot.backends["b"]
        await rec.inject("", attachments=(LOG,))
        await bot.idle(5)
    assert backend.calls[0][1] == "About the attached file: build.log (text/plain, 11 bytes)"
    assert rec.texts()[0].startswith("📎 build.log was not read")


async def test_attachments_survive_the_journal() -> None:
    inbound = Inbound("E1", ThreadKey("slack", "T", "C", "1.0"), "U1", "what is this?", "slack",
                      attachments=(LOG,))
    entry = JournalEntry(inbound, "b", "what is this?")
    row = json.dumps(entry.inbound_fields())
    restored = JournalEntry.from_row("E1", inbound.thread, "b", "ask", "q", row, 1, "queued", "[]", 0.0, "")
    [attachment] = restored.inbound.attachments
    assert (attachment.name, attachment.content_type, attachment.size, attachment.url, attachment.data) == (
        "build.log", "text/plain", 11, "mem://build.log", {"id": "F1"})
    # a journal row written before attachments existed still reads
    old = json.dumps(entry.inbound_fields()[:8])
    assert JournalEntry.from_row("E1", inbound.thread, "b", "ask", "q", old, 1, "queued", "[]", 0.0,
                                 "").inbound.attachments == ()


def test_sizes_read_as_people_write_them() -> None:
    assert [human_size(n) for n in (512, 18_432, 10_000_000, 1_500_000, 2_500_000_000)] == [
        "512 bytes", "18.4 KB", "10 MB", "1.5 MB", "2.5 GB"]
