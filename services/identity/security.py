"""Secrets: random tokens, their stored hashes, and argon2id password hashing."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity.domain.rules import normalize_password

TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG; the rules ask for at least 128
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,100}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What we store: SHA-256 of a 256-bit random token cannot be turned back into it."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: Any) -> bool:
    return isinstance(value, str) and bool(_TOKEN_RE.fullmatch(value))


class PasswordHasher:
    """argon2id through argon2-cffi; the work runs off the event loop when asked to."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_kib: int = 19456,
        parallelism: int = 1,
        offload: Callable[..., Any] | None = None,
    ) -> None:
        self._hasher = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._offload = offload or (lambda fn, *args: fn(*args))
        # Verified when the user is unknown, so that answer takes as long as a wrong password.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._offload(self._hasher.hash, normalize_password(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if the password matches; with no hash, spends the same time and says False."""
        target = password_hash or self._dummy
        try:
            ok = self._offload(self._verify, target, normalize_password(password))
        except (VerificationError, InvalidHashError):
            ok = False
        return ok and password_hash is not None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords (data/common-passwords.txt.gz)."""
    data = resources.files("services.identity").joinpath("data/common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def is_common_password(lowered: str) -> bool:
    return lowered in common_passwords()
