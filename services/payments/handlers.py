"""Command handlers of the payments service: load aggregates, call the domain, save.

The processor is called between units of work, never inside one: a transaction
never waits on the network, and every call carries an idempotency key, so a retry
after a crash cannot charge or refund twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import urllib.parse
from decimal import Decimal
from typing import Any

from services.payments.domain.autopay import Autopay, card_expiry_date
from services.payments.domain.cart import Cart
from services.payments.domain.errors import (
    AlreadySettledError,
    BillInCheckoutError,
    BillNotFoundError,
    CardTokenError,
    CheckoutClosedError,
    CheckoutNotFoundError,
    EmptyCartError,
    NothingDueError,
    PaymentNotFoundError,
    PaymentProcessingError,
    ProcessorUnavailableError,
)
from services.payments.domain.guards import BillHold, CheckoutKey
from services.payments.domain.money import money, parse_amount
from services.payments.domain.payment import (
    APPLIED,
    NEEDS_POLL,
    Payment,
    ProcessorUpdate,
)
from services.payments.processors.base import PaymentSnapshot, Processor
from services.payments.settings import Settings
from services.payments.views import (
    bill_view,
    bill_views,
    checkout_by_id,
    find_payment,
    items_of,
    payment_row,
)
from shared.errors import ConcurrencyError, InvalidInput, MuniportalError
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

OWNER = re.compile(r"^(user|guest):[A-Za-z0-9._@+\-]{1,120}$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_owner(owner: Any) -> str:
    if not isinstance(owner, str) or not OWNER.match(owner):
        raise InvalidInput(
            "owner: must be user:<id> or guest:<id>",
            {"owner": "must be user:<id> or guest:<id>"},
            code="bad_owner",
        )
    return owner


def user_of(owner: str) -> str | None:
    return owner.split(":", 1)[1] if owner.startswith("user:") else None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


# -- cart ---------------------------------------------------------------------------------


def add_to_cart(
    store: Any, settings: Settings, *, owner: str, bill_number: str, amount: Any = None
) -> None:
    """Put a bill in the owner's cart (once), paying its balance or a chosen amount."""
    fixed = None if amount in (None, "") else parse_amount("amount", amount)

    def work(uow: UnitOfWork) -> None:
        bill = bill_view(uow.conn, bill_number)
        if bill is None:
            raise BillNotFoundError(bill_number)
        if fixed is not None:
            settings.amount_rules.check("amount", fixed, bill.payable_balance)
        elif bill.payable_balance <= 0:
            raise NothingDueError("bill_number")
        uow.load(Cart, owner).add(bill_number, fixed)

    store.run(work)


def remove_from_cart(store: Any, *, owner: str, bill_number: str) -> None:
    store.run(lambda uow: uow.load(Cart, owner).remove(bill_number))


# -- checkout -----------------------------------------------------------------------------


def _allocations(uow: UnitOfWork, cart: Cart, settings: Settings) -> list[dict[str, Any]]:
    views = bill_views(uow.conn, list(cart.items))
    allocations, errors = [], {}
    for bill_number, fixed in cart.items.items():
        field = f"items.{bill_number}.amount"
        bill = views.get(bill_number)
        if bill is None:
            errors[f"items.{bill_number}"] = "this bill is no longer known"
            continue
        balance = bill.payable_balance
        try:
            amount = settings.amount_rules.check(
                field, fixed if fixed is not None else balance, balance
            )
        except InvalidInput as exc:
            errors.update(exc.errors)
            continue
        allocations.append(
            {
                "bill_number": bill_number,
                "account_number": bill.account_number or None,
                "customer_id": bill.customer_id,
                "amount": amount,
            }
        )
    if errors:
        raise InvalidInput(
            "Some bills in the cart cannot be paid as they are: "
            + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            errors,
            code="cart_invalid",
        )
    return allocations


