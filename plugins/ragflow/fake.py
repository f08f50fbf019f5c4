"""A loopback fake of RAGFlow's HTTP API (v0.22–v0.24 shapes), for tests.

Chats, sessions and completions under `/api/v1`, every answer HTTP 200 with RAGFlow's
envelope, streams framed as RAGFlow frames them (`data:` + `json.dumps`, no space).
`generation` picks the stream style: "cumulative" (≤ v0.23) or "incremental" (≥ v0.24);
`markers` picks `[ID:n]` or the older `##n$$`. `streams` replays raw bytes instead.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from botkit.testing import FakeServer, openai_chunk, send_stream, words

ANSWER = ("Robot Utility Models are policies trained on diverse environments and objects that can be "
          "deployed in new environments without further data or training [ID:0]. They reach about a 90% "
          "success rate on unseen environments [ID:1].")
CHUNKS = [
    {"id": "faf26c791128f2d5e821f822671063bd",
     "content": "Robot Utility Models are trained on a diverse set of environments and objects, and then can be "
                "deployed in novel environments with novel objects without any further data or training.",
     "document_id": "dd58f58e888511ef89c90242ac120006", "document_name": "robot_utility_models.pdf",
     "dataset_id": "8e83e57a884611ef9d760242ac120006", "image_id": "", "positions": [[1, 72, 523, 140, 262]],
     "url": None, "similarity": 0.8121, "vector_similarity": 0.7702, "term_similarity": 0.9098, "doc_type": ""},
    {"id": "0c3e5b1d2a4f46e8b9d7c6a5f4e3d2c1",
     "content": "The policies reach a 90% success rate in unseen environments on five utility tasks.",
     "document_id": "dd58f58e888511ef89c90242ac120006", "document_name": "robot_utility_models.pdf",
     "dataset_id": "8e83e57a884611ef9d760242ac120006", "image_id": "", "positions": [[4, 72, 523, 301, 344]],
     "url": None, "similarity": 0.6534, "vector_similarity": 0.6011, "term_similarity": 0.7754, "doc_type": ""},
]


def event(obj: Any) -> str:
    return "data:" + json.dumps(obj, ensure_ascii=False) + "\n\n"


def ok(data: Any = None) -> web.Response:
    return web.json_response({"code": 0} if data is None else {"code": 0, "data": data})


def error(code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"code": code, "message": message, **extra})


class FakeRagflow(FakeServer):
    def __init__(self, api_key: str = "ragflow-test-key", *, answer: str = ANSWER,
                 chunks: list[dict[str, Any]] | None = None, generation: str = "cumulative",
                 markers: str = "id") -> None:
        self.api_key = api_key
        self.answer = answer
        self.chunks = CHUNKS if chunks is None else chunks
        self.generation = generation
        self.markers = markers
        self.chats: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        super().__init__()

    def add_chat(self, name: str = "support", chat_id: str | None = None) -> str:
        chat_id = chat_id or uuid.uuid1().hex
        self.chats[chat_id] = {"id": chat_id, "name": name, "dataset_ids": [], "llm": {}, "prompt": {}}
        return chat_id

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/chats", self.list_chats)
        router.add_post("/api/v1/chats", self.create_chat)
        router.add_post("/api/v1/chats/{chat_id}/sessions", self.create_session)
        router.add_get("/api/v1/chats/{chat_id}/sessions", self.list_sessions)
        router.add_delete("/api/v1/chats/{chat_id}/sessions", self.delete_sessions)
        router.add_post("/api/v1/chats/{chat_id}/completions", self.completions)
        router.add_post("/api/v1/chats_openai/{chat_id}/chat/completions", self.openai_completions)

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if not header:
            return error(0, "`Authorization` can't be empty", data=False)
        parts = header.split()
        if len(parts) != 2:
            return error(0, "Please check your authorization format.", data=False)
        if parts[1] != self.api_key:
            return error(109, "Authentication error: API key is invalid!", data=False)
        return None

    def _chat(self, request: web.Request) -> str | web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        chat_id = request.match_info["chat_id"]
        if chat_id not in self.chats:
            return error(102, f"You don't own the chat {chat_id}")
        return chat_id

    async def list_chats(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        name = request.query.get("name")
        chats = [c for c in self.chats.values() if not name or c["name"] == name]
        if name and not chats:
            return error(102, "The chat doesn't exist")
        return ok(chats)

    async def create_chat(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        if not body.get("name"):
            return error(102, "`name` is required.")
        if any(c["name"] == body["name"] for c in self.chats.values()):
            return error(102, "Duplicated chat name in creating chat.")
        chat_id = self.add_chat(body["name"])
        self.chats[chat_id].update({k: body[k] for k in ("dataset_ids", "llm", "prompt") if k in body})
        return ok(self.chats[chat_id])

    async def create_session(self, request: web.Request) -> web.Response:
        chat_id = self._chat(request)
        if not isinstance(chat_id, str):
            return chat_id
        body = await request.json()
        if body.get("name", "New session") == "":
            return error(102, "`name` can not be empty.")
        session_id = uuid.uuid1().hex
        self.sessions[session_id] = {
            "chat_id": chat_id, "id": session_id, "name": body.get("name", "New session"),
            "user_id": body.get("user_id", ""), "create_date": "Fri, 11 Oct 2024 08:46:14 GMT",
            "update_date": "Fri, 11 Oct 2024 08:46:14 GMT",
            "messages": [{"role": "assistant", "content": "Hi! I'm your assistant. What can I do for you?"}],
        }
        return ok(self.sessions[session_id])

    async def list_sessions(self, request: web.Request) -> web.Response:
        chat_id = self._chat(request)
        if not isinstance(chat_id, str):
            return chat_id
        wanted = request.query.get("id")
        return ok([s for s in self.sessions.values()
                   if s["chat_id"] == chat_id and (not wanted or s["id"] == wanted)])

    async def delete_sessions(self, request: web.Request) -> web.Response:
        chat_id = self._chat(request)
        if not isinstance(chat_id, str):
            return chat_id
        ids = (await request.json() or {}).get("ids")
        if ids is None:
            ids = [s for s, v in self.sessions.items() if v["chat_id"] == chat_id]
        for session_id in ids:
            if self.sessions.get(session_id, {}).get("chat_id") != chat_id:
                return error(102, f"The chat doesn't own the session {session_id}")
            del self.sessions[session_id]
        return ok()

    def _marked(self, text: str) -> str:
        if self.markers == "id":
            return text
        return re.sub(r"\[ID:(\d+)\]", lambda m: f"##{m.group(1)}$$", text)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        chat_id = self._chat(request)
        if not isinstance(chat_id, str):
            return chat_id
        body = await request.json()
        session = self.sessions.get(body.get("session_id") or "")
        if body.get("session_id") and (session is None or session["chat_id"] != chat_id):
            return error(102, f"You don't own the session {body['session_id']}")
        raw = self.replay()
        if raw is not None:
            return await send_stream(request, [raw], content_type="text/event-stream; charset=utf-8")
        if session is None:  # RAGFlow's quirk: no session_id creates one and answers only the opener
            created = await self.create_session(request)
            sid = json.loads(created.text)["data"]["id"]
            opener = {"answer": "Hi! I'm your assistant. What can I do for you?", "reference": {},
                      "audio_binary": None, "id": None, "session_id": sid}
            return await send_stream(request, [event({"code": 0, "message": "", "data": opener}),
                                               event({"code": 0, "message": "", "data": True})])
        answer = self._marked(self.answer)
        message_id = str(uuid.uuid4())
        reference = {"total": len(self.chunks), "chunks": self.chunks,
                     "doc_aggs": [{"doc_name": c["document_name"], "doc_id": c["document_id"], "count": 1}
                                  for c in self.chunks[:1]]}
        parts = []
        shown = ""
        for piece in words(answer):
            shown += piece
            data: dict[str, Any] = {"answer": piece if self.generation == "incremental" else shown,
                                    "reference": {"chunks": []}, "audio_binary": None}
            if self.generation == "incremental":
                data["final"] = False
            data.update({"id": message_id, "session_id": session["id"]})
            parts.append(event({"code": 0, "data": data}))
        last = {"answer": "" if self.generation == "incremental" else answer, "reference": reference,
                "prompt": "You are an intelligent assistant.", "created_at": 1755055623.64}
        if self.generation == "incremental":
            last.update({"final": True, "audio_binary": None})
        last.update({"id": message_id, "session_id": session["id"]})
        parts += [event({"code": 0, "data": last}), event({"code": 0, "data": True})]
        session["messages"] += [{"role": "user", "content": body.get("question", ""), "id": message_id},
                                {"role": "assistant", "content": answer, "id": message_id,
                                 "reference": self.chunks}]
        return await send_stream(request, parts, content_type="text/event-stream; charset=utf-8", gate=self.gate)

    async def openai_completions(self, request: web.Request) -> web.StreamResponse:
        chat_id = self._chat(request)
        if not isinstance(chat_id, str):
            return chat_id
        body = await request.json()
        if not body.get("model") or not body.get("messages"):
            return error(101, "required argument are missing: model; ")
        if body["messages"][-1].get("role") != "user":
            return error(102, "The last content of this conversation is not from user.")
        raw = self.replay()
        if raw is not None:
            return await send_stream(request, [raw])
        answer = self._marked(self.answer)
        parts = [openai_chunk({"content": piece, "role": "assistant"}) for piece in words(answer)]
        last: dict[str, Any] = {"content": None, "role": "assistant"}
        if body.get("reference"):
            last.update({"reference": self.chunks, "final_content": answer})
        usage = {"prompt_tokens": 30, "completion_tokens": len(answer), "total_tokens": 30 + len(answer)}
        parts += [openai_chunk(last, finish_reason="stop", usage=usage), "data:[DONE]\n\n"]
        return await send_stream(request, parts, gate=self.gate)
