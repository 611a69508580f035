"""marshmallow schemas for the identity service's RPC payloads.

They check shape and format, so bad input (empty, huge, wrong type, control
characters, markup) fails here with the field named and nothing changed. The
password policy needs context (user ID, email, the breached-password list) and
is checked by the handlers.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from services.identity.domain.rules import (
    PASSWORD_MAX,
    USER_ID_RE,
    USER_ID_RULE,
    email_problem,
    normalize_email,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOGIN_MAX = 254


def _no_control(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")


class Text(fields.Str):
    """A string: trimmed, not blank when required, bounded, no control characters."""

    def __init__(self, max_length: int, *, trim: bool = True, **kwargs: Any) -> None:
        self.max_length = max_length
        self.trim = trim
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.trim:
            text = text.strip()
        if not text and self.required:
            raise ValidationError("is required")
        if len(text) > self.max_length:
            raise ValidationError(f"must be at most {self.max_length} characters")
        _no_control(text)
        return text


class UserIdField(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(20, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str) and len(value.strip()) > 20:
            raise ValidationError(USER_ID_RULE)
        text = super()._deserialize(value, attr, data, **kwargs)
        if not USER_ID_RE.fullmatch(text):
            raise ValidationError(USER_ID_RULE)
        return text


class EmailField(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(254, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = normalize_email(super()._deserialize(value, attr, data, **kwargs))
        problem = email_problem(text)
        if problem:
            raise ValidationError(problem)
        return text


class PasswordField(fields.Str):
    """Passwords are taken as typed: no trimming (spaces count), any printable character."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "":
            raise ValidationError("is required")
        if len(text) > PASSWORD_MAX:
            raise ValidationError(f"must be at most {PASSWORD_MAX} characters")
        return text


class IpField(fields.Str):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValidationError("must be an IP address") from None


class UserAgentField(fields.Str):
    """Informational only: trimmed to 300 characters, control characters dropped."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return _CONTROL.sub("", text).strip()[:300]


class TokenField(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(200, **kwargs)


class Payload(Schema):
    class Meta:
        unknown = EXCLUDE  # the gateway may send more (e.g. account numbers it checked itself)


class RegisterPayload(Payload):
    user_id = UserIdField(required=True)
    email = EmailField(required=True)
    password = PasswordField(required=True)
    challenge_id = Text(64, load_default=None, allow_none=True)
    challenge_answer = Text(100, load_default=None, allow_none=True)
    client_ip = IpField(required=True)


class SignInPayload(Payload):
    login = Text(_LOGIN_MAX, required=True)
    password = PasswordField(required=True)
    remember_me = fields.Bool(load_default=False)
    client_ip = IpField(required=True)
    user_agent = UserAgentField(load_default=None, allow_none=True)


class EmailRequest(Payload):
    email = EmailField(required=True)
    client_ip = IpField(load_default=None, allow_none=True)


class TokenRequest(Payload):
    token = TokenField(required=True)


class ResetRequest(Payload):
    token = TokenField(required=True)
    new_password = PasswordField(required=True)


class UserRef(Payload):
    user_id = UserIdField(required=True)


class SessionsRequest(Payload):
    user_id = UserIdField(required=True)
    current_session_id = Text(36, load_default=None, allow_none=True)


class RevokeRequest(Payload):
    user_id = UserIdField(required=True)
    session_id = Text(36, required=True)


class ChangePasswordRequest(Payload):
    user_id = UserIdField(required=True)
    current_password = PasswordField(required=True)
    new_password = PasswordField(required=True)
    end_other_sessions = fields.Bool(load_default=False)
    current_session_id = Text(36, load_default=None, allow_none=True)


class ChangeEmailRequest(Payload):
    user_id = UserIdField(required=True)
    password = PasswordField(required=True)
    new_email = EmailField(required=True)


class OidcStartRequest(Payload):
    provider = Text(50, required=True)
    redirect_uri = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
    )


class OidcCompleteRequest(Payload):
    provider = Text(50, required=True)
    code = Text(2000, required=True)
    state = TokenField(required=True)
    client_ip = IpField(required=True)
    user_agent = UserAgentField(load_default=None, allow_none=True)


class ClaimLegacyRequest(Payload):
    user_id = UserIdField(required=True)
    legacy_ids = fields.List(Text(40), required=True, validate=validate.Length(max=50))


def load(schema: type[Schema], data: Any) -> dict[str, Any]:
    """Load a payload; a non-object payload is an error about the whole request."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["must be an object"]})
    return schema().load(data)
