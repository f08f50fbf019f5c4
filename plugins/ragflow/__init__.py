"""botkit built-in plugin: RAGFlow chat assistant backend (`type: ragflow`).

A thread is a RAGFlow session of one chat assistant; answers stream from either server
generation (cumulative ≤ v0.23, incremental ≥ v0.24) with citations rewritten to `[N]`.
`api: openai` uses RAGFlow's OpenAI-compatible route with botkit's history instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from botkit import hookimpl
from botkit.config import Section
from botkit.config import HttpSettings


class CreateChat(Section):
    """The assistant to create at startup, or reuse when one with this name exists."""

    name: str = Field(min_length=1)
    dataset_ids: list[str] = []
    #: RAGFlow's `llm` object: model_name, temperature, top_p, presence_penalty, frequency_penalty
    llm: dict[str, Any] | None = None
    #: RAGFlow's `prompt` object: similarity_threshold, top_n, prompt, empty_response, opener, ...
    prompt: dict[str, Any] | None = None


class RagflowConfig(HttpSettings):
    #: the server root, e.g. http://ragflow:9380 (`/api/v1` is added unless given)
    base_url: str
    api_key: SecretStr
    chat_id: str | None = None
    create_chat: CreateChat | None = None
    #: "native": RAGFlow sessions (history kept by RAGFlow); "openai": /chats_openai with botkit's history
    api: Literal["native", "openai"] = "native"
    #: the model name sent in `api: openai` mode (RAGFlow ignores it, but requires one)
    model: str = "model"
    max_history_turns: int = Field(10, ge=0)
    #: delete the RAGFlow session when the thread is reset
    delete_on_reset: bool = True

    @model_validator(mode="after")
    def _one_chat(self) -> RagflowConfig:
        if (self.chat_id is None) == (self.create_chat is None):
            raise ValueError("give exactly one of chat_id (an existing assistant) or create_chat")
        return self


@hookimpl
def botkit_register_backends(register):
    register("ragflow", "botkit_plugins.ragflow.backend:RagflowBackend", RagflowConfig)