def start_checkout(
    store: Any,
    processor: Processor,
    settings: Settings,
    *,
    owner: str,
    idempotency_key: str,
    billing: dict[str, Any],
    return_url: str,
) -> str:
    """Open a payment session for the cart; the same Idempotency-Key gives the same one."""
    key_id = CheckoutKey.key_id(owner, idempotency_key)
    now = utcnow()

    def open_session(uow: UnitOfWork) -> str:
        key = uow.load(CheckoutKey, key_id)
        if key.payment_id is not None:
            return key.payment_id  # a double submit or the back button
        cart = uow.load(Cart, owner)
        if not cart.items:
            raise EmptyCartError()
        allocations = _allocations(uow, cart, settings)
        payment_id, checkout_id = new_id("pay"), new_id("chk")
        expires_at = now + dt.timedelta(seconds=settings.checkout_ttl_seconds)
        for alloc in allocations:
            hold = uow.load(BillHold, alloc["bill_number"])
            try:
                hold.take(payment_id, owner, "web", expires_at, checkout_id)
            except BillInCheckoutError:
                # Each statement sees the latest commits: a double submit may have claimed
                # this key after we read it. If so, start over and return that session.
                if uow.store.events.stream_version(key.stream_id, conn=uow.conn) != key.version:
                    raise ConcurrencyError("the checkout key was claimed meanwhile") from None
                raise
        subtotal = sum((a["amount"] for a in allocations), Decimal("0"))
        payment = uow.add(Payment(payment_id))
        payment.create(
            checkout_id=checkout_id,
            kind="web",
            owner=owner,
            user_id=user_of(owner),
            email=billing["email"],
            billing=billing,
            allocations=allocations,
            convenience_fee=settings.fee.fee(subtotal),
            expires_at=expires_at,
            return_url=return_url,
            processor=processor.name or "sandbox",
        )
        key.claim(owner, payment_id)
        return payment_id

    payment_id = store.run(open_session)
    _ensure_hosted_session(store, processor, settings, payment_id)
    return payment_id


def _ensure_hosted_session(
    store: Any, processor: Processor, settings: Settings, payment_id: str
) -> None:
    with store.read() as conn:
        row = payment_row(conn, payment_id)
    if row is None or row["session_id"] or row["status"] != "created":
        return
    bills = ", ".join(f"bill {a['bill_number']}" for a in _item_list(store, payment_id))
    try:
        session = processor.create_session(
            reference=payment_id,
            amount=money(row["amount_total"]),
            description=f"{settings.city_name}: {bills}"[:200],
            customer=row["billing"] or {"email": row["email"]},
            # The resident comes back to the portal with the checkout it was for.
            return_url=with_query(row["return_url"], checkout_id=row["checkout_id"]),
            expires_at=row["expires_at"].replace(tzinfo=dt.UTC)
            if row["expires_at"].tzinfo is None
            else row["expires_at"],
            idempotency_key=payment_id,
        )
    except MuniportalError as exc:
        # Free the bills at once; the resident may simply try again.
        reason = (
            "The card processor did not answer."
            if isinstance(exc, ProcessorUnavailableError)
            else "The card processor refused to open the payment page."
        )
        store.run(lambda uow: _close_payment(uow, payment_id, reason, "system"))
        raise
    if session is None:  # a replay's stand-in processor
        return
    store.run(
        lambda uow: uow.get(Payment, payment_id).session_created(session.session_id, session.url)
    )


