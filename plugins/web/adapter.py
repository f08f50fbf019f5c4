"""The web adapter: the chat page, its static files and the WebSocket it talks to.

The page opens one WebSocket to `<path>/ws` and says who it is first:
`{"type": "hello", "browser": <its random id>, "conversation": <id>}`. The browser id never
leaves the page otherwise (local storage, no cookie): the server keeps only its SHA-256,
which is the thread key's channel, so a thread key in the store or the dashboard does not
let anyone speak for that browser. Then:

    page -> server   {"type": "ask", "id": <question id>, "text": ...}
                     {"type": "feedback", "message": <message id>, "value": "up" | "down"}
    server -> page   {"type": "history", "items": [...]}      on hello: the conversation so far
                     {"type": "question", "id": ..., "text": ...}
                     {"type": "message", "id": ..., "reply_to": <question id> | null, "text": ...,
                      "notes": [{"text", "kind", "placement"}], "status": ..., "final": ...}
                     {"type": "accepted" | "voted" | "error", ...}

A "message" is the full state of one answer message (the renderer's post or edit), so the
page replaces what it shows; the renderer's edit interval and latest-wins rules apply as on
every platform. A question id is chosen by the page, so a question sent again after a
dropped connection is answered once (the event id is the browser's hash and that id).

Nothing here runs for turns of other adapters: the adapter has no per-turn hooks, only
`send`/`edit` for its own messages and the routes it mounts.

CSRF: the chat carries no ambient credential (no cookie); a WebSocket from a page of another
origin is refused unless that origin is in `allowed_origins`, and the page may be framed only
by those origins (`Content-Security-Policy: frame-ancestors`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from collections import OrderedDict
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from botkit import hookimpl
from botkit.adapters import Adapter, Capabilities, MessageRef, Outgoing, Unavailable
from botkit.markup import Markup
from botkit.events import Draft, Inbound, Note, Source, ThreadKey
from botkit_plugins.web import PLATFORM, WebConfig

if TYPE_CHECKING:
    from botkit.bot import Bot

log = logging.getLogger("botkit.web")

_BROWSER = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
#: items (questions, answer messages) of a conversation kept in memory until the store has them
_LIVE_ITEMS = 40
#: conversations whose latest items are kept in memory; the least recently used go first
_LIVE_THREADS = 10_000
#: the largest WebSocket message taken from a page (a question is capped well below it)
_MAX_FRAME = 512 * 1024
_STATIC = {"chat.js": "text/javascript", "chat.css": "text/css", "widget.js": "text/javascript"}
_VOTES = {"up": "👍", "down": "👎"}


def _static(name: str) -> str:
    return resources.files("botkit_plugins.web").joinpath("static", name).read_text(encoding="utf-8")


def _json_for_html(value: Any) -> str:
    """JSON that can sit inside a <script> element: nothing in it closes the element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


class _Page:
    """One open page: its WebSocket, the conversation it shows, and what waits to be sent to it.

    Sends go through one writer task, so a slow browser never holds up the renderer: while
    it waits, a message edited again is sent once, in its latest state.
    """

    __slots__ = ("ws", "thread", "user", "waiting", "wake", "writer")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.thread: ThreadKey | None = None
        self.user = ""
        self.waiting: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.wake = asyncio.Event()
        self.writer: asyncio.Task | None = None

    def push(self, key: str, payload: dict[str, Any]) -> None:
        self.waiting[key] = payload
        self.wake.set()

    async def write(self) -> None:
        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.waiting:
                _, payload = self.waiting.popitem(last=False)
                try:
                    await self.ws.send_str(json.dumps(payload))
                except (ConnectionError, RuntimeError):
                    return


