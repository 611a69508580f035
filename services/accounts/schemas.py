"""marshmallow schemas for the accounts service's RPC payloads and consumed events.

Values are kept raw here (`fields.Raw`) where residents' forgiving input is
cleaned by the domain (`domain/identifiers.py`, `domain/values.py`), which
names the field and the rule when it must refuse.
"""

from marshmallow import RAISE, Schema, fields, validate


class LinkRequest(Schema):
    class Meta:
        unknown = RAISE

    type = fields.Str(required=True, validate=validate.OneOf(("utility", "customer")))
    account_number = fields.Raw(allow_none=True, load_default=None)
    customer_id = fields.Raw(allow_none=True, load_default=None)
    name = fields.Raw(allow_none=True, load_default=None)


class AddressChangeRequest(Schema):
    class Meta:
        unknown = RAISE

    address_line1 = fields.Raw(allow_none=True, load_default=None)
    address_line2 = fields.Raw(allow_none=True, load_default=None)
    city = fields.Raw(allow_none=True, load_default=None)
    state = fields.Raw(allow_none=True, load_default=None)
    zip = fields.Raw(allow_none=True, load_default=None)
    effective_date = fields.Raw(allow_none=True, load_default=None)


class LegacyAccountsClaimed(Schema):
    """identity's event, as this service reads it (identity owns the type)."""

    user_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    legacy_ids = fields.List(fields.Raw(), load_default=list)
    account_numbers = fields.List(fields.Raw(), required=True)
