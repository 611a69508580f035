"""Linked accounts, the utility and general-billing searches and their remembered values."""

from __future__ import annotations

from services.gateway import schemas as s
from services.gateway.routing import route


def _user_changed(ctx) -> None:
    ctx.runtime.users.invalidate(f"u:{ctx.user_id}")


@route("GET", "/api/v1/me/links", response=s.LinksSchema, tag="accounts", errors=(401,))
def list_links(ctx):
    """The user's linked utility accounts and general-billing customers."""
    return {"links": ctx.services.accounts.list_links(ctx.user_id)}


@route(
    "POST",
    "/api/v1/me/links",
    body=s.LinkRequest,
    response=s.LinkSchema,
    status=201,
    throttle="linking",
    tag="accounts",
    errors=(401, 403, 422, 429),
)
def create_link(ctx):
    """Link a utility account (account number + customer ID) or a general-billing customer."""
    payload = {k: v for k, v in ctx.body.items() if v is not None}
    link = ctx.services.accounts.link_account(ctx.user_id, payload)
    _user_changed(ctx)
    return 201, link


@route("DELETE", "/api/v1/me/links/{link_id}", status=204, tag="accounts", errors=(401, 403, 404))
def remove_link(ctx, link_id):
    """Remove one of the user's links."""
    ctx.services.accounts.unlink(ctx.user_id, link_id)
    _user_changed(ctx)
    return 204, None


@route(
    "POST",
    "/api/v1/utility/searches",
    body=s.UtilitySearchRequest,
    throttle="linking",
    tag="accounts",
    errors=(401, 403, 422, 429),
)
def utility_search(ctx):
    """Search by account number + customer ID; a match links the account."""
    body = ctx.body
    result = ctx.services.accounts.search_utility(
        ctx.user_id, body["account_number"], body["customer_id"], body["remember"]
    )
    _user_changed(ctx)
    return result


@route(
    "POST",
    "/api/v1/general/searches",
    body=s.InvoiceSearchRequest,
    throttle="linking",
    tag="general billing",
    errors=(401, 403, 422, 429),
)
def invoice_search(ctx):
    """General billing: find an invoice by customer ID + bill number; a match links the customer."""
    body = ctx.body
    found = ctx.services.billing.find_invoice(body["customer_id"], body["bill_number"])
    link = ctx.services.accounts.link_verified(
        ctx.user_id, "customer", found["customer_id"], "invoice"
    )
    if body["remember"]:
        ctx.services.accounts.remember_values(
            ctx.user_id,
            "general",
            {"customer_id": found["customer_id"], "bill_number": found["bill_number"]},
        )
    else:
        ctx.services.accounts.forget_values(ctx.user_id, "general")
    _user_changed(ctx)
    return {**found, "link": link}


@route("GET", "/api/v1/me/remembered-values/{module}", tag="accounts", errors=(401, 404))
def remembered_values(ctx, module):
    """The search values the user asked to remember for `utility` or `general`, or null."""
    return ctx.services.accounts.remembered_values(ctx.user_id, _module(module))


@route(
    "DELETE",
    "/api/v1/me/remembered-values/{module}",
    status=204,
    tag="accounts",
    errors=(401, 403, 404),
)
def forget_values(ctx, module):
    """Forget the remembered search values of a module."""
    ctx.services.accounts.forget_values(ctx.user_id, _module(module))
    return 204, None


def _module(module: str) -> str:
    from services.gateway.problems import Problem

    if module not in ("utility", "general"):
        raise Problem(
            404,
            "Remembered values exist for 'utility' and 'general' only.",
            code="module_not_found",
        )
    return module
