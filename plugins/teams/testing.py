"""A loopback Bot Framework: OpenID metadata + JWKS, the token endpoint, and a connector.

Reusable by any test that needs Teams (`from botkit_plugins.teams.testing import
FakeBotFramework`): it signs activities with RSA keys generated here
(RS256, `kid`, endorsements), records every connector call, and speaks the wire format of
the Bot Framework connector: 201 {"id"} for a new message or a stream's first chunk,
202 afterwards, PUT answering {"id"} as JSON, Retry-After on scripted 429s. Like Teams,
it refuses streaming outside personal chats (405) and out-of-order stream sequences, an
informative update over 1,000 characters or after the first streamed text (400), and any
update of a stream older than `stream_limit` seconds (403 ContentStreamNotAllowed: Teams'
2 minutes); a streamed message can be edited by `PUT` under its stream id. Messages with
AI entities are checked as Teams checks them (one root Message entity, at most 20
citations, an abstract of at most 160 characters; 400 otherwise). `submit_action` builds
the `message/submitAction` invoke of Teams' feedback loop.
`POST /v3/conversations` starts a thread in a channel (the bot speaking first): 201
{"id": "<channel>;messageid=<activityId>", "activityId"}; it refuses group-chat creation (400).
`FakeBotFramework(local=True)` is the connector of a local client (the Agents Playground, the
Emulator): it expects no token, and `adapter_config()` then leaves the credentials out.
Files people send: `file_attachment()` is a file in a personal chat (a pre-authenticated
`downloadUrl`: its `tempauth` must be right) and `inline_image()` an image pasted into a
message (on the connector: the bot's token is required, as for posting); a request without
what it needs gets 401. `downloads` lists what was served.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from botkit.testing import serve_loopback

ISSUER = "https://api.botframework.com"
APP_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "tenant-1"
BOT_ID = f"28:{APP_ID}"

_KEY_CACHE: list[rsa.RSAPrivateKey] = []


def _tempauth(file_id: str) -> str:
    return hmac.new(b"fake-sharepoint", file_id.encode(), hashlib.sha256).hexdigest()


def rsa_key(index: int = 0) -> rsa.RSAPrivateKey:
    """Test RSA keys, generated once per process (generation is the slow part)."""
    while len(_KEY_CACHE) <= index:
        _KEY_CACHE.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEY_CACHE[index]


@dataclass
class Call:
    """One request the bot made to the connector."""

    method: str
    conversation: str  # "" for a `POST /v3/conversations` (see `creates`)
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    status: int = 0  # what the fake answered
    answer: dict[str, Any] = field(default_factory=dict)  # and the JSON it answered with

    @property
    def creates(self) -> bool:
        """True for the call that creates a conversation."""
        return self.conversation == ""

    @property
    def streaminfo(self) -> dict[str, Any] | None:
        for entity in self.body.get("entities") or []:
            if entity.get("type") == "streaminfo":
                return entity
        return None


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    match: Callable[[Call], bool] = lambda call: True


class FakeBotFramework:
    """Start with `await fake.start()`; `fake.url` is the serviceUrl and the login base."""

    def __init__(self, app_id: str = APP_ID, *, local: bool = False) -> None:
        self.app_id = app_id
        self.local = local
        self.keys: dict[str, tuple[rsa.RSAPrivateKey, list[str]]] = {"k1": (rsa_key(0), ["msteams"])}
        self.calls: list[Call] = []
        self.token_requests: list[dict[str, str]] = []
        self.jwks_fetches = 0
        self.conversation_types: dict[str, str] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (conversation, id) -> activity
        self._script: list[Scripted] = []
        self.files: dict[str, tuple[bytes, str]] = {}  # file id -> (content, content type)
        self.downloads: list[str] = []
        self._streams: dict[str, dict[str, Any]] = {}  # stream id -> sequence, started, streaming yet
        #: seconds Teams lets a stream run (2 minutes)
        self.stream_limit = 120.0
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> FakeBotFramework:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._jwks)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        app.router.add_get("/v3/attachments/{id}/views/original", self._inline)
        app.router.add_get("/sharepoint/download/{id}", self._shared_file)
        self._runner, port = await serve_loopback(app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def service_url(self) -> str:
        return self.url + "/"

    def adapter_config(self, **overrides: Any) -> dict[str, Any]:
        """The `adapters.teams` section pointing at this fake."""
        config: dict[str, Any] = {"type": "teams", "tenant_id": TENANT}
        if not self.local:
            config.update({
                "app_id": self.app_id, "app_password": "s3cret-password",
                "openid_metadata_url": f"{self.url}/v1/.well-known/openidconfiguration",
                "token_url": self.url + "/{tenant}/oauth2/v2.0/token",
            })
        config.update(overrides)
        return config

    # -- driving the bot ------------------------------------------------------------------------

    def sign(self, *, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, algorithm: str = "RS256",
             **claims: Any) -> str:
        """A Bot Framework token; keyword claims override (None removes one)."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": ISSUER, "aud": self.app_id, "exp": now + 3600, "nbf": now - 60,
                                   "iat": now - 60, "serviceurl": self.service_url}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        signing_key: Any = key or self.keys[kid][0]
        return jwt.encode(payload, signing_key, algorithm=algorithm, headers={"kid": kid})

    def activity(self, text: str, *, kind: str = "personal", conversation: str | None = None,
                 activity_id: str | None = None, tenant: str = TENANT, user: str = "29:alice",
                 mention_bot: bool = False, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        entities = []
        if mention_bot:
            text = f"<at>Bot</at> {text}"
            entities.append({"type": "mention", "mentioned": {"id": BOT_ID, "name": "Bot"}, "text": "<at>Bot</at>"})
        activity = {**self._envelope("message", kind, conversation, activity_id, tenant, user),
                    "text": text, "textFormat": "plain", "entities": entities}
        if attachments:  # Teams adds the message's own text as HTML beside what was attached
            activity["attachments"] = [*attachments, {"contentType": "text/html", "content": f"<p>{text}</p>"}]
        return activity

    def file_attachment(self, name: str, content: bytes) -> dict[str, Any]:
        """A file sent to the bot in a personal chat: its download info, with a pre-authenticated URL."""
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = (content, "application/octet-stream")
        file_type = name.rpartition(".")[2]
        return {"contentType": "application/vnd.microsoft.teams.file.download.info",
                "contentUrl": f"https://contoso.sharepoint.com/personal/alice/Documents/{name}", "name": name,
                "content": {"downloadUrl": f"{self.url}/sharepoint/download/{file_id}?tempauth={_tempauth(file_id)}",
                            "uniqueId": file_id, "fileType": file_type}}

    def inline_image(self, content: bytes, content_type: str = "image/*") -> dict[str, Any]:
        """An image pasted into a message: on the connector, for the bot's token only."""
        file_id = f"0-img-{next(self._ids)}"
        self.files[file_id] = (content, "image/png")
        return {"contentType": content_type, "contentUrl": f"{self.url}/v3/attachments/{file_id}/views/original"}

    def reaction(self, message_id: str, *added: str, removed: tuple[str, ...] = (), kind: str = "personal",
                 conversation: str | None = None, tenant: str = TENANT, user: str = "29:alice") -> dict[str, Any]:
        """A `messageReaction`: `added` (e.g. "like") and `removed` reactions on `message_id`."""
        activity = {**self._envelope("messageReaction", kind, conversation, None, tenant, user),
                    "replyToId": message_id}
        if added:
            activity["reactionsAdded"] = [{"type": name} for name in added]
        if removed:
            activity["reactionsRemoved"] = [{"type": name} for name in removed]
        return activity

    def card_submit(self, value: dict[str, Any], *, reply_to: str | None = None, kind: str = "personal",
                    conversation: str | None = None, tenant: str = TENANT, user: str = "29:alice") -> dict[str, Any]:
        """What Teams sends when a user clicks an `Action.Submit`: a text-less message whose
        `value` is the button's data, in reply to the message holding the card."""
        activity = {**self._envelope("message", kind, conversation, None, tenant, user), "value": value}
        if reply_to:
            activity["replyToId"] = reply_to
        return activity

    def submit_action(self, message_id: str, reaction: str = "like", text: str | None = None, *,
                      kind: str = "personal", conversation: str | None = None, tenant: str = TENANT,
                      user: str = "29:alice") -> dict[str, Any]:
        """The `invoke` Teams sends when someone gives feedback on a message with
        `feedbackLoopEnabled`: `reaction` "like" or "dislike", and what they typed."""
        feedback = json.dumps({"feedbackText": text}) if text is not None else ""
        return {**self._envelope("invoke", kind, conversation, None, tenant, user),
                "name": "message/submitAction", "replyToId": message_id,
                "value": {"actionName": "feedback", "actionValue": {"reaction": reaction, "feedback": feedback}}}

    def _envelope(self, activity_type: str, kind: str, conversation: str | None, activity_id: str | None,
                  tenant: str, user: str) -> dict[str, Any]:
        activity_id = activity_id or f"17000000{next(self._ids):05d}"
        conversation = conversation or {"personal": "a:1personal", "groupChat": "19:group@thread.v2",
                                        "channel": "19:chan@thread.tacv2"}[kind]
        self.conversation_types[conversation.split(";messageid=")[0]] = kind
        return {
            "type": activity_type, "id": activity_id, "timestamp": "2025-01-01T00:00:00.000Z",
            "serviceUrl": self.service_url, "channelId": "msteams",
            "from": {"id": user, "name": "Alice", "aadObjectId": f"aad-{user}"},
            "conversation": {"id": conversation, "conversationType": kind, "tenantId": tenant},
            "recipient": {"id": BOT_ID, "name": "Bot"}, "locale": "en-US", "channelData": {"tenant": {"id": tenant}},
        }

    def script(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None,
               match: Callable[[Call], bool] = lambda call: True, times: int = 1) -> None:
        """Answer the next `times` matching connector calls with this response instead."""
        for _ in range(times):
            self._script.append(Scripted(status, body, headers or {}, match))

    async def wait_for(self, predicate: Callable[[FakeBotFramework], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)

    # -- files ---------------------------------------------------------------------------------------

    async def _inline(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        authorized = authorization is None if self.local else bool(
            authorization and authorization.startswith("Bearer fake-token-"))
        return await self._serve(request.match_info["id"], authorized)

    async def _shared_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        tempauth = request.query.get("tempauth", "")
        authorized = hmac.compare_digest(tempauth, _tempauth(file_id)) and "Authorization" not in request.headers
        return await self._serve(file_id, authorized)

    async def _serve(self, file_id: str, authorized: bool) -> web.Response:
        if file_id not in self.files:
            return web.json_response({"error": {"code": "NotFound"}}, status=404)
        if not authorized:
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        content, kind = self.files[file_id]
        async with self._changed:
            self.downloads.append(file_id)
            self._changed.notify_all()
        return web.Response(body=content, content_type=kind)

    # -- the service -------------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": f"{self.url}/v1/.well-known/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        keys = []
        for kid, (private, endorsements) in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256", "endorsements": endorsements})
        return web.json_response({"keys": keys})

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if form.get("client_id") != self.app_id or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"token_type": "Bearer", "expires_in": 3600,
                                  "access_token": f"fake-token-{next(self._tokens)}"})

    async def _record(self, request: web.Request) -> Call:
        call = Call(request.method, request.match_info.get("conversation", ""), request.match_info.get("activity"),
                    await request.json(), request.headers.get("Authorization"))
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

    def _scripted(self, call: Call) -> web.Response | None:
        for i, scripted in enumerate(self._script):
            if scripted.match(call):
                del self._script[i]
                return web.json_response(scripted.body or {}, status=scripted.status, headers=scripted.headers)
        return None

    def _authorized(self, call: Call) -> bool:
        if self.local:
            return call.authorization is None
        return bool(call.authorization and call.authorization.startswith("Bearer fake-token-"))

    async def _post(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._answered(call, self._answer_post(call))

    async def _create(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._answered(call, self._answer_create(call))

    def _answered(self, call: Call, response: web.Response) -> web.Response:
        call.status = response.status
        answer = json.loads(response.body) if isinstance(response.body, bytes) and response.body else {}
        call.answer = answer if isinstance(answer, dict) else {}
        return response

    async def _put(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._answered(call, self._answer_put(call))

    def _answer_post(self, call: Call) -> web.Response:
        if not self._authorized(call):
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        scripted = self._scripted(call)
        if scripted is not None:
            return scripted
        refused = _ai_entities_refused(call.body)
        if refused:
            return web.json_response({"error": {"code": "BadArgument", "message": refused}}, status=400)
        info = call.streaminfo
        if info is not None:
            return self._answer_stream(call, info)
        activity_id = f"msg-{next(self._ids)}"
        self.messages[(call.conversation, activity_id)] = call.body
        return web.json_response({"id": activity_id}, status=201)

    def _answer_stream(self, call: Call, info: dict[str, Any]) -> web.Response:
        kind = self.conversation_types.get(call.conversation.split(";messageid=")[0], "personal")
        if kind != "personal":
            return web.json_response({"error": {"code": "MethodNotAllowed"}}, status=405)
        stream_id, sequence, stream_type = info.get("streamId"), info.get("streamSequence"), info.get("streamType")
        stream = self._streams.get(stream_id) if stream_id is not None else None
        if stream_id is not None and stream is None:
            return web.json_response({"error": {"code": "BadArgument"}}, status=400)
        if stream is not None and time.monotonic() - stream["started"] > self.stream_limit:
            return web.json_response({"error": {"code": "ContentStreamNotAllowed",
                                                "message": "Content stream was cancelled: time exceeded"}}, status=403)
        if stream_type == "informative" and (len(call.body.get("text") or "") > 1000 or
                                             (stream is not None and stream["streaming"])):
            return web.json_response({"error": {"code": "BadArgument"}}, status=400)
        if stream_type == "final":
            if "streamSequence" in info or stream is None:
                return web.json_response({"error": {"code": "BadArgument"}}, status=400)
            del self._streams[stream_id]
            self.messages[(call.conversation, stream_id)] = call.body
            return web.json_response({"id": stream_id}, status=202)
        if stream is None:
            if sequence != 1:
                return web.json_response({"error": {"code": "BadArgument"}}, status=400)
            stream_id = f"stream-{next(self._ids)}"
            self._streams[stream_id] = {"sequence": 1, "started": time.monotonic(),
                                        "streaming": stream_type == "streaming"}
            self.messages[(call.conversation, stream_id)] = call.body  # the streamed message, as it reads
            return web.json_response({"id": stream_id}, status=201)
        if not isinstance(sequence, int) or sequence <= stream["sequence"]:
            return web.json_response({"error": {"code": "ContentStreamSequenceOrderPreConditionFailed"}},
                                     status=400)
        stream["sequence"] = sequence
        stream["streaming"] = stream["streaming"] or stream_type == "streaming"
        self.messages[(call.conversation, stream_id)] = call.body
        return web.json_response({}, status=202)

    def _answer_create(self, call: Call) -> web.Response:
        if not self._authorized(call):
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        scripted = self._scripted(call)
        if scripted is not None:
            return scripted
        channel = ((call.body.get("channelData") or {}).get("channel") or {}).get("id")
        activity = call.body.get("activity")
        if call.body.get("isGroup") is not True or not channel or not isinstance(activity, dict):
            return web.json_response({"error": {"code": "BadSyntax"}}, status=400)
        activity_id = f"root-{next(self._ids)}"
        conversation = f"{channel};messageid={activity_id}"
        self.conversation_types[channel] = "channel"
        self.messages[(conversation, activity_id)] = activity
        return web.json_response({"id": conversation, "activityId": activity_id}, status=201)

    def _answer_put(self, call: Call) -> web.Response:
        if not self._authorized(call):
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        scripted = self._scripted(call)
        if scripted is not None:
            return scripted
        key = (call.conversation, call.activity_id or "")
        if key not in self.messages:
            return web.json_response({"error": {"code": "NotFound"}}, status=404)
        refused = _ai_entities_refused(call.body)
        if refused:
            return web.json_response({"error": {"code": "BadArgument", "message": refused}}, status=400)
        self._streams.pop(call.activity_id or "", None)  # an edited streamed message streams no more
        self.messages[key] = call.body
        return web.json_response({"id": call.activity_id})


def _ai_entities_refused(activity: dict[str, Any]) -> str | None:
    """Why Teams would refuse the AI entities of `activity` (Microsoft Learn, "Bot messages
    with AI-generated content"), or None when it takes them."""
    roots = [e for e in activity.get("entities") or [] if e.get("type") == "https://schema.org/Message"]
    if len(roots) > 1:
        return "Found multiple root message entities under entities array"
    for root in roots:
        if root.get("@type") != "Message" or root.get("@context") != "https://schema.org" or root.get("@id") != "":
            return "Error parsing message entity from entities array"
        if root.get("additionalType") not in (None, ["AIGeneratedContent"]):
            return "Invalid additionalType"
        citations = root.get("citation") or []
        if len(citations) > 20:
            return "More than 20 citations"
        for claim in citations:
            appearance = claim.get("appearance") or {}
            position = claim.get("position")
            if claim.get("@type") != "Claim" or not isinstance(position, int) or position < 1:
                return "Invalid citation"
            if appearance.get("@type") != "DigitalDocument" or not appearance.get("name") \
                    or len(appearance.get("abstract") or "") > 160:
                return "Invalid citation appearance"
    return None
