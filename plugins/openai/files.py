"""Files on a question, as the chat-completions API takes them.

Images become `image_url` content parts holding a `data:` URL (base64), which every
vision-capable OpenAI-compatible server accepts without a separate upload; text files
(source code, logs, CSV, JSON, Markdown...) are inlined into the question's text, up to
`max_file_chars` characters. Anything else, and images when `images` is off, is left
unread with a reason: the core shows it under the answer, and the model is told that
the file was there but not read, so it does not pretend to have seen it.
"""

from __future__ import annotations

import base64
from typing import Any

from botkit.backends import Question
from botkit.events import Attachment
from botkit.files import FileNotRead, describe

#: image types the chat-completions API accepts
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: non-text/* MIME types that are text all the same
_TEXT_TYPES = frozenset({
    "application/json", "application/xml", "application/yaml", "application/x-yaml", "application/toml",
    "application/javascript", "application/x-javascript", "application/typescript", "application/sql",
    "application/x-sh", "application/x-shellscript", "application/x-python", "application/csv",
    "application/x-ndjson", "application/ld+json", "application/graphql", "application/x-httpd-php",
})


def is_text(attachment: Attachment) -> bool:
    kind = attachment.content_type
    return kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith(("+json", "+xml"))


async def question_content(question: Question, *, images: bool, max_chars: int) -> str | list[dict[str, Any]]:
    """The user message's `content` for `question`: its text with text files inlined, as a
    plain string; a list of content parts (text first, then images) when an image is sent."""
    text = question.text
    inlined: list[str] = []
    parts: list[dict[str, Any]] = []
    unread: list[Attachment] = []
    for attachment in question.attachments:
        if attachment.is_image:
            if not images:
                question.skip(attachment, "this backend is set not to send images to its model")
            elif attachment.content_type not in IMAGE_TYPES and attachment.content_type != "image/*":
                question.skip(attachment, f"{attachment.content_type} images are not sent to the model "
                                          "(PNG, JPEG, GIF and WebP are)")
            else:
                content = await _read(question, attachment)
                if content is not None:
                    kind = image_type(content)
                    if kind is not None:
                        encoded = base64.b64encode(content).decode("ascii")
                        parts.append({"type": "image_url", "image_url": {"url": f"data:{kind};base64,{encoded}"}})
                        continue
                    question.skip(attachment, "it is not a PNG, JPEG, GIF or WebP image")
        elif is_text(attachment):
            content = await _read(question, attachment)
            body = _decoded(question, attachment, content, max_chars) if content is not None else None
            if body is not None:
                inlined.append(f"--- {attachment.name} ({attachment.content_type}) ---\n{body}\n"
                               f"--- end of {attachment.name} ---")
                continue
        else:
            question.skip(attachment, "this backend reads images and text files only")
        unread.append(attachment)
    if inlined:
        text = "\n\n".join([text, *inlined])
    if unread:
        text += "\n\n(Also attached, but not read: " + "; ".join(describe(a) for a in unread) + ".)"
    if not parts:
        return text
    return [{"type": "text", "text": text}, *parts]


def image_type(content: bytes) -> str | None:
    """The image's MIME type by its first bytes (platforms may say only "image/*"), if the
    model takes it."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


async def _read(question: Question, attachment: Attachment) -> bytes | None:
    try:
        return await question.read(attachment)
    except FileNotRead:
        return None  # the question keeps the reason, for the note under the answer


def _decoded(question: Question, attachment: Attachment, content: bytes, max_chars: int) -> str | None:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        question.skip(attachment, "it is not UTF-8 text")
        return None
    if len(text) > max_chars:
        question.skip(attachment, f"it is longer than the {max_chars:,} characters this backend inlines")
        return None
    return text
