"""A utility account's pages: bills, summary, usage, details, preferences, address, autopay."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from services.gateway import schemas as s
from services.gateway.routing import route


@route(
    "GET",
    "/api/v1/accounts/{account_number}/bills",
    auth="cart",
    query=s.BillsQuery,
    response=s.BillsSchema,
    tag="utility billing",
    errors=(401, 404, 422, 503),
)
def account_bills(ctx, account_number):
    """Manage Bills: the account's outstanding (or all) bills and the total due."""
    number = ctx.require_account(account_number)
    status = ctx.query["status"]
    # The hottest read: keep its JSON text too, so a hit costs no serialization.
    body = ctx.runtime.cache.get(
        f"a:{number}",
        ("bills.json", status),
        lambda: json.dumps(ctx.account_bills(number, status)).encode(),
    )
    return Response(body, content_type="application/json")


@route(
    "GET",
    "/api/v1/accounts/{account_number}/summary",
    tag="utility billing",
    errors=(401, 404, 503),
)
def account_summary(ctx, account_number):
    """Account Summary: amount due now, due date, payments, and the account's registry data."""
    number = ctx.require_account(account_number)
    cache = ctx.runtime.cache
    summary = cache.get(
        f"a:{number}", "summary", lambda: ctx.services.billing.account_summary(number)
    )
    details = cache.get(
        f"a:{number}", "details", lambda: ctx.services.accounts.account_details(number, ctx.user_id)
    )
    return {**summary, "account": details}


@route(
    "GET",
    "/api/v1/accounts/{account_number}/consumption",
    query=s.ConsumptionQuery,
    tag="utility billing",
    errors=(401, 404, 422, 503),
)
def consumption(ctx, account_number):
    """Billed consumption history per service, for the chart."""
    number = ctx.require_account(account_number)
    code = ctx.query.get("service_code")
    return ctx.runtime.cache.get(
        f"a:{number}", ("consumption", code), lambda: ctx.services.billing.consumption(number, code)
    )


@route("GET", "/api/v1/accounts/{account_number}", tag="utility billing", errors=(401, 404, 503))
def account_details(ctx, account_number):
    """Customer information, service address, mailing address and services of the account."""
    number = ctx.require_account(account_number)
    return ctx.services.accounts.account_details(number, ctx.user_id)


@route(
    "GET",
    "/api/v1/accounts/{account_number}/preferences",
    tag="utility billing",
    errors=(401, 404, 503),
)
def get_preferences(ctx, account_number):
    """Paperless bills and email notices for the account."""
    number = ctx.require_account(account_number)
    return ctx.services.accounts.get_preferences(number, ctx.user_id)


@route(
    "PUT",
    "/api/v1/accounts/{account_number}/preferences",
    body=s.PreferencesRequest,
    tag="utility billing",
    errors=(401, 403, 404, 422, 503),
)
def set_preferences(ctx, account_number):
    """Choose paperless or printed bills, and email notices."""
    number = ctx.require_account(account_number)
    return ctx.services.accounts.set_preferences(
        ctx.user_id, number, ctx.body["paperless"], ctx.body["email_notices"]
    )


@route(
    "GET",
    "/api/v1/accounts/{account_number}/address-changes",
    tag="utility billing",
    errors=(401, 404, 503),
)
def address_changes(ctx, account_number):
    """The change-of-address requests of the account's customer, newest first."""
    number = ctx.require_account(account_number)
    return {"requests": ctx.services.accounts.address_requests(number, ctx.user_id)}


@route(
    "POST",
    "/api/v1/accounts/{account_number}/address-changes",
    body=s.AddressChangeRequest,
    status=201,
    tag="utility billing",
    errors=(401, 403, 404, 409, 422, 503),
)
def request_address_change(ctx, account_number):
    """Ask the city to change the mailing address from an effective date."""
    number = ctx.require_account(account_number)
    payload = {k: v for k, v in ctx.body.items() if v is not None}
    return 201, ctx.services.accounts.request_address_change(ctx.user_id, number, payload)


@route(
    "DELETE",
    "/api/v1/address-changes/{request_id}",
    tag="utility billing",
    errors=(401, 403, 404, 409),
)
def cancel_address_change(ctx, request_id):
    """Withdraw a change-of-address request the city has not decided yet."""
    return ctx.services.accounts.cancel_address_request(ctx.user_id, request_id)


@route(
    "GET",
    "/api/v1/accounts/{account_number}/autopay",
    tag="utility billing",
    errors=(401, 404, 503),
)
def autopay(ctx, account_number):
    """Automatic payments: the card, scheduled charges and the last failure."""
    number = ctx.require_account(account_number)
    return ctx.services.payments.autopay(number)


@route(
    "POST",
    "/api/v1/accounts/{account_number}/autopay/card-setups",
    status=201,
    tag="utility billing",
    errors=(401, 403, 404, 503),
)
def autopay_card_setup(ctx, account_number):
    """The processor's page to save a card; it returns to the autopay page with a card token."""
    number = ctx.require_account(account_number)
    return_url = f"{ctx.settings.public_url}/accounts/{number}/autopay"
    return 201, ctx.services.payments.start_card_setup(ctx.owner(), number, return_url)


@route(
    "PUT",
    "/api/v1/accounts/{account_number}/autopay",
    body=s.AutopayRequest,
    tag="utility billing",
    errors=(401, 403, 404, 422, 503),
)
def enroll_autopay(ctx, account_number):
    """Turn automatic payments on (or change the card) with a saved card's token."""
    number = ctx.require_account(account_number)
    return ctx.services.payments.enroll_autopay(
        ctx.user_id, number, ctx.body["card_token"], None, ctx.body["days_before"]
    )


@route(
    "DELETE",
    "/api/v1/accounts/{account_number}/autopay",
    tag="utility billing",
    errors=(401, 403, 404, 409, 503),
)
def cancel_autopay(ctx, account_number):
    """Turn automatic payments off; scheduled charges are cancelled."""
    number = ctx.require_account(account_number)
    return ctx.services.payments.cancel_autopay(ctx.user_id, number)
