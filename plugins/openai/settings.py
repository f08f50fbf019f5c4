"""Connection settings shared by the HTTP backends (OpenAI-compatible, RAGFlow, LlamaCloud).

Pure pydantic, so a plugin's `__init__` can build its config model from these without
importing httpx at every botkit start.
"""

from __future__ import annotations

from pydantic import Field

from botkit.config import Section


class RetrySettings(Section):
    """Retries of a request that failed with 429/5xx or could not connect, before any answer text.

    A `Retry-After` header is honoured when it asks for at most `max_wait` seconds;
    otherwise the wait doubles from `backoff` on each attempt.
    """

    attempts: int = Field(3, ge=1, le=10)
    backoff: float = Field(0.5, ge=0)
    max_wait: float = Field(30.0, ge=0)


class HttpSettings(Section):
    """Base of an HTTP backend's config section: timeouts, pool size and retries."""

    timeout: float = Field(120.0, gt=0, description="longest silence while waiting for a response or the next chunk")
    connect_timeout: float = Field(10.0, gt=0)
    max_connections: int = Field(20, ge=1)
    retry: RetrySettings = RetrySettings()
