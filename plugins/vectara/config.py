"""The `backends.<name>` section of a `type: vectara` backend, validated before any request.

Field names and placement follow Vectara's `ChatRequest` (docs/specs/backends.md §1.3) so
`search`, `generation` and each corpus are sent exactly as configured: unset fields
are left out of the request rather than sent as null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from botkit.config import HttpSettings, RetrySettings, Section

#: Vectara's documented response languages (`generation.response_language`).
Language = Literal[
    "auto", "eng", "deu", "fra", "zho", "kor", "ara", "rus", "tha", "nld", "ita", "por", "spa", "jpn",
    "pol", "tur", "vie", "ind", "ces", "ukr", "ell", "heb", "fas", "hin", "urd", "swe", "ben", "msa", "ron",
]

MAX_QUERY_CHARS = 5000


class Corpus(Section):
    corpus_key: str = Field(pattern=r"^[a-zA-Z0-9_=\-]+$", max_length=50)
    metadata_filter: str | None = Field(None, max_length=8000)
    lexical_interpolation: float | None = Field(None, ge=0.0, le=1.0)
    semantics: Literal["default", "query", "response"] | None = None
    custom_dimensions: dict[str, float] | None = None
    #: ask this corpus a different query than the user's question
    query: str | None = Field(None, max_length=MAX_QUERY_CHARS)


class ContextConfiguration(Section):
    sentences_before: int | None = Field(None, ge=0)
    sentences_after: int | None = Field(None, ge=0)
    characters_before: int | None = Field(None, ge=0)
    characters_after: int | None = Field(None, ge=0)
    start_tag: str | None = None
    end_tag: str | None = None


class _RerankerLimits(Section):
    limit: int | None = Field(None, ge=1)
    cutoff: float | None = None


class CustomerReranker(_RerankerLimits):
    type: Literal["customer_reranker"]
    reranker_name: str | None = None
    #: deprecated upstream in favour of reranker_name, still accepted
    reranker_id: str | None = Field(None, pattern=r"^rnk_.+$")
    include_context: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> CustomerReranker:
        if not (self.reranker_name or self.reranker_id):
            raise ValueError("customer_reranker needs reranker_name (or the deprecated reranker_id)")
        return self


class MMRReranker(_RerankerLimits):
    type: Literal["mmr"]
    diversity_bias: float = Field(ge=0.0, le=1.0)


class UserFunctionReranker(_RerankerLimits):
    type: Literal["userfn"]
    user_function: str


class NoneReranker(Section):
    type: Literal["none"]
    limit: int | None = Field(None, ge=1)


class ChainReranker(Section):
    type: Literal["chain"]
    rerankers: list[Reranker] = Field(min_length=1)


Reranker = Annotated[
    Union[CustomerReranker, MMRReranker, UserFunctionReranker, NoneReranker, ChainReranker],
    Field(discriminator="type"),
]
ChainReranker.model_rebuild()


class Search(Section):
    limit: int | None = Field(None, ge=1)
    offset: int | None = Field(None, ge=0)
    context_configuration: ContextConfiguration | None = None
    reranker: Reranker | None = None


class ModelParameters(Section):
    llm_name: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0)
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class Citations(Section):
    style: Literal["none", "numeric", "html", "markdown"] = "numeric"
    #: html/markdown styles only; may use {doc.<field>} and {part.<field>}
    url_pattern: str | None = None
    text_pattern: str | None = None

    @model_validator(mode="after")
    def _patterns(self) -> Citations:
        if self.style in ("none", "numeric") and (self.url_pattern or self.text_pattern):
            raise ValueError(f"url_pattern/text_pattern only apply to the html and markdown styles, not {self.style!r}")
        return self


class Generation(Section):
    generation_preset_name: str | None = None
    max_used_search_results: int | None = Field(None, ge=1)
    prompt_template: str | None = None
    max_response_characters: int | None = Field(None, ge=1)
    response_language: Language | None = None
    model_parameters: ModelParameters | None = None
    citations: Citations | None = None
    enable_factual_consistency_score: bool | None = None


class ChatOptions(Section):
    store: bool | None = None


class SourceKeys(Section):
    """Which metadata keys name a source's title and link (document metadata first, then part)."""

    title: list[str] = ["title"]
    url: list[str] = ["url"]


