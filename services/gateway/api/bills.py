"""One bill (details and PDF), and general billing's customers and invoices."""

from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from services.gateway import schemas as s
from services.gateway.context import normalize
from services.gateway.problems import Problem
from services.gateway.routing import route


def check_bill_access(ctx, bill_number: str) -> dict:
    """The bill's brief, if this user (or quick-pay guest) may see it; else 404."""
    brief = ctx.services.billing.bill_brief(bill_number)
    account = brief.get("account_number")
    if account and account in ctx.guest_accounts():
        return brief
    if ctx.auth is None:
        raise Problem(401, "Sign in to continue.", code="not_signed_in")
    access = ctx.accessible()
    if account and account in access.get("accounts", []):
        return brief
    if not account and brief.get("customer_id") in access.get("customers", []):
        return brief
    raise Problem(
        404, f"No bill {normalize(bill_number)} is linked to your user ID.", code="bill_not_linked"
    )


@route("GET", "/api/v1/bills/{bill_number}", auth="cart", tag="bills", errors=(401, 404, 503))
def bill(ctx, bill_number):
    """Bill details: every field of the bill as issued, with its balance now."""
    check_bill_access(ctx, bill_number)
    return ctx.services.billing.bill(bill_number)


@route(
    "GET",
    "/api/v1/bills/{bill_number}/pdf",
    auth="cart",
    tag="bills",
    errors=(401, 404, 503),
    content_type="application/pdf",
)
def bill_pdf(ctx, bill_number):
    """A PDF copy of the bill."""
    check_bill_access(ctx, bill_number)
    pdf = ctx.services.billing.bill_pdf(bill_number)
    filename = "".join(c for c in pdf.get("filename", "bill.pdf") if c.isalnum() or c in "-_.")
    return Response(
        base64.b64decode(pdf["content_base64"]),
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename or "bill.pdf"}"'},
    )


@route("GET", "/api/v1/customers/{customer_id}", tag="general billing", errors=(401, 404, 503))
def customer(ctx, customer_id):
    """Customer Information: name, mailing address and customer ID."""
    number = normalize(customer_id)
    return ctx.services.accounts.customer_info(number, ctx.user_id)


@route(
    "GET",
    "/api/v1/customers/{customer_id}/invoices",
    query=s.BillsQuery,
    tag="general billing",
    errors=(401, 404, 422, 503),
)
def customer_invoices(ctx, customer_id):
    """General billing's Manage Bills: the customer's invoices and totals."""
    number = ctx.require_customer(customer_id)
    status = ctx.query["status"]
    return ctx.runtime.cache.get(
        f"c:{number}",
        ("invoices", status),
        lambda: ctx.services.billing.customer_invoices(number, status),
    )
