"""marshmallow schemas for the payments service's RPC payloads (errors name the field)."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate

US_STATES = {
    *"AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP AA AE AP".split()
}


def _url(value: str) -> None:
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value or ""):
        raise ValidationError("must be an http(s) URL")


def _state(value: str) -> None:
    if value.upper() not in US_STATES:
        raise ValidationError("must be a two-letter US state code, like CA")


def _phone_digits(value: str) -> str:
    return re.sub(r"[\s().+-]", "", value or "")


def _phone(value: str) -> None:
    if value and not re.fullmatch(r"1?\d{10}", _phone_digits(value)):
        raise ValidationError("must be a 10-digit phone number")


class BillingSchema(Schema):
    """Billing information, as the processor needs it to match the card's billing address."""

    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    address = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    address2 = fields.Str(load_default="", validate=validate.Length(max=100))
    city = fields.Str(required=True, validate=validate.Length(min=1, max=60))
    state = fields.Str(required=True, validate=_state)
    zip = fields.Str(
        required=True,
        validate=validate.Regexp(
            r"^\d{5}(-?\d{4})?$", error="must be a 5-digit ZIP code (or ZIP+4)"
        ),
    )
    phone = fields.Str(load_default="", validate=_phone)
    email = fields.Email(required=True, validate=validate.Length(max=254))

    @pre_load
    def tidy(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("must be an object", "_schema")
        return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}

    @post_load
    def normalize(self, data, **kwargs):
        data["state"] = data["state"].upper()
        digits = _phone_digits(data.get("phone") or "")
        data["phone"] = digits[-10:] if digits else ""
        return data


class StartCheckoutSchema(Schema):
    owner = fields.Str(required=True)
    idempotency_key = fields.Str(
        required=True,
        validate=[
            validate.Length(min=8, max=200),
            validate.Regexp(r"^[\x21-\x7e]+$", error="must be printable ASCII without spaces"),
        ],
    )
    billing = fields.Nested(BillingSchema, required=True)
    return_url = fields.Str(required=True, validate=[validate.Length(max=2000), _url])


class CartItemSchema(Schema):
    owner = fields.Str(required=True)
    bill_number = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    amount = fields.Raw(load_default=None, allow_none=True)

    @post_load
    def normalize(self, data, **kwargs):
        # Bill numbers are stored normalized (accounts' rule): no spaces, no leading zeros.
        number = data["bill_number"].strip().lstrip("0") or "0"
        data["bill_number"] = number
        return data


class RefundSchema(Schema):
    ref = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    amount = fields.Raw(load_default=None, allow_none=True)
    reason = fields.Str(required=True, validate=validate.Length(min=3, max=300))


class EnrollSchema(Schema):
    user_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    account_number = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    card_token = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    email = fields.Email(load_default=None, allow_none=True)
    days_before = fields.Int(load_default=None, allow_none=True, validate=validate.Range(0, 28))


class CardSetupSchema(Schema):
    owner = fields.Str(required=True)
    account_number = fields.Str(required=True, validate=validate.Length(min=1, max=40))
    return_url = fields.Str(required=True, validate=[validate.Length(max=2000), _url])