class VectaraRetry(RetrySettings):
    """Every HTTP backend's retry keys; Vectara makes four attempts unless told otherwise (as it always has)."""

    attempts: int = Field(4, ge=1, le=10)


#: the keys Vectara once had for what `retry` holds now: old name -> (new name, value conversion)
RENAMED = {
    "max_retries": ("attempts", lambda retries: retries + 1 if isinstance(retries, int) else retries),
    "retry_backoff": ("backoff", lambda seconds: seconds),
    "max_retry_wait": ("max_wait", lambda seconds: seconds),
}


class VectaraConfig(HttpSettings):
    """One Vectara chat backend: credentials, corpora and the request options sent with every turn.

    Timeouts, pool size and `retry` are every HTTP backend's (`HttpSettings`); the keys Vectara
    had before (`RENAMED`) are still read, into `retry`, and `deprecated()` names them.
    """

    api_key: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str = "https://auth.vectara.io/oauth2/token"
    base_url: str = "https://api.vectara.io"

    corpora: list[Corpus] = Field(min_length=1)
    search: Search = Search()
    generation: Generation | None = None
    chat: ChatOptions | None = None
    save_history: bool | None = None
    intelligent_query_rewriting: bool | None = None

    stream: bool = True
    #: seconds for a whole turn, retries included; sent as Request-Timeout / Request-Timeout-Millis
    #: and enforced client-side
    request_timeout: float = Field(60.0, gt=0, le=3600)
    max_connections: int = Field(100, ge=1)
    retry: VectaraRetry = VectaraRetry()
    source_keys: SourceKeys = SourceKeys()
    #: delete the upstream chat when a thread is reset (else it stays in Vectara's history)
    delete_on_reset: bool = False

    _renamed: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _old_retry_keys(cls, data: Any, handler: Any) -> VectaraConfig:
        """Read `max_retries`, `retry_backoff` and `max_retry_wait` into `retry`."""
        renamed: list[tuple[str, str]] = []
        if isinstance(data, dict) and any(key in data for key in RENAMED):
            data = dict(data)
            retry = data.get("retry") or {}
            retry = dict(retry.model_dump(exclude_unset=True) if isinstance(retry, Section) else retry)
            for old, (new, convert) in RENAMED.items():
                if old not in data:
                    continue
                if new in retry:
                    raise ValueError(f"{old} is the deprecated name of retry.{new}: give only retry.{new}")
                value = data.pop(old)
                retry[new] = convert(value)
                renamed.append((f"{old}: {value}", f"retry: {{{new}: {retry[new]}}}"))
            data["retry"] = retry
        config = handler(data)
        config._renamed = renamed
        return config

    def deprecated(self) -> list[tuple[str, str]]:
        """(what the config says, what to write instead) for each deprecated key it uses."""
        return list(self._renamed)

    @model_validator(mode="after")
    def _credentials(self) -> VectaraConfig:
        oauth = self.client_id is not None or self.client_secret is not None
        if self.api_key is not None and oauth:
            raise ValueError("give either api_key or client_id/client_secret (OAuth2), not both")
        if oauth and not (self.client_id and self.client_secret):
            raise ValueError("OAuth2 needs both client_id and client_secret")
        if self.api_key is None and not oauth:
            raise ValueError("api_key (or OAuth2 client_id and client_secret) is required")
        if self.api_key is not None and not self.api_key.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return self

    def request_options(self) -> dict[str, Any]:
        """The configured parts of a ChatRequest (everything but query and stream_response)."""
        body: dict[str, Any] = {
            "search": {
                "corpora": [c.model_dump(exclude_none=True) for c in self.corpora],
                **self.search.model_dump(exclude_none=True),
            },
        }
        for key in ("generation", "chat", "save_history", "intelligent_query_rewriting"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value.model_dump(exclude_none=True) if isinstance(value, Section) else value
        return body