class WebAdapter(Adapter):
    platform = PLATFORM

    def __init__(self, name: str, config: WebConfig, bot: Bot) -> None:
        super().__init__(name, config, bot)
        self.config: WebConfig = config
        self.capabilities = Capabilities(max_length=config.max_length, edit_interval=config.edit_interval,
                                         markup=Markup.MARKDOWN, can_edit=True)
        self.placeholder = config.progress_text
        base = config.path.rstrip("/")
        self.page_path = base or "/"
        self.base = base
        self._pages: dict[ThreadKey, set[_Page]] = {}
        self._open: set[_Page] = set()
        # the latest items of each conversation, until the store's history has them (by item key)
        self._live: OrderedDict[ThreadKey, OrderedDict[str, dict[str, Any]]] = OrderedDict()
        self._running = False
        self._csp = self._content_security_policy()
        self._files = {name: _static(name) for name in _STATIC}
        self._page_html = _static("chat.html")

    # -- lifecycle and routes ---------------------------------------------------------------------

    @hookimpl
    def botkit_routes(self, server: Any) -> None:
        server.add_route("GET", self.page_path, self.page)
        server.add_route("GET", f"{self.base}/ws", self.socket)
        server.add_route("GET", f"{self.base}/widget.js", self.widget)
        server.add_route("GET", f"{self.base}/static/{{name}}", self.static)

    async def start(self) -> None:
        self._running = True
        log.info("web chat at %s%s", self.bot.server.url, self.page_path)

    async def stop(self) -> None:
        self._running = False
        for page in list(self._open):
            await page.ws.close(code=1001, message=b"the bot is stopping")

    @property
    def ready(self) -> bool:
        return self._running

    # -- the page and its files ---------------------------------------------------------------------

    def _content_security_policy(self) -> str:
        origins = self.config.allowed_origins
        ancestors = "*" if "*" in origins else " ".join(["'self'", *origins])
        return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": self._csp}

    async def page(self, request: web.Request) -> web.Response:
        config = self.config
        settings = {"title": config.title, "welcome": config.welcome, "maxQuestion": config.max_question_chars,
                    "socket": f"{self.base}/ws", "embedded": request.query.get("embed") == "1"}
        html = (self._page_html.replace("{{title}}", _escape(config.title))
                .replace("{{base}}", _escape(self.base))
                .replace("{{settings}}", _json_for_html(settings)))
        return web.Response(body=html.encode(), headers=self._headers("text/html"))

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self._files[name].encode(), headers=self._headers(_STATIC[name]))

    async def widget(self, request: web.Request) -> web.Response:
        """The embed script: any site may load it; only `allowed_origins` may show the chat it frames."""
        headers = self._headers("text/javascript")
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return web.Response(body=self._files["widget.js"].encode(), headers=headers)

    # -- the WebSocket ---------------------------------------------------------------------------------

    def origin_allowed(self, request: web.Request) -> bool:
        """A page of this server, of an allowed origin, or no browser at all (no Origin header)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        allowed = self.config.allowed_origins
        if "*" in allowed or origin.lower() in allowed:
            return True
        parts = urlsplit(origin)
        return bool(parts.netloc) and parts.netloc.lower() == request.host.lower()

    async def socket(self, request: web.Request) -> web.StreamResponse:
        if not self.origin_allowed(request):
            log.info("web chat: a connection from origin %r refused (not in allowed_origins)",
                     request.headers.get("Origin"))
            raise web.HTTPForbidden(text="this origin may not use the chat (adapters.web.allowed_origins)")
        if not self._running or len(self._open) >= self.config.max_connections:
            raise web.HTTPServiceUnavailable(text="the chat is not taking connections now")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=_MAX_FRAME)
        await ws.prepare(request)
        page = _Page(ws)
        page.writer = asyncio.create_task(page.write(), name="web-chat-writer")
        self._open.add(page)
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    await self._refuse(page, "a message that is not a JSON object")
                    continue
                await self._on_message(page, message)
        finally:
            self._open.discard(page)
            self._unsubscribe(page)
            page.writer.cancel()
        return ws

    async def _refuse(self, page: _Page, why: str, question: str | None = None) -> None:
        page.push(f"error:{secrets.token_hex(4)}", {"type": "error", "id": question, "text": why})

    async def _on_message(self, page: _Page, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "hello":
            await self._hello(page, message)
        elif page.thread is None:
            await self._refuse(page, "say hello first")
        elif kind == "ask":
            await self._ask(page, message)
        elif kind == "feedback":
            await self._feedback(page, message)
        else:
            await self._refuse(page, "an unknown message type")

    async def _hello(self, page: _Page, message: dict[str, Any]) -> None:
        browser, conversation = message.get("browser"), message.get("conversation")
        if not (isinstance(browser, str) and _BROWSER.match(browser)
                and isinstance(conversation, str) and _ID.match(conversation)):
            await self._refuse(page, "a browser id or conversation id of another shape")
            return
        channel = hashlib.sha256(browser.encode()).hexdigest()[:32]
        self._unsubscribe(page)
        page.thread = ThreadKey(PLATFORM, self.name, channel, conversation)
        page.user = channel
        self._pages.setdefault(page.thread, set()).add(page)
        page.waiting.clear()  # what was waiting belongs to the conversation shown before
        page.push("history", {"type": "history", "conversation": conversation,
                              "items": await self._history(page.thread)})

    def _unsubscribe(self, page: _Page) -> None:
        if page.thread is None:
            return
        pages = self._pages.get(page.thread)
        if pages is not None:
            pages.discard(page)
            if not pages:
                del self._pages[page.thread]

    async def _ask(self, page: _Page, message: dict[str, Any]) -> None:
        question_id, text = message.get("id"), message.get("text")
        if not (isinstance(question_id, str) and _ID.match(question_id)) or not isinstance(text, str):
            await self._refuse(page, "a question of another shape")
            return
        text = text.strip()
        if not text:
            return
        limit = self.config.max_question_chars
        if len(text) > limit:
            await self._refuse(page, f"Questions can be at most {limit:,} characters long; this one has "
                                     f"{len(text):,}.", question_id)
            return
        thread = page.thread
        assert thread is not None
        if not self.bot.accepting:
            await self._refuse(page, self.bot.config.root.dispatch.unavailable_message, question_id)
            return
        event_id = f"{thread.channel}:{question_id}"
        inbound = Inbound(event_id=event_id, thread=thread, user=page.user, text=text, adapter=self.name,
                          is_direct=True, raw={"question": question_id})
        key = f"q:{question_id}"
        self._publish(thread, key, {"type": "question", "id": question_id, "text": text})
        try:
            await self.bot.submit(inbound)
        except Unavailable as exc:  # not taken: not part of the conversation a reload shows
            self._live.get(thread, {}).pop(key, None)
            await self._refuse(page, exc.notice or self.bot.config.root.dispatch.unavailable_message, question_id)
            return
        page.push(f"accepted:{question_id}", {"type": "accepted", "id": question_id})

    async def _feedback(self, page: _Page, message: dict[str, Any]) -> None:
        message_id, value = message.get("message"), message.get("value")
        if not (isinstance(message_id, str) and _ID.match(message_id)) or value not in _VOTES:
            await self._refuse(page, "feedback of another shape")
            return
        assert page.thread is not None
        await self.bot.plugins.reaction(self, page.thread, message_id, page.user, _VOTES[value])
        page.push(f"voted:{message_id}", {"type": "voted", "message": message_id, "value": value})

    # -- what the renderer delivers ------------------------------------------------------------------

    def _publish(self, thread: ThreadKey, key: str, payload: dict[str, Any]) -> None:
        live = self._live.get(thread)
        if live is None:
            live = self._live[thread] = OrderedDict()
            if len(self._live) > _LIVE_THREADS:
                self._live.popitem(last=False)
        else:
            self._live.move_to_end(thread)
        live[key] = payload
        if len(live) > _LIVE_ITEMS:
            live.popitem(last=False)
        for page in self._pages.get(thread, ()):
            page.push(key, payload)

    @staticmethod
    def _payload(message_id: str, reply_to: str | None, message: Outgoing) -> dict[str, Any]:
        return {"type": "message", "id": message_id, "reply_to": reply_to, "text": message.text,
                "notes": [{"text": n.text, "kind": n.kind, "placement": n.placement} for n in message.notes],
                "status": message.status, "final": message.final}

    async def send(self, thread: ThreadKey, message: Outgoing, reply_to: Inbound | None = None) -> MessageRef:
        message_id = secrets.token_urlsafe(12)
        question = _question_id(reply_to)
        self._publish(thread, f"m:{message_id}", self._payload(message_id, question, message))
        return MessageRef(thread, message_id, {"reply_to": question})

    async def edit(self, ref: MessageRef, message: Outgoing) -> None:
        reply_to = ref.data.get("reply_to")
        self._publish(ref.thread, f"m:{ref.message_id}", self._payload(ref.message_id, reply_to, message))

    # -- the conversation so far ----------------------------------------------------------------------

    async def _history(self, thread: ThreadKey) -> list[dict[str, Any]]:
        """The conversation's recorded turns (the latest `history`), then what is newer in memory."""
        items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        if self.config.history:
            try:
                turns = await self.bot.store.thread_turns(thread, limit=self.config.history)
            except Exception:
                log.warning("web chat: could not read the history of %s", thread, exc_info=True)
                turns = []
            for turn in turns:
                question = turn["event_id"].split(":", 1)[-1]
                items[f"q:{question}"] = {"type": "question", "id": question, "text": turn["question"]}
                message_ids = turn["message_ids"] or [f"turn-{turn['id']}"]
                for message_id in message_ids[:-1]:  # the answer was split: its last message carries it
                    items[f"m:{message_id}"] = None  # type: ignore[assignment]
                items[f"m:{message_ids[-1]}"] = self._recorded(turn, message_ids[-1], question)
        for key, payload in self._live.get(thread, {}).items():
            if key not in items:
                items[key] = payload
        return [payload for payload in items.values() if payload is not None]

    def _recorded(self, turn: dict[str, Any], message_id: str, question: str) -> dict[str, Any]:
        """A recorded answer as its final edit showed it (rendered again by the middlewares)."""
        failed = None
        if turn["status"] != "complete" and turn.get("error"):
            failed = self.bot.config.root.dispatch.failure_notice.format(reason=turn["error"])
        sources = [Source(**source) for source in turn["sources"] or []]
        draft = Draft(turn["answer"], sources, turn["score"], None, [], [], True, failed, turn["backend"],
                      ThreadKey.parse(turn["thread"]))
        self.bot.plugins.render(draft, self.surface)
        notes = [n for n in draft.notes if n.placement == "above"] + [n for n in draft.notes if n.placement != "above"]
        if failed:
            notes.append(Note(failed, kind="error"))
        return self._payload(message_id, question, Outgoing(draft.text, notes, None, True))


def _question_id(inbound: Inbound | None) -> str | None:
    if inbound is None:
        return None
    raw = inbound.raw
    if isinstance(raw, dict) and isinstance(raw.get("question"), str):
        return raw["question"]
    return inbound.event_id.split(":", 1)[-1]
