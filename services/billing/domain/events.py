"""The billing service's events, each with its schema version (see docs/events.md)."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate

from shared.events import event_type

KINDS = ("utility", "general")
READ_TYPES = ("actual", "estimated")
REVERSAL_KINDS = ("refund", "return", "chargeback")
BALANCE_REASONS = (
    "payment",
    "legacy_payment",
    "refund",
    "return",
    "chargeback",
    "penalty",
)


def _two_places(value: Decimal) -> None:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValidationError("must have at most two decimal places")


def Money(**kwargs) -> fields.Decimal:  # noqa: N802 - a field factory reads like a field
    return fields.Decimal(as_string=True, validate=_two_places, **kwargs)


def Units(**kwargs) -> fields.Decimal:  # noqa: N802
    return fields.Decimal(as_string=True, **kwargs)


class Read(Schema):
    service_code = fields.Str(required=True)
    meter_number = fields.Str(required=True)
    previous_read_date = fields.Date(required=True)
    read_date = fields.Date(required=True)
    previous_reading = Units(required=True)
    reading = Units(required=True)
    usage_units = Units(required=True)
    read_type = fields.Str(required=True, validate=validate.OneOf(READ_TYPES))


class Line(Schema):
    description = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    # None marks a message line (e.g. "REPLACED METER #1470066610.").
    amount = Money(required=True, allow_none=True)
    service_code = fields.Str(load_default=None, allow_none=True)


class Statement(Schema):
    """The issuer block printed on the bill, as it stood when the bill was issued."""

    issuer = fields.Str(required=True)
    issuer_address = fields.List(fields.Str(), required=True)
    contact = fields.Str(required=True)
    website = fields.Str(load_default="", allow_none=True)
    unit_note = fields.Str(load_default="", allow_none=True)


@event_type("BillIssued", version=1)
class BillIssued(Schema):
    bill_number = fields.Str(required=True, validate=validate.Length(min=1, max=30))
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    bill_type = fields.Str(required=True, validate=validate.Length(min=1, max=30))
    description = fields.Str(required=True)
    account_number = fields.Str(required=True, allow_none=True)
    customer_id = fields.Str(required=True)
    customer_name = fields.Str(required=True)
    service_address = fields.Str(load_default=None, allow_none=True)
    cycle = fields.Str(load_default=None, allow_none=True)
    statement_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    bill_year = fields.Int(required=True)
    reads = fields.List(fields.Nested(Read), load_default=list)
    lines = fields.List(fields.Nested(Line), required=True)
    previous_balance = Money(required=True)
    payments = Money(required=True)
    penalty = Money(required=True)
    total = Money(required=True)
    balance_due = Money(required=True)
    late_penalty = fields.Bool(required=True)
    statement = fields.Nested(Statement, required=True)
    issued_via = fields.Str(required=True, validate=validate.OneOf(("run", "import")))
    run_id = fields.Str(load_default=None, allow_none=True)
    import_id = fields.Str(load_default=None, allow_none=True)
    fingerprint = fields.Str(load_default=None, allow_none=True)


@event_type("BillBalanceChanged", version=1)
class BillBalanceChanged(Schema):
    bill_number = fields.Str(required=True)
    account_number = fields.Str(required=True, allow_none=True)
    customer_id = fields.Str(required=True)
    change = Money(required=True)
    balance_due = Money(required=True)
    reason = fields.Str(required=True, validate=validate.OneOf(BALANCE_REASONS))
    payment_id = fields.Str(load_default=None, allow_none=True)
    posted_on = fields.Date(required=True)


class Allocation(Schema):
    bill_number = fields.Str(required=True)
    account_number = fields.Str(load_default=None, allow_none=True)
    customer_id = fields.Str(load_default=None, allow_none=True)
    amount = Money(required=True)


@event_type("PaymentApplied", version=1)
class PaymentApplied(Schema):
    payment_id = fields.Str(required=True)
    checkout_id = fields.Str(load_default=None, allow_none=True)
    confirmation_number = fields.Str(load_default=None, allow_none=True)
    paid_at = fields.AwareDateTime(required=True)
    posted_on = fields.Date(required=True)
    amount = Money(required=True)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    # Money billing could not place on any bill (unknown bill numbers): held for the clerk.
    unapplied = Money(required=True)


@event_type("PaymentReversalReceived", version=1)
class PaymentReversalReceived(Schema):
    """A reversal that arrived before its payment; applied when the payment arrives."""

    payment_id = fields.Str(required=True)
    reversal_id = fields.Str(required=True)
    kind = fields.Str(required=True, validate=validate.OneOf(REVERSAL_KINDS))
    amount = Money(load_default=None, allow_none=True)
    allocations = fields.List(fields.Nested(Allocation), load_default=list)
    reason = fields.Str(load_default=None, allow_none=True)


@event_type("PaymentReversed", version=1)
class PaymentReversed(Schema):
    payment_id = fields.Str(required=True)
    reversal_id = fields.Str(required=True)
    kind = fields.Str(required=True, validate=validate.OneOf(REVERSAL_KINDS))
    amount = Money(required=True)
    allocations = fields.List(fields.Nested(Allocation), required=True)
    reason = fields.Str(load_default=None, allow_none=True)
    posted_on = fields.Date(required=True)


@event_type("PenaltyAssessed", version=1)
class PenaltyAssessed(Schema):
    bill_number = fields.Str(required=True)
    account_number = fields.Str(required=True, allow_none=True)
    customer_id = fields.Str(required=True)
    amount = Money(required=True)
    percent = fields.Decimal(as_string=True, required=True)
    unpaid_balance = Money(required=True)
    assessed_on = fields.Date(required=True)


class ReadRecord(Read):
    account_number = fields.Str(required=True)
    note = fields.Str(load_default=None, allow_none=True)


@event_type("MeterReadsRecorded", version=1)
class MeterReadsRecorded(Schema):
    import_id = fields.Str(required=True)
    chunk = fields.Int(required=True)
    reads = fields.List(fields.Nested(ReadRecord), required=True)


@event_type("BillsImported", version=1)
class BillsImported(Schema):
    import_id = fields.Str(required=True)
    filename = fields.Str(required=True)
    bills = fields.List(fields.Str(), required=True)
    skipped = fields.List(fields.Str(), load_default=list)


@event_type("BillNumbersAllocated", version=1)
class BillNumbersAllocated(Schema):
    first = fields.Int(required=True)
    last = fields.Int(required=True)
    run_id = fields.Str(required=True)


@event_type("BillingRunStarted", version=1)
class BillingRunStarted(Schema):
    run_id = fields.Str(required=True)
    cycle = fields.Str(required=True)
    statement_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    schedule_sha = fields.Str(required=True)
    # The rates and policy in force, so that a resumed run bills exactly like the first part.
    schedule = fields.Dict(required=True)


class RunException(Schema):
    account_number = fields.Str(required=True)
    reason = fields.Str(required=True)


@event_type("BillingRunBatchCompleted", version=1)
class BillingRunBatchCompleted(Schema):
    run_id = fields.Str(required=True)
    batch = fields.Int(required=True)
    last_account = fields.Str(required=True)
    billed = fields.Int(required=True)
    first_bill_number = fields.Int(load_default=None, allow_none=True)
    last_bill_number = fields.Int(load_default=None, allow_none=True)
    amount = Money(required=True)
    exceptions = fields.List(fields.Nested(RunException), load_default=list)


@event_type("BillingRunCompleted", version=1)
class BillingRunCompleted(Schema):
    run_id = fields.Str(required=True)
    billed = fields.Int(required=True)
    exceptions = fields.Int(required=True)
    amount = Money(required=True)
