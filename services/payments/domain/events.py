"""The payments service's events, each declared once with its schema version.

Money is a decimal string with two places; dates and times are ISO 8601.
Events other services rely on are listed in docs/contracts.md and docs/events.md.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import event_type


def Money(**kw):  # noqa: N802 - reads like a field type
    return fields.Decimal(as_string=True, places=2, **kw)


class BillAmount(Schema):
    bill_number = fields.Str(required=True)
    amount = Money(required=True)


class Allocation(Schema):
    bill_number = fields.Str(required=True)
    account_number = fields.Str(required=True, allow_none=True)  # None: a general bill
    customer_id = fields.Str(load_default=None, allow_none=True)
    amount = Money(required=True)


class BillingInfo(Schema):
    name = fields.Str(required=True)
    address = fields.Str(required=True)
    address2 = fields.Str(load_default="")
    city = fields.Str(required=True)
    state = fields.Str(required=True)
    zip = fields.Str(required=True)
    phone = fields.Str(load_default="")
    email = fields.Email(required=True)


# -- cart --------------------------------------------------------------------------------


@event_type("CartItemAdded", version=1)
class CartItemAdded(Schema):
    owner = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    amount = Money(allow_none=True, load_default=None)  # None: pay the balance due


@event_type("CartItemAmountChanged", version=1)
class CartItemAmountChanged(Schema):
    owner = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    amount = Money(allow_none=True, load_default=None)


@event_type("CartItemRemoved", version=1)
class CartItemRemoved(Schema):
    owner = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    reason = fields.Str(required=True, validate=validate.OneOf(["removed", "paid"]))


# -- checkout concurrency guards ---------------------------------------------------------


@event_type("CheckoutKeyClaimed", version=1)
class CheckoutKeyClaimed(Schema):
    owner = fields.Str(required=True)
    payment_id = fields.Str(required=True)


@event_type("BillHeld", version=1)
class BillHeld(Schema):
    bill_number = fields.Str(required=True)
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    owner = fields.Str(required=True)
    kind = fields.Str(required=True)
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)


@event_type("BillReleased", version=1)
class BillReleased(Schema):
    bill_number = fields.Str(required=True)
    payment_id = fields.Str(required=True)


# -- payments ----------------------------------------------------------------------------


@event_type("PaymentCreated", version=1)
class PaymentCreated(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    kind = fields.Str(required=True, validate=validate.OneOf(["web", "autopay"]))
    owner = fields.Str(required=True)
    user_id = fields.Str(allow_none=True, load_default=None)
    email = fields.Email(required=True)
    billing = fields.Nested(BillingInfo, allow_none=True, load_default=None)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    subtotal = Money(required=True)
    convenience_fee = Money(required=True)
    amount_total = Money(required=True)
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)
    return_url = fields.Str(allow_none=True, load_default=None)
    processor = fields.Str(required=True)


@event_type("CheckoutOpened", version=1)
class CheckoutOpened(Schema):
    checkout_id = fields.Str(required=True)
    payment_id = fields.Str(required=True)
    owner = fields.Str(required=True)
    bills = fields.List(fields.Nested(BillAmount), required=True)
    expires_at = fields.AwareDateTime(required=True)


@event_type("PaymentSessionCreated", version=1)
class PaymentSessionCreated(Schema):
    payment_id = fields.Str(required=True)
    session_id = fields.Str(required=True)
    payment_url = fields.Str(required=True)


@event_type("PaymentPending", version=1)
class PaymentPending(Schema):
    payment_id = fields.Str(required=True)
    processor_event_id = fields.Str(required=True)
    processor_payment_id = fields.Str(allow_none=True, load_default=None)


@event_type("PaymentSucceeded", version=1)
class PaymentSucceeded(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    kind = fields.Str(required=True)
    confirmation_number = fields.Str(required=True)
    owner = fields.Str(required=True)
    user_id = fields.Str(allow_none=True, load_default=None)
    email = fields.Email(required=True)
    amount_total = Money(required=True)
    convenience_fee = Money(required=True)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    paid_at = fields.AwareDateTime(required=True)
    processor_event_id = fields.Str(required=True)
    processor_payment_id = fields.Str(required=True)
    card_brand = fields.Str(allow_none=True, load_default=None)
    card_last4 = fields.Str(allow_none=True, load_default=None)


@event_type("PaymentFailed", version=1)
class PaymentFailed(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    kind = fields.Str(required=True)
    owner = fields.Str(required=True)
    reason = fields.Str(required=True)  # a sentence for the resident
    reason_code = fields.Str(required=True)
    email = fields.Email(required=True)
    processor_event_id = fields.Str(required=True)
    processor_payment_id = fields.Str(allow_none=True, load_default=None)


@event_type("PaymentExpired", version=1)
class PaymentExpired(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    owner = fields.Str(required=True)
    email = fields.Email(required=True)
    expired_at = fields.AwareDateTime(required=True)


@event_type("PaymentCanceled", version=1)
class PaymentCanceled(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    owner = fields.Str(required=True)
    reason = fields.Str(required=True)
    canceled_by = fields.Str(allow_none=True, load_default=None)


@event_type("CheckoutClosed", version=1)
class CheckoutClosed(Schema):
    checkout_id = fields.Str(required=True)
    payment_id = fields.Str(required=True)
    outcome = fields.Str(
        required=True, validate=validate.OneOf(["paid", "failed", "expired", "canceled"])
    )
    bills = fields.List(fields.Nested(BillAmount), required=True)


@event_type("LatePaymentReceived", version=1)
class LatePaymentReceived(Schema):
    """The processor reported a success after the session had expired or was canceled."""

    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    amount = Money(required=True)
    processor_event_id = fields.Str(required=True)
    processor_payment_id = fields.Str(required=True)
    reason = fields.Str(required=True, validate=validate.OneOf(["expired", "canceled"]))
    email = fields.Email(required=True)


@event_type("RefundRequested", version=1)
class RefundRequested(Schema):
    payment_id = fields.Str(required=True)
    request_id = fields.Str(required=True)
    amount = Money(required=True)
    reason = fields.Str(required=True)
    late = fields.Bool(load_default=False)
    void = fields.Bool(load_default=False)
    requested_by = fields.Str(allow_none=True, load_default=None)


@event_type("RefundFailed", version=1)
class RefundFailed(Schema):
    payment_id = fields.Str(required=True)
    request_id = fields.Str(required=True)
    reason = fields.Str(required=True)


@event_type("PaymentRefunded", version=1)
class PaymentRefunded(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    refund_id = fields.Str(required=True)  # the processor's
    request_id = fields.Str(allow_none=True, load_default=None)
    amount = Money(required=True)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    convenience_fee = Money(required=True)  # part of `amount` that returns the fee
    full = fields.Bool(required=True)
    void = fields.Bool(load_default=False)
    reason = fields.Str(required=True)
    owner = fields.Str(required=True)
    user_id = fields.Str(allow_none=True, load_default=None)
    email = fields.Email(required=True)
    refunded_at = fields.AwareDateTime(required=True)


@event_type("LatePaymentRefunded", version=1)
class LatePaymentRefunded(Schema):
    """A late success was given back; billing never posted it, so it changes no balance."""

    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    refund_id = fields.Str(required=True)
    amount = Money(required=True)
    reason = fields.Str(required=True)  # a sentence for the resident
    owner = fields.Str(required=True)
    email = fields.Email(required=True)
    refunded_at = fields.AwareDateTime(required=True)


class _Reversal(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(allow_none=True, load_default=None)
    transaction_id = fields.Str(required=True)  # the processor's return or dispute id
    amount = Money(required=True)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    convenience_fee = Money(required=True)
    reason = fields.Str(required=True)
    owner = fields.Str(required=True)
    user_id = fields.Str(allow_none=True, load_default=None)
    email = fields.Email(required=True)
    occurred_at = fields.AwareDateTime(required=True)


@event_type("PaymentReturned", version=1)
class PaymentReturned(_Reversal):
    pass


@event_type("PaymentChargedBack", version=1)
class PaymentChargedBack(_Reversal):
    pass


# -- automatic payments ------------------------------------------------------------------


class _AutopayPlan(Schema):
    account_number = fields.Str(required=True)
    user_id = fields.Str(required=True)
    email = fields.Email(required=True)
    card_token = fields.Str(required=True)  # the processor's token; no card number, ever
    card_brand = fields.Str(required=True)
    card_last4 = fields.Str(required=True)
    card_expires = fields.Str(required=True)  # YYYY-MM
    days_before = fields.Int(required=True)


@event_type("AutopayEnrolled", version=1)
class AutopayEnrolled(_AutopayPlan):
    pass


@event_type("AutopayChanged", version=1)
class AutopayChanged(_AutopayPlan):
    """Card, email or days changed; effective at once."""


@event_type("AutopayCancelled", version=1)
class AutopayCancelled(Schema):
    account_number = fields.Str(required=True)
    user_id = fields.Str(required=True)
    email = fields.Email(required=True)


@event_type("AutopayScheduled", version=1)
class AutopayScheduled(Schema):
    account_number = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    due_date = fields.Date(required=True)
    charge_date = fields.Date(required=True)
    amount = Money(required=True)
    email = fields.Email(required=True)
    card_brand = fields.Str(required=True)
    card_last4 = fields.Str(required=True)


@event_type("AutopayChargeStarted", version=1)
class AutopayChargeStarted(Schema):
    account_number = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    payment_id = fields.Str(required=True)
    amount = Money(required=True)


@event_type("AutopayChargeSucceeded", version=1)
class AutopayChargeSucceeded(Schema):
    account_number = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    payment_id = fields.Str(required=True)


@event_type("AutopayChargeFailed", version=1)
class AutopayChargeFailed(Schema):
    account_number = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    payment_id = fields.Str(allow_none=True, load_default=None)
    reason = fields.Str(required=True)
    email = fields.Email(required=True)


@event_type("AutopayChargeSkipped", version=1)
class AutopayChargeSkipped(Schema):
    account_number = fields.Str(required=True)
    bill_number = fields.Str(required=True)
    reason = fields.Str(required=True)


@event_type("CardExpiringSoon", version=1)
class CardExpiringSoon(Schema):
    account_number = fields.Str(required=True)
    email = fields.Email(required=True)
    expires = fields.Str(required=True)  # YYYY-MM
    card_brand = fields.Str(required=True)
    card_last4 = fields.Str(required=True)
