"""The error vocabulary shared by every service and the gateway.

Domain errors subclass one of the *kinds* below. Over RPC, an error travels as
its kind (registered with nameko, so the caller gets the same class back), with
`code` naming the precise rule that failed. The gateway maps kinds to HTTP
statuses through one table, so no service module needs importing to do so.
"""

from __future__ import annotations

import json
from typing import Any

from nameko.exceptions import registry as _nameko_registry


class MuniportalError(Exception):
    """Base of every expected error: a broken rule, never a bug."""

    kind = "error"
    status = 500
    default_detail = "The request could not be completed."

    def __init__(
        self,
        detail: str | None = None,
        errors: dict[str, Any] | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = dict(errors or {})
        self.code = code or _snake(type(self).__name__)
        if isinstance(extra, str):  # as it travels over RPC (see below)
            extra = json.loads(extra)
        self.extra = dict(extra or {})
        # nameko turns every non-string value in exception args into text; extra
        # travels as JSON so numbers stay numbers and identifiers stay strings.
        super().__init__(self.detail, self.errors, self.code, json.dumps(self.extra, default=str))

    def __str__(self) -> str:
        if self.errors:
            fields = "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
            return f"{self.detail} ({fields})"
        return self.detail

    def as_kind(self) -> MuniportalError:
        """Return this error as an instance of its registered kind class."""
        kind_cls = _KINDS.get(self.kind, MuniportalError)
        if type(self) is kind_cls:
            return self
        return kind_cls(self.detail, self.errors, self.code, self.extra)


class InvalidInput(MuniportalError):
    """A field broke a rule; `errors` maps each field to its message."""

    kind = "invalid"
    status = 422
    default_detail = "Some fields are not valid."


class NotFound(MuniportalError):
    kind = "not_found"
    status = 404
    default_detail = "Not found."


class Conflict(MuniportalError):
    kind = "conflict"
    status = 409
    default_detail = "The request conflicts with the current state."


class Unauthorized(MuniportalError):
    kind = "unauthorized"
    status = 401
    default_detail = "Sign in to continue."


class Forbidden(MuniportalError):
    kind = "forbidden"
    status = 403
    default_detail = "You may not do this."


class RateLimited(MuniportalError):
    """Too many attempts; `extra['retry_after']` holds the seconds to wait."""

    kind = "rate_limited"
    status = 429
    default_detail = "Too many attempts. Try again later."

    @property
    def retry_after(self) -> int:
        return int(self.extra.get("retry_after", 60))


class Unavailable(MuniportalError):
    """A service or outside system did not answer in time."""

    kind = "unavailable"
    status = 503
    default_detail = "A service is temporarily unavailable."


class ConcurrencyError(Conflict):
    """An append expected a stream version that is no longer current."""

    default_detail = "The record was changed by someone else; try again."


class TransientError(MuniportalError):
    """A failure worth retrying unchanged (a store or broker hiccup)."""

    kind = "unavailable"
    status = 503


_KINDS: dict[str, type[MuniportalError]] = {
    cls.kind: cls
    for cls in (
        MuniportalError,
        InvalidInput,
        NotFound,
        Conflict,
        Unauthorized,
        Forbidden,
        RateLimited,
        Unavailable,
    )
}

# Register the kinds with nameko so an RPC caller re-raises the same class.
for _cls in _KINDS.values():
    _nameko_registry[f"{_cls.__module__}.{_cls.__name__}"] = _cls


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def invalid(field: str, message: str, detail: str | None = None) -> InvalidInput:
    """Build the error for one field that broke one rule."""
    return InvalidInput(detail or f"{field}: {message}", {field: message})
