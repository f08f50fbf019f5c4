"""Files and images on questions: downloaded only when a backend asks, within limits, and
never dropped without a word.

An adapter lists a message's files as `Attachment`s on its `Inbound`; the backend sees them
on `Question.attachments` and reads one with `await question.read(attachment)`. Reading goes
through the adapter's `download` (the platform's authenticated URL), bounded here by
`dispatch.max_file_size` (a file the platform says is larger is not downloaded at all) and
`dispatch.file_timeout`. Whatever the backend did not read (it cannot read files, it skipped
a type, the file was too large or could not be fetched) is said in a note above the answer.
Neither contents nor download URLs are ever logged: some URLs carry their own signature.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from botkit.events import Attachment

if TYPE_CHECKING:
    import httpx

    from botkit.adapters import Adapter

log = logging.getLogger("botkit.files")

#: why a file was not read when the backend never asked for it
NOT_ASKED = "this backend does not read files"

Fetch = Callable[[Attachment], Awaitable[bytes]]


class FileNotRead(Exception):
    """The content of an attachment could not or would not be read; `reason` is shown to the
    user as it is ("it is larger than the 10 MB limit"), so it carries no secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def human_size(size: int) -> str:
    """Bytes as people read them: 512 bytes, 18 KB, 2.5 MB (decimal units, as platforms show)."""
    if size < 1000:
        return f"{size} bytes"
    scaled = size / 1000
    for unit in ("KB", "MB"):
        if scaled < 1000:
            return f"{scaled:.1f}".removesuffix(".0") + f" {unit}"
        scaled /= 1000
    return f"{scaled:.1f}".removesuffix(".0") + " GB"


def content_type(declared: str | None, name: str) -> str:
    """A MIME type without parameters ("text/plain; charset=utf-8" -> "text/plain"); guessed
    from the file name when the platform gave none."""
    kind = (declared or "").split(";", 1)[0].strip().lower()
    if "/" in kind:
        return kind
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def describe(attachment: Attachment) -> str:
    """"report.pdf (application/pdf, 2.1 MB)": what a backend may tell its model about a file."""
    size = f", {human_size(attachment.size)}" if attachment.size is not None else ""
    return f"{attachment.name} ({attachment.content_type}{size})"


def fetcher(adapter: Adapter, limit: int, timeout: float) -> Fetch:
    """How the core reads an attachment for a backend: through `adapter.download`, refusing a
    file the platform says is over `limit` bytes before any request, and bounding the
    download by `limit` and `timeout`. Every failure is a `FileNotRead` with a reason fit
    to show; the log names the file and the kind of failure, never the URL or a token."""

    async def fetch(attachment: Attachment) -> bytes:
        too_large = FileNotRead(f"it is larger than the {human_size(limit)} limit")
        if attachment.size is not None and attachment.size > limit:
            raise too_large
        try:
            async with asyncio.timeout(timeout):
                content = await adapter.download(attachment, limit)
        except FileNotRead:
            raise
        except TimeoutError:
            log.warning("%s: downloading %r took longer than %g s", adapter.name, attachment.name, timeout)
            raise FileNotRead("downloading it took too long") from None
        except Exception as exc:  # the message of an HTTP library's error may quote the URL: not logged
            status = getattr(getattr(exc, "response", None), "status_code", None)
            log.warning("%s: downloading %r failed (%s)", adapter.name, attachment.name,
                        f"HTTP {status}" if status else type(exc).__name__)
            raise FileNotRead("it could not be downloaded") from None
        if len(content) > limit:
            raise too_large
        return content

    return fetch


async def download(url: str, *, limit: int, headers: dict[str, str] | None = None, timeout: float = 15.0,
                   check: Callable[[httpx.Response], None] | None = None) -> bytes:
    """GET `url` and return the body, reading no more than `limit` bytes: a larger file
    (by Content-Length, or once more has arrived) raises `FileNotRead` and is not read
    further. The shared plumbing of the adapters' `download` methods: `timeout` is httpx's
    (connect, and between bytes), `check` may refuse a response before its body is read
    (raise `FileNotRead`). HTTP errors raise `httpx.HTTPStatusError` (`fetcher` logs the
    status only). Redirects are followed; httpx drops `Authorization` on one to another host."""
    import httpx

    too_large = FileNotRead(f"it is larger than the {human_size(limit)} limit")
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client, \
            client.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        if check is not None:
            check(response)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        content = bytearray()
        async for chunk in response.aiter_bytes():
            content += chunk
            if len(content) > limit:
                raise too_large
    return bytes(content)


def unread_note(unread: Iterable[tuple[Attachment, str]]) -> str:
    """The note shown above an answer for the files its backend did not read, one line each."""
    return "\n".join(f"📎 {attachment.name} was not read: {reason}." for attachment, reason in unread)


def placeholder_question(attachments: Sequence[Attachment]) -> str:
    """The question asked when a message is only files: it names them."""
    return ("About the attached files: " if len(attachments) > 1 else "About the attached file: ") + ", ".join(
        describe(a) for a in attachments)
