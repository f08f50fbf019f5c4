"""botkit built-in plugin: LlamaCloud index chat backend (`type: llamacloud`).

A thread is a LlamaCloud chat session over one or more indexes; thinking and tool calls
show as progress, retrieval results become sources, the answer streams as deltas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from botkit import hookimpl
from botkit.config import HttpSettings

#: LlamaCloud refuses longer prompts (HTTP 422)
MAX_PROMPT = 1000


class LlamaCloudConfig(HttpSettings):
    #: EU deployments: https://api.cloud.eu.llamaindex.ai
    base_url: str = "https://api.cloud.llamaindex.ai"
    api_key: SecretStr
    index_ids: list[str] = Field(min_length=1, max_length=10)
    #: fail the turn when one of the indexes cannot be queried (else: answer, with a warning)
    require_all_indexes: bool = False
    #: bind the indexes to the session when it is created (else they are passed with each message)
    bind_indexes: bool = True
    project_id: str | None = None
    organization_id: str | None = None
    #: a question over 1000 characters is refused with a message, or cut (and the answer says so)
    long_prompts: Literal["refuse", "truncate"] = "refuse"


@hookimpl
def botkit_register_backends(register):
    register("llamacloud", "botkit_plugins.llamacloud.backend:LlamaCloudBackend", LlamaCloudConfig)
