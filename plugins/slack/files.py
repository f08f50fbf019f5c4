"""Files on Slack questions: the `files` of a message or app_mention event, downloaded with
the bot token (scope `files:read`) from `url_private_download` when a backend reads them.

Slack answers a download without a valid token with its sign-in page (HTML, status 200),
not an error: such a response is refused rather than handed to the backend as the file.
A file object marked `file_access: check_file_info` (Slack sometimes sends partial ones)
has its URL looked up with `files.info` at download time. Neither the token nor the URL
is ever logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botkit.events import Attachment
from botkit.files import FileNotRead, content_type
from botkit.files import download as fetch

if TYPE_CHECKING:
    import httpx
    from slack_sdk.web.async_client import AsyncWebClient

#: seconds to connect and between bytes; the core bounds a whole download (`dispatch.file_timeout`)
TIMEOUT = 15.0
#: `mode` of a file whose content Slack does not hand out
_UNREADABLE = {
    "hidden_by_limit": "Slack hides it (the workspace's file history limit)",
    "external": "it is stored outside Slack",
}


def attachments(event: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files of a message event (deleted ones, `tombstone`, are gone and left out)."""
    files = event.get("files")
    found = []
    for file in files if isinstance(files, list) else ():
        if not isinstance(file, dict) or not file.get("id") or file.get("mode") == "tombstone":
            continue
        name = str(file.get("name") or file.get("title") or file["id"])
        size, url = file.get("size"), file.get("url_private_download") or file.get("url_private")
        mimetype = file.get("mimetype")
        found.append(Attachment(
            name, content_type(mimetype if isinstance(mimetype, str) else None, name),
            size if isinstance(size, int) else None, url=url if isinstance(url, str) else None,
            data={"id": str(file["id"]), "mode": str(file.get("mode") or "")}))
    return tuple(found)


async def download(api: AsyncWebClient, token: str, file: Attachment, limit: int) -> bytes:
    """The file's content, with the bot token as a Bearer header."""
    unreadable = _UNREADABLE.get(file.data.get("mode", ""))
    if unreadable:
        raise FileNotRead(unreadable)
    url = file.url
    if not url:
        info = (await api.files_info(file=file.data["id"])).get("file") or {}
        url = info.get("url_private_download") or info.get("url_private")
        if not url:
            raise FileNotRead("Slack gave no address for it")

    def not_a_sign_in_page(response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/html") and file.content_type != "text/html":
            raise FileNotRead("Slack did not hand it over (does the app have the files:read scope?)")

    return await fetch(url, limit=limit, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT,
                       check=not_a_sign_in_page)
