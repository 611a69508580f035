"""Handlers of the billing service: load aggregates, call the domain, save.

Payments' events arrive through the consumers in service.py; each handler runs
inside the unit of work that also claims the event in the inbox, so a
redelivered event changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.domain.bill import Bill
from services.billing.domain.payment import (
    OpenBill,
    Payment,
    PaymentNotReversible,
    Requested,
    allocate,
)
from services.billing.domain.values import ZERO, normalize_number, parse_money
from services.billing.schedule import Schedule
from shared.events import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


def _open_bill(bill: Bill) -> OpenBill:
    assert bill.due_date is not None  # noqa: S101 - an issued bill has a due date
    return OpenBill(bill.id, bill.account_number, bill.customer_id, bill.balance, bill.due_date)


def _paid_at(value: Any, fallback: dt.datetime) -> dt.datetime:
    if not value:
        return fallback
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def apply_payment(uow: UnitOfWork, event: Envelope, schedule: Schedule) -> dict[str, Any]:
    """Apply a succeeded payment to the chosen bills (or the account's oldest first)."""
    d = event.data
    payment = uow.load(Payment, str(d["payment_id"]))
    if payment.applied:
        return {"payment_id": payment.id, "already_applied": True}
    requested = [
        Requested(
            normalize_number(item.get("bill_number")) or None,
            normalize_number(item.get("account_number")) or None,
            parse_money(item["amount"]),
        )
        for item in d.get("allocations") or []
    ]
    if not requested and d.get("account_number"):
        amount = parse_money(d["amount_total"]) - parse_money(d.get("convenience_fee") or "0")
        requested = [Requested(None, normalize_number(d["account_number"]), amount)]
    bills: dict[str, OpenBill] = {}
    for r in requested:
        if r.bill_number and r.bill_number not in bills:
            bill = uow.find(Bill, r.bill_number)
            if bill is not None:
                bills[bill.id] = _open_bill(bill)
    accounts = {b.account_number for b in bills.values() if b.account_number}
    accounts |= {r.account_number for r in requested if r.account_number and not r.bill_number}
    accounts |= {
        r.account_number for r in requested if r.account_number and r.bill_number not in bills
    }
    others: dict[str, list[OpenBill]] = {}
    if accounts:
        b = p.bills
        rows = uow.conn.execute(
            sa.select(b.c.bill_number).where(
                b.c.account_number.in_(sorted(accounts)), b.c.balance_due > 0
            )
        )
        for (number,) in rows:
            bill = uow.get(Bill, number)
            if bill.balance > 0:
                others.setdefault(bill.account_number or "", []).append(_open_bill(bill))
                bills.setdefault(bill.id, _open_bill(bill))
    placed, unapplied = allocate(requested, bills, others)
    posted_on = schedule.today()
    payment.record_applied(
        placed=placed,
        bills=bills,
        unapplied=unapplied,
        checkout_id=d.get("checkout_id"),
        confirmation_number=d.get("confirmation_number"),
        paid_at=_paid_at(d.get("paid_at"), event.occurred_at),
        posted_on=posted_on,
    )
    for number, amount in placed.items():
        uow.get(Bill, number).apply_payment(amount, payment_id=payment.id, posted_on=posted_on)
    if unapplied > 0:
        log.warning("payment %s: %s could not be placed on any bill", payment.id, unapplied)
    for deferred in list(payment.deferred):
        amount = Decimal(deferred["amount"]) if deferred.get("amount") is not None else None
        _reverse(
            uow,
            payment,
            reversal_id=deferred["reversal_id"],
            kind=deferred["kind"],
            amount=amount,
            allocations=deferred.get("allocations") or [],
            reason=deferred.get("reason"),
            posted_on=posted_on,
        )
    return {"payment_id": payment.id, "placed": placed, "unapplied": unapplied}


def reverse_payment(
    uow: UnitOfWork, event: Envelope, kind: str, schedule: Schedule
) -> dict[str, Any]:
    """Reopen what a refund, return or chargeback took back, and say which it was."""
    d = event.data
    payment = uow.load(Payment, str(d["payment_id"]))
    allocations = [
        {
            "bill_number": normalize_number(item.get("bill_number")),
            "amount": str(parse_money(item["amount"])),
        }
        for item in d.get("allocations") or []
        if item.get("bill_number")
    ]
    amount = None  # with allocations, they say what each bill gives back
    if not allocations and d.get("amount") not in (None, ""):
        # payments' amount includes the convenience fee it gives back, never on a bill
        amount = parse_money(d["amount"]) - parse_money(d.get("convenience_fee") or "0")
    reason = d.get("reason")
    if not payment.applied:
        # Delivery order is not guaranteed: keep it until the payment itself arrives.
        payment.defer_reversal(
            reversal_id=event.event_id,
            kind=kind,
            amount=amount,
            allocations=allocations,
            reason=reason,
        )
        return {"payment_id": payment.id, "deferred": True}
    return _reverse(
        uow,
        payment,
        reversal_id=event.event_id,
        kind=kind,
        amount=amount,
        allocations=allocations,
        reason=reason,
        posted_on=schedule.today(),
    )


def _reverse(
    uow: UnitOfWork,
    payment: Payment,
    *,
    reversal_id: str,
    kind: str,
    amount: Decimal | None,
    allocations: list[dict[str, Any]],
    reason: str | None,
    posted_on: dt.date,
) -> dict[str, Any]:
    split, from_unapplied = payment.reversal_split(amount, allocations)
    try:
        payment.record_reversal(
            reversal_id=reversal_id,
            kind=kind,
            split=split,
            from_unapplied=from_unapplied,
            reason=reason,
            posted_on=posted_on,
        )
    except PaymentNotReversible:
        log.warning("%s of payment %s: nothing left to reverse", kind, payment.id)
        return {"payment_id": payment.id, "reversed": ZERO}
    for number, value in split.items():
        uow.get(Bill, number).reopen(value, payment_id=payment.id, kind=kind, posted_on=posted_on)
    return {"payment_id": payment.id, "reversed": sum(split.values(), ZERO) + from_unapplied}
