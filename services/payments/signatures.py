"""Webhook signatures: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`.

The processor signs with every secret it has active (one, or two while a secret is
being rotated), adding one `v1=` per secret. We accept a webhook when any `v1`
matches any of our (at most two) active secrets, compared in constant time, and
when `t` is within the tolerance of our clock, so a captured webhook cannot be
replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from services.payments.domain.errors import BadSignatureError

HEADER = "Processor-Signature"
TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 2048


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The header value for this body, signed with each active secret."""
    parts = [f"t={timestamp}"] + [f"v1={_digest(s, timestamp, body)}" for s in secrets]
    return ",".join(parts)


def verify(
    body: bytes | str,
    header: str | None,
    secrets: Sequence[str],
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Check a webhook's signature; returns its timestamp or raises BadSignatureError."""
    if isinstance(body, str):
        body = body.encode()
    if not header:
        raise BadSignatureError(f"the {HEADER} header is missing")
    if len(header) > MAX_HEADER_LENGTH:
        raise BadSignatureError(f"the {HEADER} header is too long")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise BadSignatureError("the signature timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise BadSignatureError(f"the {HEADER} header must look like t=<unix time>,v1=<hex>")
    if abs(now - timestamp) > tolerance:
        raise BadSignatureError(
            f"the signature timestamp is more than {tolerance // 60} minutes from our clock"
        )
    if not secrets:
        raise BadSignatureError("no webhook secret is configured")
    matched = False
    # Compare every pair, without stopping early, so timing says nothing about which failed.
    for secret in secrets:
        expected = _digest(secret, timestamp, body)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise BadSignatureError("the signature does not match")
    return timestamp
