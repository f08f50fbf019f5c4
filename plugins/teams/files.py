"""Files on Teams questions: a message activity's `attachments`, downloaded on demand.

Two kinds carry a file (Microsoft's "Send and receive files" for bots):
- `application/vnd.microsoft.teams.file.download.info`: a file sent in a personal chat; its
  `content.downloadUrl` is pre-authenticated (a short-lived token in the URL), so it is
  fetched without credentials;
- an inline image (`image/*`, `image/png`...) pasted into the message: its `contentUrl` is on
  the Bot Connector (the activity's `serviceUrl` host) and needs the bot's token.
The `text/html` copy of the message's own text and cards (`application/vnd.microsoft.card.*`)
are not files. Any other attachment with a `contentUrl` is listed too, fetched with the bot's
token only when it is on the connector's host: the token never goes anywhere else. Neither
tokens nor URLs are ever logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from botkit.events import Attachment
from botkit.files import FileNotRead, content_type
from botkit.files import download as fetch

FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
#: seconds to connect and between bytes; the core bounds a whole download (`dispatch.file_timeout`)
TIMEOUT = 15.0
_NOT_FILES = ("text/html", "application/vnd.microsoft.card.", "application/vnd.microsoft.teams.card.")


def attachments(activity: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files and images attached to a message activity."""
    service_host = urlsplit(str(activity.get("serviceUrl") or "")).netloc.lower()
    items = activity.get("attachments")
    found = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        kind = str(item.get("contentType") or "")
        content = item.get("content") if isinstance(item.get("content"), dict) else {}
        if kind == FILE_DOWNLOAD_INFO:
            name = str(item.get("name") or "file")
            file_type = str(content.get("fileType") or "")
            if file_type and "." not in name:
                name = f"{name}.{file_type}"
            url = content.get("downloadUrl")
            found.append(Attachment(name, content_type(None, name), None, url=url if isinstance(url, str) else None,
                                    data={"auth": "url"}))
        elif kind.startswith(_NOT_FILES) or not isinstance(item.get("contentUrl"), str):
            continue
        else:
            url = item["contentUrl"]
            on_connector = bool(service_host) and urlsplit(url).netloc.lower() == service_host
            name = str(item.get("name") or ("image" if kind.startswith("image/") else "file"))
            found.append(Attachment(name, content_type(kind, name), None, url=url,  # may be "image/*"
                                    data={"auth": "connector" if on_connector else "none"}))
    return tuple(found)


async def download(file: Attachment, limit: int, token: Callable[[], Awaitable[str]] | None) -> bytes:
    """The file's content; the bot's token (`token()`) goes only to the Bot Connector's own
    URLs, and only when the bot has credentials (not in local mode)."""
    if not file.url:
        raise FileNotRead("Teams gave no address for it")
    headers = {}
    if file.data.get("auth") == "connector" and token is not None:
        headers["Authorization"] = f"Bearer {await token()}"
    return await fetch(file.url, limit=limit, headers=headers, timeout=TIMEOUT)
