"""My Cart, checkout, quick pay, payment history and the processor's webhooks."""

from __future__ import annotations

import re

from services.gateway import schemas as s
from services.gateway import security
from services.gateway.api.bills import check_bill_access
from services.gateway.problems import Problem
from services.gateway.routing import route

EMPTY_CART = {
    "items": [],
    "count": 0,
    "subtotal": "0.00",
    "convenience_fee": "0.00",
    "total": "0.00",
}
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,200}$")


def _scopes_of_cart(ctx, cart: dict) -> set[str]:
    scopes = {f"a:{i['account_number']}" for i in cart.get("items", []) if i.get("account_number")}
    bills = [i["bill_number"] for i in cart.get("items", [])]
    return scopes | ctx.runtime.cache.scopes_of_bills(bills)


@route("GET", "/api/v1/cart", auth="cart", response=s.CartSchema, tag="cart")
def get_cart(ctx):
    """My Cart: items, count, subtotal, convenience fee and total (empty for a new visitor)."""
    owner = ctx.owner(required=False)
    if owner is None:
        return {**EMPTY_CART, "owner": None}
    return ctx.services.payments.get_cart(owner)


@route(
    "POST",
    "/api/v1/cart/items",
    auth="cart",
    body=s.CartItemRequest,
    response=s.CartSchema,
    status=201,
    tag="cart",
    errors=(401, 403, 404, 409, 422, 503),
)
def add_to_cart(ctx):
    """Add a bill to the cart (or change its amount); no amount means the balance due."""
    owner = ctx.owner()
    check_bill_access(ctx, ctx.body["bill_number"])
    return 201, ctx.services.payments.add_to_cart(
        owner, ctx.body["bill_number"], ctx.body["amount"]
    )


@route(
    "DELETE",
    "/api/v1/cart/items/{bill_number}",
    auth="cart",
    response=s.CartSchema,
    tag="cart",
    errors=(401, 403, 404, 422),
)
def remove_from_cart(ctx, bill_number):
    """Take a bill out of the cart."""
    return ctx.services.payments.remove_from_cart(ctx.owner(), bill_number)


@route(
    "POST",
    "/api/v1/checkouts",
    auth="cart",
    body=s.CheckoutRequest,
    response=s.CheckoutSchema,
    status=201,
    tag="cart",
    headers=(
        ("Idempotency-Key", True, "8-200 characters; the same key returns the same checkout"),
    ),
    errors=(401, 403, 409, 422, 503),
)
def start_checkout(ctx):
    """Open the 10-minute payment session for the whole cart; returns the processor's page."""
    owner = ctx.owner()
    key = ctx.request.headers.get("Idempotency-Key", "")
    if not _IDEMPOTENCY_KEY.match(key):
        raise Problem(
            422,
            "Send an Idempotency-Key header of 8 to 200 letters, digits or ._:-",
            code="invalid",
            errors={"Idempotency-Key": "required: 8-200 characters of A-Z a-z 0-9 . _ : -"},
        )
    cart = ctx.services.payments.get_cart(owner)
    return_url = f"{ctx.settings.public_url}/checkout/return"
    billing = {k: v for k, v in ctx.body["billing"].items() if v is not None}
    checkout = ctx.services.payments.start_checkout(owner, key, billing, return_url)
    ctx.runtime.cache.mark_dirty(*_scopes_of_cart(ctx, cart))
    return 201, checkout


@route(
    "GET",
    "/api/v1/checkouts/{checkout_id}",
    auth="cart",
    response=s.CheckoutSchema,
    tag="cart",
    errors=(401, 404),
)
def get_checkout(ctx, checkout_id):
    """A checkout's status (open, pending, paid, failed, expired, canceled) and receipt."""
    return ctx.services.payments.get_checkout(ctx.owner(), checkout_id)


@route(
    "POST",
    "/api/v1/checkouts/{checkout_id}/cancel",
    auth="cart",
    response=s.CheckoutSchema,
    tag="cart",
    errors=(401, 403, 404, 409),
)
def cancel_checkout(ctx, checkout_id):
    """Give up an open checkout: the processor's page closes and the bills are free again."""
    checkout = ctx.services.payments.cancel_checkout(ctx.owner(), checkout_id)
    bills = [i.get("bill_number") for i in checkout.get("items", [])]
    ctx.runtime.cache.mark_dirty(*ctx.runtime.cache.scopes_of_bills(bills))
    return checkout


@route(
    "POST",
    "/api/v1/quick-pay/lookups",
    auth="cart",
    body=s.QuickPayRequest,
    response=s.QuickPaySchema,
    throttle="quickpay",
    tag="cart",
    errors=(403, 422, 429, 503),
)
def quick_pay_lookup(ctx):
    """Quick pay: find an account by account number + customer ID, without signing in."""
    body = ctx.body
    checked = ctx.services.accounts.check_utility_values(
        body["account_number"], body["customer_id"], f"ip:{ctx.client_ip}"
    )
    number = checked["account_number"]
    guest = security.with_account(ctx.guest or security.new_guest(), number)
    token = ctx.set_guest(guest)
    bills = ctx.account_bills(number, "outstanding")
    return {
        "account_number": number,
        "customer_id": checked["customer_id"],
        "bills": bills["bills"],
        "total_due": bills["total_due"],
        "guest_token": token,
        "csrf_token": security.csrf_token(ctx.settings.secret, token),
    }


@route("GET", "/api/v1/me/payments", tag="cart", errors=(401, 503))
def payment_history(ctx):
    """The user's payments, newest first, with confirmation numbers and items."""
    return {"payments": ctx.services.payments.payment_history(ctx.user_id)}


@route(
    "POST",
    "/api/v1/webhooks/processor",
    auth="none",
    raw_body=True,
    tag="webhooks",
    headers=(("Processor-Signature", True, "t=<unix time>,v1=<hex HMAC-SHA256>"),),
    errors=(400, 413, 503),
)
def processor_webhook(ctx):
    """The card processor's signed event; 400 for a bad signature, 5xx so it retries."""
    from shared.errors import MuniportalError

    try:
        result = ctx.services.payments.handle_webhook(
            ctx.body, ctx.request.headers.get("Processor-Signature")
        )
    except MuniportalError as exc:
        if exc.kind == "invalid":
            raise Problem(400, exc.detail, code=exc.code, errors=exc.errors) from None
        raise
    return result
