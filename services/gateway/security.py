"""Request IDs, client addresses, CSRF tokens, signed guest tokens and response headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from typing import Any

SESSION_COOKIE = "mp_session"
CSRF_COOKIE = "mp_csrf"
GUEST_COOKIE = "mp_guest"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
GUEST_ACCOUNTS_MAX = 5

_CSP_AFTER_STYLE = [
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
# No inline script or style anywhere in the portal.
CSP = "; ".join(["default-src 'self'", "script-src 'self'", "style-src 'self'", *_CSP_AFTER_STYLE])
# /dev/mail shows emails, whose HTML is styled inline as mail clients need (still no script).
DEV_MAIL_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'none'",
        "style-src 'self' 'unsafe-inline'",
        *_CSP_AFTER_STYLE,
    ]
)


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def client_ip(environ: dict[str, Any], trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        first = forwarded.split(",")[0].strip()
        if first and re.match(r"^[0-9A-Fa-f:.]{2,45}$", first):
            return first
    return environ.get("REMOTE_ADDR") or "0.0.0.0"


def security_headers(production: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if production:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(secret: bytes, credential: str) -> str:
    """The CSRF token bound to one session token or guest token."""
    return _mac(secret, "csrf", credential)


def csrf_ok(secret: bytes, credential: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, credential), presented or "")


def token_key(token: str) -> str:
    """What the caches key a session by: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


# -- guest (quick pay) tokens: the guest's cart and the accounts it looked up ----------------


def new_guest() -> dict[str, Any]:
    return {"g": secrets.token_urlsafe(16), "a": []}


def sign_guest(secret: bytes, guest: dict[str, Any]) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(guest, separators=(",", ":")).encode()).decode()
    raw = raw.rstrip("=")
    return f"{raw}.{_mac(secret, 'guest', raw)}"


def read_guest(secret: bytes, token: str | None) -> dict[str, Any] | None:
    """The guest's state from a token we signed, or None if it is not one."""
    if not token or "." not in token or len(token) > 2000:
        return None
    raw, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(_mac(secret, "guest", raw), mac):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("g"), str):
        return None
    accounts = data.get("a")
    data["a"] = [str(a) for a in accounts] if isinstance(accounts, list) else []
    return data


def with_account(guest: dict[str, Any], account_number: str) -> dict[str, Any]:
    accounts = [a for a in guest["a"] if a != account_number] + [account_number]
    return {"g": guest["g"], "a": accounts[-GUEST_ACCOUNTS_MAX:]}
