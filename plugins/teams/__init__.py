"""botkit built-in plugin: Microsoft Teams through Bot Framework activities.

This module only declares the config and registers the adapter by name; PyJWT and the
adapter itself are imported when a `teams` adapter is configured.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from botkit import hookimpl
from botkit.config import Section

BOTFRAMEWORK_OPENID = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"


class TeamsConfig(Section):
    """`adapters.<name>` for `type: teams`.

    `tenant_id` makes the bot single-tenant (its token comes from that tenant and only
    that tenant may talk to it unless `allowed_tenants` says otherwise); without it the
    bot is multi-tenant and `allowed_tenants` (empty: any) limits who may use it.

    Without `app_id` and `app_password` the adapter runs in local mode, the Bot Framework
    convention for the Agents Playground and the Emulator: requests are not authenticated and
    replies carry no token. That is allowed only while botkit's server binds to a loopback
    address, so nothing but this machine can reach the unauthenticated endpoint.
    """

    app_id: str | None = Field(None, min_length=1)
    app_password: SecretStr | None = Field(None, min_length=1)
    tenant_id: str | None = None
    allowed_tenants: list[str] = []
    path: str = "/api/messages"
    openid_metadata_url: str = BOTFRAMEWORK_OPENID
    issuers: list[str] = [BOTFRAMEWORK_ISSUER]
    #: `{tenant}` is replaced by `tenant_id`, or by "botframework.com" for a multi-tenant bot
    token_url: str = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    token_scope: str = "https://api.botframework.com/.default"
    #: where a message the bot starts (a scheduled question) goes when no activity from that
    #: channel or chat has told the bot its service URL yet
    service_url: str = "https://smba.trafficmanager.net/teams/"
    #: native Teams streaming in personal (1:1) chats; elsewhere answers grow by edits
    streaming: bool = True
    #: seconds a native stream runs before its message is finalised in place and the answer
    #: goes on by edits of it (Teams ends a stream after 2 minutes)
    stream_max_age: float = Field(100.0, gt=0, lt=120)
    #: the final message of an answer carries Teams' "AI generated" label
    ai_label: bool = True
    #: "native": the final message shows its cited sources as Teams citation pills (no sources
    #: footer); "text": as the citations middleware writes them (links and a footer)
    citations: Literal["native", "text"] = "native"
    #: "native": the feedback middleware's 👍/👎 are Teams' own (its feedback loop);
    #: "card": buttons on an Adaptive Card
    feedback: Literal["native", "card"] = "native"
    progress_text: str = Field("Searching the knowledge base…", max_length=999)
    #: "markdown": notes (sources, warnings) under the answer text; "card": in an Adaptive Card
    sources: Literal["markdown", "card"] = "markdown"
    #: characters per message; Teams refuses activities over ~100 KB (413), so stay well under
    max_length: int = Field(16_000, ge=1_000, le=25_000)
    #: Teams asks for edits at least 1.5 s apart (streaming updates at least 1 s)
    edit_interval: float = Field(1.5, ge=1.5)
    max_retries: int = Field(4, ge=0, le=10)
    request_timeout: float = Field(15.0, gt=0)
    #: signing keys are refetched at most this often when a token names an unknown key id
    jwks_min_refresh: float = Field(60.0, ge=0)
    jwks_max_age: float = Field(24 * 3600.0, gt=0)

    @property
    def local(self) -> bool:
        """No credentials: unauthenticated requests in, no token out (loopback only)."""
        return self.app_id is None

    @model_validator(mode="after")
    def _local_mode_only_on_loopback(self, info: ValidationInfo) -> TeamsConfig:
        if (self.app_id is None) != (self.app_password is None):
            raise PydanticCustomError("credentials", "give both app_id and app_password, or neither for local "
                                      "mode (no authentication)")
        root = (info.context or {}).get("root")
        if self.local and root is not None and not is_loopback(root.server.host):
            raise PydanticCustomError(
                "local_mode", "no app_id/app_password means local mode, which accepts unauthenticated requests, "
                "so it is allowed only when server.host is a loopback address (127.0.0.1, ::1, localhost), not "
                "'{host}': set app_id and app_password, or bind server.host to 127.0.0.1", {"host": root.server.host})
        return self


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, as in `server.host` or a URL) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@hookimpl
def botkit_register_adapters(register) -> None:  # noqa: ANN001 - pluggy passes the registrar
    register("teams", "botkit_plugins.teams.adapter:TeamsAdapter", TeamsConfig)
