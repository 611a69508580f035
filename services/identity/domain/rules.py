"""Rules for user IDs, email addresses and passwords (NIST SP 800-63B §5.1.1.2, ASVS 5.0 6.2).

Plain functions, no I/O: the list of common passwords is passed in as a predicate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable

USER_ID_MAX = 20
USER_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,20}")
USER_ID_RULE = "must be 1 to 20 characters: letters, digits, '.', '_' or '-'"

EMAIL_MAX = 254
# ASCII addresses: RFC 5322 atext in the local part, LDH labels in the domain.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
)
EMAIL_RULE = "must be an email address like name@example.org"

PASSWORD_MIN = 8
PASSWORD_MAX = 256  # NIST: at least 64 must be allowed
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ACCOUNT_NUMBER_RE = re.compile(r"[A-Za-z0-9-]{1,20}")


def canonical_user_id(user_id: str) -> str:
    """User IDs are unique without regard to case; others refer to the lowercase form."""
    return user_id.strip().lower()


def user_id_problem(user_id: str) -> str | None:
    if not USER_ID_RE.fullmatch(user_id or ""):
        return USER_ID_RULE
    return None


def normalize_email(email: str) -> str:
    """Trim; the domain is case-insensitive, so lowercase it."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else email


def email_key(email: str) -> str:
    """The lookup form: addresses are matched without regard to case."""
    return normalize_email(email).lower()


def email_problem(email: str) -> str | None:
    if not email or len(email) > EMAIL_MAX:
        return EMAIL_RULE if email else "is required"
    local, _, _ = email.partition("@")
    if len(local) > 64 or not _EMAIL_RE.fullmatch(email):
        return EMAIL_RULE
    return None


def email_stream_key(email: str) -> str:
    """A fixed-length stream key for an address (the address itself is in the events)."""
    return hashlib.blake2b(email_key(email).encode(), digest_size=16).hexdigest()


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on two keyboards matches (NIST 5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


def password_problem(
    password: str,
    *,
    is_common: Callable[[str], bool],
    user_id: str | None = None,
    email: str | None = None,
) -> str | None:
    """Why this password may not be used, or None. Composition rules are deliberately absent."""
    if password is None or password == "":
        return "is required"
    password = normalize_password(password)
    if len(password) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters"
    if _CONTROL.search(password):
        return "must not contain control characters"
    lowered = password.lower()
    if is_common(lowered):
        return "is too common: it appears in lists of breached or widely used passwords"
    if _repetitive_or_sequential(lowered):
        return "is too easy to guess: it repeats or runs through characters in order"
    context = {c for c in (user_id, email) if c}
    if email:
        context.add(email.partition("@")[0])
    if any(lowered == c.lower() for c in context):
        return "must not be your user ID or email address"
    return None


def _repetitive_or_sequential(password: str) -> bool:
    if len(set(password)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:], strict=False)}
    return len(steps) == 1 and steps.pop() in (1, -1)


def normalize_account_number(value: str) -> str:
    """As accounts normalizes them: surrounding spaces and leading zeros dropped."""
    value = value.strip()
    stripped = value.lstrip("0")
    return stripped or ("0" if value else "")
