"""marshmallow schemas for the billing service's RPC payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

Identifier = fields.Str(required=True, validate=validate.Length(min=1, max=30))


class AccountBillsRequest(Schema):
    account_number = fields.Str(required=True, validate=validate.Length(min=1, max=30))
    status = fields.Str(load_default="outstanding", validate=validate.OneOf(["outstanding", "all"]))


class AccountRequest(Schema):
    account_number = fields.Str(required=True, validate=validate.Length(min=1, max=30))


class ConsumptionRequest(Schema):
    account_number = fields.Str(required=True, validate=validate.Length(min=1, max=30))
    service_code = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=20))


class BillRequest(Schema):
    bill_number = fields.Str(required=True, validate=validate.Length(min=1, max=30))


class CustomerInvoicesRequest(Schema):
    customer_id = fields.Str(required=True, validate=validate.Length(min=1, max=30))
    status = fields.Str(load_default="outstanding", validate=validate.OneOf(["outstanding", "all"]))


class FindInvoiceRequest(Schema):
    # Lengths are checked by the query: a too-long value gets the same generic answer.
    customer_id = fields.Str(required=True)
    bill_number = fields.Str(required=True)
