"""The API's request and response shapes (marshmallow); the OpenAPI document is built from them.

Request schemas check shape only (types, required fields, lengths); the services
judge the rules and name the field that broke one. Money is a decimal string with
two places ("127.11"), dates and times ISO 8601.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

ID_TEXT = validate.Length(min=1, max=40)


class Strict(Schema):
    class Meta:
        unknown = RAISE


def Text(max_len: int = 200, **kw):  # noqa: N802 - a field factory reads like a field
    return fields.String(validate=validate.Length(max=max_len), **kw)


def Money(**kw):  # noqa: N802
    return fields.String(metadata={"example": "127.11", "pattern": r"^-?\d+\.\d{2}$"}, **kw)


# -- problems -----------------------------------------------------------------------------


class ProblemSchema(Schema):
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.String())
    request_id = fields.String()


# -- identity -----------------------------------------------------------------------------


class RegistrationRequest(Strict):
    user_id = Text(64, required=True)
    email = Text(254, required=True)
    password = Text(256, required=True)
    account_number = Text(40, load_default=None, allow_none=True)
    customer_id = Text(40, load_default=None, allow_none=True)
    challenge_id = Text(64, load_default=None, allow_none=True)
    challenge_answer = Text(100, load_default=None, allow_none=True)

    @validates_schema
    def both_or_neither(self, data, **kwargs):
        if bool(data.get("account_number")) != bool(data.get("customer_id")):
            missing = "customer_id" if data.get("account_number") else "account_number"
            raise ValidationError(
                "give both the account number and the customer ID, or neither", missing
            )


class RegistrationSchema(Schema):
    user_id = fields.String()
    display_user_id = fields.String()
    email = fields.String()
    status = fields.String(metadata={"example": "pending_verification"})
    linked_account = fields.String(allow_none=True)


class TokenBody(Strict):
    token = Text(512, required=True)


class EmailBody(Strict):
    email = Text(254, required=True)


class ResetBody(Strict):
    token = Text(512, required=True)
    new_password = Text(256, required=True)


class SignInRequest(Strict):
    login = Text(254, required=True)
    password = Text(256, required=True)
    remember_me = fields.Boolean(load_default=False)


class ProfileSchema(Schema):
    user_id = fields.String()
    display_user_id = fields.String()
    email = fields.String()
    email_verified = fields.Boolean()
    has_password = fields.Boolean()
    external_provider = fields.String(allow_none=True)
    last_successful_login = fields.String(allow_none=True)
    last_successful_login_ip = fields.String(allow_none=True)
    locked = fields.Boolean()
    created_at = fields.String()


class SessionSchema(Schema):
    token = fields.String(required=True)
    csrf_token = fields.String(required=True)
    expires_at = fields.String(required=True)
    user = fields.Nested(ProfileSchema)


class MeSchema(Schema):
    user = fields.Nested(ProfileSchema)
    csrf_token = fields.String()
    session = fields.Dict()


class ChangePasswordRequest(Strict):
    current_password = Text(256, required=True)
    new_password = Text(256, required=True)
    end_other_sessions = fields.Boolean(load_default=False)


class ChangeEmailRequest(Strict):
    password = Text(256, required=True)
    new_email = Text(254, required=True)


class OidcStartRequest(Strict):
    provider = Text(40, required=True)


class OidcCompleteRequest(Strict):
    provider = Text(40, required=True)
    code = Text(2000, required=True)
    state = Text(2000, required=True)


class LegacyClaimRequest(Strict):
    legacy_ids = fields.List(Text(64), required=True, validate=validate.Length(max=50))


# -- accounts -----------------------------------------------------------------------------


class LinkRequest(Strict):
    type = fields.String(required=True, validate=validate.OneOf(["utility", "customer"]))
    account_number = Text(40, load_default=None, allow_none=True)
    customer_id = Text(40, load_default=None, allow_none=True)
    name = Text(120, load_default=None, allow_none=True)


class LinkSchema(Schema):
    link_id = fields.String()
    type = fields.String()
    account_number = fields.String(allow_none=True)
    customer_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    service_address = fields.String(allow_none=True)
    location = fields.String(allow_none=True)
    via = fields.String()
    created_at = fields.String()


class LinksSchema(Schema):
    links = fields.List(fields.Nested(LinkSchema))


class UtilitySearchRequest(Strict):
    account_number = Text(40, required=True)
    customer_id = Text(40, required=True)
    remember = fields.Boolean(load_default=False)


class InvoiceSearchRequest(Strict):
    customer_id = Text(40, required=True)
    bill_number = Text(40, required=True)
    remember = fields.Boolean(load_default=False)


class ModuleQuery(Strict):
    module = fields.String(required=True, validate=validate.OneOf(["utility", "general"]))


class PreferencesRequest(Strict):
    paperless = fields.Boolean(required=True)
    email_notices = fields.Boolean(required=True)


class AddressChangeRequest(Strict):
    address_line1 = Text(100, required=True)
    address_line2 = Text(100, load_default=None, allow_none=True)
    city = Text(60, required=True)
    state = Text(20, required=True)
    zip = Text(12, required=True)
    effective_date = Text(10, required=True, metadata={"format": "date"})


class AutopayRequest(Strict):
    card_token = Text(200, required=True)
    days_before = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 30))


# -- billing ------------------------------------------------------------------------------


class BillsQuery(Strict):
    status = fields.String(
        load_default="outstanding", validate=validate.OneOf(["outstanding", "all"])
    )


class BillRowSchema(Schema):
    bill_number = fields.String()
    bill_date = fields.String(metadata={"format": "date"})
    due_date = fields.String(metadata={"format": "date"})
    charges = Money()
    balance_due = Money()
    pending_web_payment = fields.Boolean()


class BillsSchema(Schema):
    account_number = fields.String()
    as_of = fields.String()
    bills = fields.List(fields.Nested(BillRowSchema), required=True)
    total_due = Money(required=True)


class ConsumptionQuery(Strict):
    service_code = Text(20, load_default=None, allow_none=True)


# -- cart and checkout ----------------------------------------------------------------------


class CartItemRequest(Strict):
    bill_number = Text(40, required=True)
    amount = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{1,7}(\.\d{1,2})?$")
    )


class CartItemSchema(Schema):
    bill_number = fields.String()
    account_number = fields.String(allow_none=True)
    description = fields.String()
    due_date = fields.String()
    balance_due = Money()
    amount = Money()


class CartSchema(Schema):
    items = fields.List(fields.Nested(CartItemSchema))
    count = fields.Integer()
    subtotal = Money()
    convenience_fee = Money()
    total = Money()
    owner = fields.String(allow_none=True)


class BillingInfo(Strict):
    name = Text(100, required=True)
    address = Text(100, required=True)
    address2 = Text(100, load_default=None, allow_none=True)
    city = Text(60, required=True)
    state = Text(20, required=True)
    zip = Text(12, required=True)
    phone = Text(30, load_default=None, allow_none=True)
    email = Text(254, required=True)


class CheckoutRequest(Strict):
    billing = fields.Nested(BillingInfo, required=True)


class CheckoutSchema(Schema):
    checkout_id = fields.String(required=True)
    status = fields.String(
        validate=validate.OneOf(["open", "pending", "paid", "failed", "expired", "canceled"])
    )
    expires_at = fields.String()
    seconds_left = fields.Integer()
    amount_total = Money()
    payment_url = fields.String(allow_none=True)
    receipt = fields.Dict(allow_none=True)


class QuickPayRequest(Strict):
    account_number = Text(40, required=True)
    customer_id = Text(40, required=True)


class QuickPaySchema(Schema):
    account_number = fields.String()
    customer_id = fields.String()
    bills = fields.List(fields.Nested(BillRowSchema))
    total_due = Money()
    guest_token = fields.String()
    csrf_token = fields.String()
