"""botkit built-in plugin: OpenAI-compatible chat backend (`type: openai`).

Any `/v1/chat/completions` server: OpenAI, Azure-style deployments, vLLM, Ollama,
llama.cpp's server, LM Studio. botkit keeps the thread's history and sends it as
messages. `fake` holds a loopback fake of such a server, for tests.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from botkit import hookimpl
from botkit.config import Section
from botkit.config import HttpSettings


class RetrievalSettings(Section):
    """Ground answers in another configured backend's passages (e.g. the local one)."""

    backend: str
    top_k: int = Field(4, ge=1, le=20)
    instructions: str = (
        "Answer from the numbered sources below. Cite each source you use as [N] right after "
        "the statement it supports. If the sources do not answer the question, say so."
    )


class OpenAIConfig(HttpSettings):
    #: the URL the `/chat/completions` path is appended to, e.g. http://localhost:11434/v1 (Ollama)
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    #: "Authorization" sends `Bearer <key>`; any other name (Azure: "api-key") sends the bare key
    api_key_header: str = "Authorization"
    #: extra query parameters on every request (Azure: {api-version: "2024-10-21"})
    query: dict[str, str] = {}
    model: str
    system_prompt: str | None = "You are a helpful assistant. Answer concisely."
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    #: other body fields the server understands, sent as they are
    extra_body: dict[str, Any] = {}
    #: ask for token usage in the last chunk (`stream_options.include_usage`)
    include_usage: bool = True
    max_history_turns: int = Field(10, ge=0)
    #: send images on a question to the model as `image_url` content parts (a vision model);
    #: false: they are not read, and the answer says so
    images: bool = True
    #: text files on a question (logs, code, CSV...) up to this many characters are put into it
    max_file_chars: int = Field(20_000, ge=0)
    retrieval: RetrievalSettings | None = None


@hookimpl
def botkit_register_backends(register):
    register("openai", "botkit_plugins.openai.backend:OpenAIBackend", OpenAIConfig)
