"""The accounts service's events (see docs/events.md). Dates are ISO 8601 strings."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events import event_type

LINK_TYPES = ("utility", "customer")
LINK_VIA = ("link", "search", "registration", "invoice", "legacy", "staff")
MODULES = ("utility", "general")


class Address(Schema):
    line1 = fields.Str(required=True)
    line2 = fields.Str(allow_none=True, load_default=None)
    city = fields.Str(required=True)
    state = fields.Str(required=True, validate=validate.Length(equal=2))
    zip = fields.Str(required=True)


class Service(Schema):
    code = fields.Str(required=True)
    name = fields.Str(required=True)
    start_date = fields.Date(required=True)
    stop_date = fields.Date(allow_none=True, load_default=None)
    status = fields.Str(required=True)
    meter_number = fields.Str(allow_none=True, load_default=None)
    meter_size = fields.Str(allow_none=True, load_default=None)


class _Customer(Schema):
    customer_id = fields.Str(required=True)
    name = fields.Str(required=True)
    mailing_address = fields.Nested(Address, required=True)
    email = fields.Str(allow_none=True, load_default=None)


@event_type("CustomerImported", version=1)
class CustomerImported(_Customer):
    """A customer first seen in an import from the city's billing system."""


@event_type("CustomerChanged", version=1)
class CustomerChanged(_Customer):
    """A later import changed the customer: the full new record and the fields that changed."""

    changed = fields.List(fields.Str(), required=True)


class _Account(Schema):
    account_number = fields.Str(required=True)
    customer_id = fields.Str(required=True)
    service_address = fields.Str(required=True)
    service_city = fields.Str(required=True)
    service_state = fields.Str(required=True)
    service_zip = fields.Str(required=True)
    parcel_id = fields.Str(allow_none=True, load_default=None)
    status = fields.Str(required=True)
    cycle = fields.Str(required=True)
    services = fields.List(fields.Nested(Service), required=True)


@event_type("AccountImported", version=1)
class AccountImported(_Account):
    """A utility account first seen in an import."""


@event_type("AccountChanged", version=1)
class AccountChanged(_Account):
    """A later import changed the account: the full new record and the fields that changed."""

    changed = fields.List(fields.Str(), required=True)


@event_type("LinkCreated", version=1)
class LinkCreated(Schema):
    link_id = fields.Str(required=True)
    user_id = fields.Str(required=True)
    type = fields.Str(required=True, validate=validate.OneOf(LINK_TYPES))
    account_number = fields.Str(allow_none=True, load_default=None)
    customer_id = fields.Str(required=True)
    via = fields.Str(required=True, validate=validate.OneOf(LINK_VIA))
    created_at = fields.AwareDateTime(required=True)


@event_type("LinkRemoved", version=1)
class LinkRemoved(Schema):
    link_id = fields.Str(required=True)
    user_id = fields.Str(required=True)
    type = fields.Str(required=True, validate=validate.OneOf(LINK_TYPES))
    account_number = fields.Str(allow_none=True, load_default=None)
    customer_id = fields.Str(required=True)
    # "user" (the resident removed it) or "account_reassigned" (the account changed customer).
    reason = fields.Str(required=True)


@event_type("LinkAttemptFailed", version=1)
class LinkAttemptFailed(Schema):
    """Values that matched no account: counted by the throttle. The values are not kept."""

    key = fields.Str(required=True)
    module = fields.Str(required=True)
    at = fields.AwareDateTime(required=True)


@event_type("SearchValuesRemembered", version=1)
class SearchValuesRemembered(Schema):
    user_id = fields.Str(required=True)
    module = fields.Str(required=True, validate=validate.OneOf(MODULES))
    values = fields.Dict(keys=fields.Str(), values=fields.Str(), required=True)


@event_type("SearchValuesForgotten", version=1)
class SearchValuesForgotten(Schema):
    user_id = fields.Str(required=True)
    module = fields.Str(required=True, validate=validate.OneOf(MODULES))


@event_type("PreferencesChanged", version=1)
class PreferencesChanged(Schema):
    account_number = fields.Str(required=True)
    customer_id = fields.Str(required=True)
    paperless = fields.Bool(required=True)
    email_notices = fields.Bool(required=True)
    user_id = fields.Str(required=True)


class _AddressRequest(Schema):
    request_id = fields.Str(required=True)
    customer_id = fields.Str(required=True)
    account_number = fields.Str(required=True)
    user_id = fields.Str(required=True)
    customer_name = fields.Str(required=True)


@event_type("AddressChangeRequested", version=1)
class AddressChangeRequested(_AddressRequest):
    current_address = fields.Nested(Address, required=True)
    new_address = fields.Nested(Address, required=True)
    effective_date = fields.Date(required=True)
    requested_at = fields.AwareDateTime(required=True)


@event_type("AddressChangeApproved", version=1)
class AddressChangeApproved(_AddressRequest):
    new_address = fields.Nested(Address, required=True)
    effective_date = fields.Date(required=True)
    decided_by = fields.Str(required=True)
    decided_at = fields.AwareDateTime(required=True)


@event_type("AddressChangeRejected", version=1)
class AddressChangeRejected(_AddressRequest):
    reason = fields.Str(required=True, validate=validate.Length(min=1))
    decided_by = fields.Str(required=True)
    decided_at = fields.AwareDateTime(required=True)


@event_type("AddressChangeCancelled", version=1)
class AddressChangeCancelled(_AddressRequest):
    cancelled_at = fields.AwareDateTime(required=True)


@event_type("CustomerAddressChanged", version=1)
class CustomerAddressChanged(Schema):
    """The address of record changes on `effective_date` (an approved request)."""

    customer_id = fields.Str(required=True)
    mailing_address = fields.Nested(Address, required=True)
    effective_date = fields.Date(required=True)
    request_id = fields.Str(required=True)