def with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _item_list(store: Any, payment_id: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        return items_of(conn, payment_id)


def _close_payment(uow: UnitOfWork, payment_id: str, reason: str, by: str | None) -> None:
    payment = uow.get(Payment, payment_id)
    was_open = payment.is_open
    if payment.status == "created":
        payment.cancel(reason, by)
    after_transition(uow, payment, was_open)


def checkout_for(store: Any, owner: str, checkout_id: str) -> Any:
    with store.read() as conn:
        row = checkout_by_id(conn, checkout_id)
    if row is None or row["owner"] != owner:
        raise CheckoutNotFoundError(checkout_id)
    return row


def cancel_checkout(store: Any, processor: Processor, *, owner: str, checkout_id: str) -> None:
    """The resident gives up on a checkout: the page closes and the bills are free again."""
    row = checkout_for(store, owner, checkout_id)
    if row["status"] == "canceled":
        return
    if row["status"] == "pending":
        raise PaymentProcessingError(row["payment_id"])
    if row["status"] != "created":
        raise CheckoutClosedError(checkout_id, row["status"])
    _cancel_open_payment(store, processor, row, "You canceled this checkout.", owner)


def _cancel_open_payment(store: Any, processor: Processor, row: Any, reason: str, by: str) -> None:
    payment_id = row["payment_id"]
    if row["session_id"]:
        try:
            snapshot = processor.cancel_session(row["session_id"])
        except ProcessorUnavailableError:
            # We close our side anyway; a payment that still completes is refunded as late.
            log.warning("could not cancel session %s at the processor", row["session_id"])
            snapshot = None
        if snapshot is not None and snapshot.status in ("processing", "succeeded", "failed"):
            apply_snapshot(store, payment_id, snapshot)
            with store.read() as conn:
                current = payment_row(conn, payment_id)
            if current["status"] == "pending":
                raise PaymentProcessingError(payment_id)
            if current["status"] != "created":
                raise CheckoutClosedError(row["checkout_id"] or payment_id, current["status"])
    store.run(lambda uow: _close_payment(uow, payment_id, reason, by))


# -- what follows every payment transition ------------------------------------------------


def after_transition(uow: UnitOfWork, payment: Payment, was_open: bool) -> None:
    """When a payment closes: free its bills, take paid bills out of the cart, tell autopay."""
    if not was_open or payment.is_open:
        return
    for bill_number in payment.bill_numbers:
        uow.load(BillHold, bill_number).release(payment.id)
    if payment.is_paid and payment.kind == "web":
        cart = uow.load(Cart, payment.owner)
        for bill_number in payment.bill_numbers:
            cart.paid(bill_number)
    if payment.kind == "autopay" and payment.allocations:
        alloc = payment.allocations[0]
        plan = uow.load(Autopay, alloc["account_number"])
        if payment.is_paid:
            plan.charge_succeeded(alloc["bill_number"], payment.id)
        elif payment.status == "canceled":
            plan.skip(alloc["bill_number"], "Automatic payments were cancelled before the charge.")
        else:
            reason = payment.failure_reason or "The automatic payment did not go through."
            plan.charge_failed(alloc["bill_number"], payment.id, reason)


def apply_updates(
    uow: UnitOfWork, payment_id: str, updates: list[ProcessorUpdate], now: dt.datetime
) -> list[str]:
    payment = uow.get(Payment, payment_id)
    was_open = payment.is_open
    results = [payment.apply_update(u, now) for u in updates]
    after_transition(uow, payment, was_open)
    return results


def apply_snapshot(store: Any, payment_id: str, snapshot: PaymentSnapshot) -> list[str]:
    now = utcnow()
    return store.run(lambda uow: apply_updates(uow, payment_id, snapshot.updates(now), now))


def poll(processor: Processor, row: Any) -> PaymentSnapshot | None:
    """Ask the processor where a payment stands (Kill Bill's janitor does the same)."""
    if row["session_id"]:
        return processor.session_status(row["session_id"])
    if row["processor_payment_id"]:
        return processor.payment_status(row["processor_payment_id"])
    return None


# -- webhooks -----------------------------------------------------------------------------


def handle_webhook(
    store: Any, processor: Processor, *, body: str, signature_header: str | None
) -> dict[str, Any]:
    """Apply one processor webhook exactly once; a forged or stale one changes nothing."""
    now = utcnow()
    event = processor.parse_webhook(body, signature_header, int(now.timestamp()))
    if event.update is None and event.refund_failed is None:
        return {"status": "ignored", "event_id": event.event_id}
    with store.read() as conn:
        row = payment_row(conn, event.reference) if event.reference else None
    if row is None:
        log.warning("webhook %s (%s) is for no payment of ours", event.event_id, event.type)
        return {"status": "unknown_payment", "event_id": event.event_id}
    payment_id = row["payment_id"]

    def work(uow: UnitOfWork) -> str:
        if event.refund_failed is not None:
            payment = uow.get(Payment, payment_id)
            payment.refund_failed(
                event.refund_failed.get("request_id") or "",
                event.refund_failed.get("reason") or "refused by the processor",
            )
            return APPLIED
        return apply_updates(uow, payment_id, [event.update], now)[0]

    result = store.run(work)
    if result == NEEDS_POLL:
        # Money came back before we heard it went out: settle the truth first.
        snapshot = poll(processor, row)
        if snapshot is not None:
            updates = snapshot.updates(now) + [event.update]
            result = store.run(lambda uow: apply_updates(uow, payment_id, updates, now))[-1]
    return {"status": result, "event_id": event.event_id}


# -- refunds and voids (staff) ------------------------------------------------------------


def resolve_payment(store: Any, ref: str) -> Any:
    with store.read() as conn:
        row = find_payment(conn, ref)
    if row is None:
        raise PaymentNotFoundError(ref)
    return row


def execute_refund(
    store: Any, processor: Processor, payment_id: str, request_id: str
) -> str | None:
    """Send one requested refund (or void) to the processor and record its answer.

    Returns None when the processor could not be reached (the janitor tries again)."""
    with store.read() as conn:
        row = payment_row(conn, payment_id)
    if row is None or not row["processor_payment_id"]:
        return None

    def requested(uow: UnitOfWork) -> dict[str, Any] | None:
        request = uow.get(Payment, payment_id).refund_requests.get(request_id)
        return dict(request) if request and request["status"] == "requested" else None

    request = store.run(requested)
    if request is None:
        return "done"
    try:
        if request["void"]:
            result = processor.void(
                processor_payment_id=row["processor_payment_id"],
                reference=request_id,
                idempotency_key=request_id,
            )
        else:
            result = processor.refund(
                processor_payment_id=row["processor_payment_id"],
                amount=request["amount"],
                reason=request["reason"],
                reference=request_id,
                idempotency_key=request_id,
            )
    except ProcessorUnavailableError:
        return None
    except MuniportalError as exc:
        detail = exc.detail
        store.run(lambda uow: uow.get(Payment, payment_id).refund_failed(request_id, detail))
        if isinstance(exc, AlreadySettledError):
            raise
        return "failed"
    if result is None:  # a replay's stand-in processor
        return None
    update = ProcessorUpdate(
        event_id=f"refund:{result.refund_id}",
        kind="refund",
        occurred_at=result.created_at,
        amount=result.amount,
        transaction_id=result.refund_id,
        reference=request_id,
    )
    now = utcnow()
    store.run(lambda uow: apply_updates(uow, payment_id, [update], now))
    return "done"


def refund_payment(
    store: Any,
    processor: Processor,
    *,
    ref: str,
    amount: Any,
    reason: str,
    by: str | None,
    void: bool = False,
) -> str:
    """Give money back on a succeeded payment (all of it by default); returns the payment id."""
    row = resolve_payment(store, ref)
    payment_id = row["payment_id"]
    value = None if amount in (None, "") else parse_amount("amount", amount)
    if void:
        snapshot = poll(processor, row)
        if snapshot is not None and snapshot.settled:
            raise AlreadySettledError(payment_id)

    def request(uow: UnitOfWork) -> str:
        payment = uow.get(Payment, payment_id)
        request_id = f"{payment_id}-r{len(payment.refund_requests) + 1}"
        payment.request_refund(request_id, value, reason, by, void=void)
        return request_id

    request_id = store.run(request)
    execute_refund(store, processor, payment_id, request_id)
    return payment_id


def void_payment(store: Any, processor: Processor, *, ref: str, reason: str, by: str) -> str:
    """Stop a payment: close an open one, or void a paid one the processor has not settled."""
    row = resolve_payment(store, ref)
    if row["status"] == "created":
        _cancel_open_payment(store, processor, row, reason or "Voided by city staff.", by)
        return row["payment_id"]
    if row["status"] == "pending":
        raise PaymentProcessingError(row["payment_id"])
    return refund_payment(
        store,
        processor,
        ref=row["payment_id"],
        amount=None,
        reason=reason or "void",
        by=by,
        void=True,
    )


# -- automatic payments -------------------------------------------------------------------


def schedule_autopay_for_bill(uow: UnitOfWork, data: dict[str, Any], today: dt.date) -> None:
    """A new bill: if its account pays automatically, plan the charge and give notice."""
    account = data.get("account_number")
    if not account or not data.get("due_date"):
        return
    plan = uow.find(Autopay, str(account))
    if plan is None or not plan.active:
        return
    balance = Decimal(str(data.get("balance_due", data.get("total", "0"))))
    plan.schedule(str(data["bill_number"]), dt.date.fromisoformat(data["due_date"]), balance, today)


def enroll_autopay(
    store: Any,
    processor: Processor,
    settings: Settings,
    *,
    user_id: str,
    account_number: str,
    card_token: str,
    email: str,
    days_before: int | None,
) -> None:
    """Enrol an account with a card saved at the processor; re-enrolling changes it at once."""
    card = processor.card(card_token)
    if card is None:  # a replay's stand-in processor
        return
    if card_expiry_date(card.expires) < utcnow().date():
        raise CardTokenError("the card has expired", code="card_expired")
    info = {"token": card.token, "brand": card.brand, "last4": card.last4, "expires": card.expires}
    days = settings.autopay_days_before if days_before is None else days_before
    store.run(lambda uow: uow.load(Autopay, account_number).enroll(user_id, email, info, days))


def cancel_autopay(store: Any, *, user_id: str, account_number: str) -> None:
    store.run(lambda uow: uow.load(Autopay, account_number).cancel(user_id))
