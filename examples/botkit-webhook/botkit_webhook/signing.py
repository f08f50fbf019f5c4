"""The webhook platform's signature: HMAC-SHA256 of the raw body with the shared secret,
sent as `X-Webhook-Signature: sha256=<hex>` on every request, in both directions."""

import hashlib
import hmac

HEADER = "X-Webhook-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body`; compared in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)
