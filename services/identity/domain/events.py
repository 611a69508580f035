"""The identity service's events: facts in the past tense, with their schema versions.

No event carries a secret: raw tokens never appear, and neither do password
hashes (they live in the credentials table, beside the log, never on the bus).
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import event_type


def UserId(**kw) -> fields.Str:  # noqa: N802 - reads like a field class
    return fields.Str(validate=validate.Length(min=1, max=20), **kw)


def Email(**kw) -> fields.Str:  # noqa: N802
    return fields.Str(validate=validate.Length(min=3, max=254), **kw)


SESSION_END_REASONS = (
    "signed_out",
    "revoked",
    "password_reset",
    "password_changed",
    "expired",
)


@event_type("UserRegistered", version=1)
class UserRegistered(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(required=True)
    email = Email(required=True)
    via = fields.Str(required=True, validate=validate.OneOf(["password", "oidc"]))
    issuer = fields.Str(load_default=None, allow_none=True)
    provider = fields.Str(load_default=None, allow_none=True)


@event_type("EmailVerificationRequested", version=1)
class EmailVerificationRequested(Schema):
    user_id = UserId(required=True)
    email = Email(required=True)
    purpose = fields.Str(required=True, validate=validate.OneOf(["registration", "email_change"]))
    expires_at = fields.AwareDateTime(required=True)


@event_type("EmailVerified", version=1)
class EmailVerified(Schema):
    user_id = UserId(required=True)
    email = Email(required=True)
    display_user_id = UserId(load_default=None, allow_none=True)


@event_type("EmailChangeRequested", version=1)
class EmailChangeRequested(Schema):
    user_id = UserId(required=True)
    old_email = Email(required=True)
    new_email = Email(required=True)


@event_type("EmailChanged", version=1)
class EmailChanged(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(load_default=None, allow_none=True)
    old_email = Email(required=True)
    new_email = Email(required=True)


@event_type("EmailAddressClaimed", version=1)
class EmailAddressClaimed(Schema):
    """An address became a user's (verified): one user per address, enforced by its stream."""

    email = Email(required=True)
    user_id = UserId(required=True)


@event_type("EmailAddressReleased", version=1)
class EmailAddressReleased(Schema):
    email = Email(required=True)
    user_id = UserId(required=True)


@event_type("SignedIn", version=1)
class SignedIn(Schema):
    user_id = UserId(required=True)
    session_id = fields.Str(required=True, validate=validate.Length(min=1, max=36))
    method = fields.Str(required=True, validate=validate.OneOf(["password", "oidc"]))
    remember_me = fields.Bool(required=True)
    client_ip = fields.Str(load_default=None, allow_none=True)
    user_agent = fields.Str(load_default=None, allow_none=True)
    expires_at = fields.AwareDateTime(required=True)
    failures_before = fields.Int(load_default=0)


@event_type("SignInFailed", version=1)
class SignInFailed(Schema):
    user_id = UserId(required=True)
    reason = fields.Str(required=True, validate=validate.OneOf(["bad_password", "locked"]))
    client_ip = fields.Str(load_default=None, allow_none=True)
    consecutive_failures = fields.Int(required=True)


@event_type("AccountLocked", version=1)
class AccountLocked(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(load_default=None, allow_none=True)
    email = Email(required=True)
    failures = fields.Int(required=True)


@event_type("UnlockRequested", version=1)
class UnlockRequested(Schema):
    user_id = UserId(required=True)


@event_type("AccountUnlocked", version=1)
class AccountUnlocked(Schema):
    user_id = UserId(required=True)
    via = fields.Str(required=True, validate=validate.OneOf(["email_link", "password_reset"]))


@event_type("SessionEnded", version=1)
class SessionEnded(Schema):
    user_id = UserId(required=True)
    session_id = fields.Str(required=True, validate=validate.Length(min=1, max=36))
    reason = fields.Str(required=True, validate=validate.OneOf(SESSION_END_REASONS))


@event_type("PasswordChanged", version=1)
class PasswordChanged(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(load_default=None, allow_none=True)
    email = Email(required=True)
    other_sessions_ended = fields.Int(load_default=0)


@event_type("PasswordResetRequested", version=1)
class PasswordResetRequested(Schema):
    user_id = UserId(required=True)


@event_type("PasswordReset", version=1)
class PasswordReset(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(load_default=None, allow_none=True)
    email = Email(required=True)
    sessions_ended = fields.Int(load_default=0)


@event_type("UserIdReminderRequested", version=1)
class UserIdReminderRequested(Schema):
    user_id = UserId(required=True)
    display_user_id = UserId(required=True)
    email = Email(required=True)
    external_provider = fields.Str(load_default=None, allow_none=True)


@event_type("ExternalIdentityLinked", version=1)
class ExternalIdentityLinked(Schema):
    issuer = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    subject = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    provider = fields.Str(required=True)
    user_id = UserId(required=True)


@event_type("LegacyUserImported", version=1)
class LegacyUserImported(Schema):
    legacy_id = fields.Str(required=True)
    legacy_user_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    email = Email(required=True)
    account_numbers = fields.List(fields.Str(), required=True)


@event_type("LegacyUserUpdated", version=1)
class LegacyUserUpdated(Schema):
    legacy_id = fields.Str(required=True)
    legacy_user_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    email = Email(required=True)
    account_numbers = fields.List(fields.Str(), required=True)


@event_type("LegacyUserClaimed", version=1)
class LegacyUserClaimed(Schema):
    legacy_id = fields.Str(required=True)
    user_id = UserId(required=True)


@event_type("LegacyUserDeclined", version=1)
class LegacyUserDeclined(Schema):
    legacy_id = fields.Str(required=True)
    user_id = UserId(required=True)


@event_type("LegacyAccountsClaimed", version=1)
class LegacyAccountsClaimed(Schema):
    """The accounts service links these account numbers to the user (via "legacy")."""

    user_id = UserId(required=True)
    legacy_ids = fields.List(fields.Str(), required=True)
    account_numbers = fields.List(fields.Str(), required=True)
    automatic = fields.Bool(load_default=False)
