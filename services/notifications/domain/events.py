"""The notifications service's own events: the delivery log and announcements.

Secret links never appear here: a secure email's link lives only in the
encrypted spool (see `services.notifications.spool`) until it is delivered.
"""

from marshmallow import Schema, fields, validate

from shared.events import event_type

STATUSES = ("queued", "deferred", "sent", "failed", "given_up")
AUDIENCES = ("all", "signed_in")


class Trigger(Schema):
    source = fields.Str(required=True)
    type = fields.Str(required=True)
    event_id = fields.Str(required=True)


@event_type("EmailQueued")
class EmailQueued(Schema):
    message_id = fields.Str(required=True)
    kind = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    to = fields.Str(required=True, validate=validate.Length(min=3, max=254))
    subject = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    city = fields.Str(required=True)
    # What the templates need, never a secret. Plain JSON values.
    context = fields.Dict(required=True)
    secure = fields.Bool(required=True)
    trigger = fields.Nested(Trigger, allow_none=True, load_default=None)
    # sha256 of the caller's idempotency key (the key itself might be guessable or sensitive).
    idempotency_hash = fields.Str(allow_none=True, load_default=None)


@event_type("EmailSent")
class EmailSent(Schema):
    message_id = fields.Str(required=True)
    attempt = fields.Int(required=True)
    sent_at = fields.AwareDateTime(required=True)
    smtp_reply = fields.Str(load_default="")


@event_type("EmailDeferred")
class EmailDeferred(Schema):
    message_id = fields.Str(required=True)
    attempt = fields.Int(required=True)
    error = fields.Str(required=True)
    next_attempt_at = fields.AwareDateTime(required=True)


@event_type("EmailFailed")
class EmailFailed(Schema):
    """Parked: refused for good (5xx) or the last attempt failed. Staff may retry or drop it."""

    message_id = fields.Str(required=True)
    attempt = fields.Int(required=True)
    error = fields.Str(required=True)
    permanent = fields.Bool(required=True)


@event_type("EmailRetried")
class EmailRetried(Schema):
    message_id = fields.Str(required=True)
    by = fields.Str(required=True)


@event_type("EmailGivenUp")
class EmailGivenUp(Schema):
    message_id = fields.Str(required=True)
    reason = fields.Str(required=True)
    by = fields.Str(required=True)


class AnnouncementFields(Schema):
    announcement_id = fields.Str(required=True)
    title = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    body = fields.Str(required=True, validate=validate.Length(min=1, max=4000))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(allow_none=True, load_default=None)
    audience = fields.Str(required=True, validate=validate.OneOf(AUDIENCES))


@event_type("AnnouncementPosted")
class AnnouncementPosted(AnnouncementFields):
    by = fields.Str(required=True)


@event_type("AnnouncementEdited")
class AnnouncementEdited(AnnouncementFields):
    by = fields.Str(required=True)


@event_type("AnnouncementRetired")
class AnnouncementRetired(Schema):
    announcement_id = fields.Str(required=True)
    by = fields.Str(required=True)
