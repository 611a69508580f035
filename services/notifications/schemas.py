"""marshmallow schemas for the notifications service's RPC payloads."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from services.notifications.domain.events import AUDIENCES, STATUSES
from services.notifications.domain.kinds import SECURE_KINDS

EMAIL_RE = re.compile(
    r"^[^@\s\"<>,;:()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
)
CONTEXT_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Keys the templates fill in themselves: a caller must not override them.
RESERVED_CONTEXT_KEYS = {"action_url", "action_label", "city", "to", "subject"}
CONTEXT_MAX_KEYS = 20
CONTEXT_MAX_VALUE = 500


def valid_email(value: str) -> bool:
    return bool(value) and len(value) <= 254 and EMAIL_RE.match(value) is not None


class EmailAddress(fields.Str):
    default_error_messages = {"invalid_email": "must be an email address (name@example.org)"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not valid_email(text):
            raise self.make_error("invalid_email")
        return text


class SecureEmailSchema(Schema):
    kind = fields.Str(
        required=True,
        validate=validate.OneOf(SECURE_KINDS, error="must be one of {choices}"),
    )
    to = EmailAddress(required=True)
    context = fields.Dict(keys=fields.Str(), load_default=dict)
    secret_url = fields.Str(required=True, validate=validate.Length(min=1, max=2048))
    idempotency_key = fields.Str(required=True, validate=validate.Length(min=1, max=200))

    @validates("secret_url")
    def _url(self, value: str, **_: Any) -> None:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", value):
            raise ValidationError("must be an absolute http(s) URL")

    @validates("context")
    def _context(self, value: dict[str, Any], **_: Any) -> None:
        if len(value) > CONTEXT_MAX_KEYS:
            raise ValidationError(f"must have at most {CONTEXT_MAX_KEYS} entries")
        for key, item in value.items():
            if not CONTEXT_KEY_RE.match(key) or key in RESERVED_CONTEXT_KEYS:
                raise ValidationError(f"{key!r} is not an allowed key")
            if item is not None and not isinstance(item, str | int | bool):
                raise ValidationError(f"{key} must be text, a whole number or true/false")
            if isinstance(item, str) and len(item) > CONTEXT_MAX_VALUE:
                raise ValidationError(f"{key} must be at most {CONTEXT_MAX_VALUE} characters")

    @validates_schema
    def _no_secret_in_context(self, data: dict[str, Any], **_: Any) -> None:
        # The context is stored in the event log; the secret must stay out of it.
        secret = data.get("secret_url") or ""
        parts = urllib.parse.urlsplit(secret)
        pieces = [secret, parts.query, *parts.path.split("/")]
        pieces += [v for _, v in urllib.parse.parse_qsl(parts.query)]
        needles = [n for n in pieces if n and len(n) >= 16]
        for key, item in (data.get("context") or {}).items():
            if isinstance(item, str) and any(n in item for n in needles):
                raise ValidationError({"context": [f"{key} must not contain the secret link"]})


class MessagesQuerySchema(Schema):
    status = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(STATUSES))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class AnnouncementSchema(Schema):
    title = fields.Str(required=True)
    body = fields.Str(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(load_default=None, allow_none=True)
    audience = fields.Str(load_default="all", validate=validate.OneOf(AUDIENCES))
