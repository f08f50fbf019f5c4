"""Files on Discord questions: a message's attachments, downloaded from Discord's CDN.

An attachment's URL is signed by Discord (its `ex`, `is` and `hm` parameters) and needs
no token; it expires after a day or so, long after any turn. The URL is never logged.
"""

from __future__ import annotations

import discord

from botkit.events import Attachment
from botkit.files import FileNotRead, content_type
from botkit.files import download as fetch

#: seconds to connect and between bytes; the core bounds a whole download (`dispatch.file_timeout`)
TIMEOUT = 15.0


def attachment(file: discord.Attachment) -> Attachment:
    """A message's attachment as the core's `Attachment` (the URL is how `download` gets it)."""
    return Attachment(file.filename, content_type(file.content_type, file.filename), file.size, url=file.url,
                      data={"id": str(file.id)})


async def download(file: Attachment, limit: int) -> bytes:
    if not file.url:
        raise FileNotRead("Discord gave no address for it")
    return await fetch(file.url, limit=limit, timeout=TIMEOUT)
