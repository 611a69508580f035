"""Queries on the payments read models: carts, checkouts, history, autopay, bills."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.payments.domain.money import ZERO, money, money_str
from services.payments.domain.payment import CHECKOUT_STATUS
from services.payments.projections import (
    autopay,
    autopay_charges,
    bills,
    cart_items,
    holds,
    payment_items,
    payments,
    refund_requests,
    unposted,
)
from services.payments.settings import Settings

BILL_TYPE_LABELS = {"utility": "Utilities", "utilities": "Utilities", "claims": "Claims"}


def describe(bill_type: str | None, bill_number: str) -> str:
    label = BILL_TYPE_LABELS.get((bill_type or "").lower()) or (bill_type or "Bill").title()
    return f"{label}: {bill_number}"


def iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclasses.dataclass(frozen=True)
class BillView:
    bill_number: str
    bill_type: str
    account_number: str
    customer_id: str | None
    due_date: dt.date | None
    balance_due: Decimal  # as billing last reported it
    unposted: Decimal  # our payments billing has not posted yet
    held_by: str | None
    hold_owner: str | None
    hold_kind: str | None
    hold_expires_at: dt.datetime | None

    @property
    def payable_balance(self) -> Decimal:
        """What is still owed once our successful payments are counted."""
        return money(self.balance_due - self.unposted)

    @property
    def description(self) -> str:
        return describe(self.bill_type, self.bill_number)


def bill_views(conn: Connection, bill_numbers: list[str]) -> dict[str, BillView]:
    if not bill_numbers:
        return {}
    unposted_sum = (
        sa.select(unposted.c.bill_number, sa.func.sum(unposted.c.amount).label("amount"))
        .where(unposted.c.bill_number.in_(bill_numbers))
        .group_by(unposted.c.bill_number)
        .subquery()
    )
    query = (
        sa.select(
            bills,
            unposted_sum.c.amount.label("unposted"),
            holds.c.payment_id.label("held_by"),
            holds.c.owner.label("hold_owner"),
            holds.c.kind.label("hold_kind"),
            holds.c.expires_at.label("hold_expires_at"),
        )
        .select_from(
            bills.outerjoin(
                unposted_sum, unposted_sum.c.bill_number == bills.c.bill_number
            ).outerjoin(holds, holds.c.bill_number == bills.c.bill_number)
        )
        .where(bills.c.bill_number.in_(bill_numbers))
    )
    out = {}
    for row in conn.execute(query).mappings():
        out[row["bill_number"]] = BillView(
            bill_number=row["bill_number"],
            bill_type=row["bill_type"],
            account_number=row["account_number"],
            customer_id=row["customer_id"],
            due_date=row["due_date"],
            balance_due=money(row["balance_due"]),
            unposted=money(row["unposted"] or ZERO),
            held_by=row["held_by"],
            hold_owner=row["hold_owner"],
            hold_kind=row["hold_kind"],
            hold_expires_at=aware(row["hold_expires_at"]),
        )
    return out


def bill_view(conn: Connection, bill_number: str) -> BillView | None:
    return bill_views(conn, [bill_number]).get(bill_number)


def bill_status(conn: Connection, bill_numbers: list[str]) -> list[dict[str, Any]]:
    """Balance and pending flag per bill, as payments sees them."""
    views = bill_views(conn, bill_numbers)
    return [
        {
            "bill_number": b.bill_number,
            "account_number": b.account_number,
            "balance_due": money_str(b.balance_due),
            "payable_balance": money_str(max(b.payable_balance, ZERO)),
            "pending_web_payment": b.held_by is not None and b.hold_kind == "web",
            "pending_until": iso(b.hold_expires_at),
        }
        for b in views.values()
    ]


# -- carts --------------------------------------------------------------------------------


def cart_view(conn: Connection, owner: str, settings: Settings) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(cart_items)
        .where(cart_items.c.owner == owner)
        .order_by(cart_items.c.added_at, cart_items.c.bill_number)
    ).mappings()
    rows = list(rows)
    views = bill_views(conn, [r["bill_number"] for r in rows])
    items = []
    subtotal = ZERO
    for row in rows:
        bill = views.get(row["bill_number"])
        balance = max(bill.payable_balance, ZERO) if bill else ZERO
        fixed = money(row["amount"]) if row["amount"] is not None else None
        amount = fixed if fixed is not None else balance
        problem = None
        if bill is None:
            problem = "This bill is no longer known."
        elif balance <= 0 and not settings.amount_rules.allow_prepayment:
            problem = "This bill has no balance due."
        elif fixed is not None and fixed > balance and not settings.amount_rules.allow_prepayment:
            problem = f"The amount is more than the balance due (${balance:.2f})."
        if problem is None:
            subtotal += amount
        items.append(
            {
                "bill_number": row["bill_number"],
                "account_number": bill.account_number if bill else None,
                "customer_id": bill.customer_id if bill else None,
                "bill_type": bill.bill_type if bill else None,
                "description": bill.description if bill else f"Bill: {row['bill_number']}",
                "due_date": iso(bill.due_date) if bill else None,
                "balance_due": money_str(balance),
                "amount": money_str(amount),
                "pays_balance": fixed is None,
                "pending_web_payment": bool(bill and bill.held_by and bill.hold_kind == "web"),
                "problem": problem,
            }
        )
    fee = settings.fee.fee(subtotal)
    return {
        "owner": owner,
        "items": items,
        "count": len(items),
        "subtotal": money_str(subtotal),
        "convenience_fee": money_str(fee),
        "convenience_fee_rule": settings.fee.describe(),
        "total": money_str(subtotal + fee),
        "min_payment": money_str(settings.min_payment),
        "allow_prepayment": settings.amount_rules.allow_prepayment,
    }


# -- checkouts and payments -----------------------------------------------------------


def payment_row(conn: Connection, payment_id: str) -> Any:
    return (
        conn.execute(sa.select(payments).where(payments.c.payment_id == payment_id))
        .mappings()
        .first()
    )


def find_payment(conn: Connection, ref: str) -> Any:
    """A payment by its id, checkout id or confirmation number (staff tools)."""
    return (
        conn.execute(
            sa.select(payments).where(
                sa.or_(
                    payments.c.payment_id == ref,
                    payments.c.checkout_id == ref,
                    payments.c.confirmation_number == ref.upper(),
                )
            )
        )
        .mappings()
        .first()
    )


def items_of(conn: Connection, payment_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(payment_items, bills.c.bill_type, bills.c.due_date)
        .select_from(
            payment_items.outerjoin(bills, bills.c.bill_number == payment_items.c.bill_number)
        )
        .where(payment_items.c.payment_id == payment_id)
        .order_by(payment_items.c.position)
    ).mappings()
    return [
        {
            "bill_number": r["bill_number"],
            "account_number": r["account_number"],
            "description": describe(r["bill_type"], r["bill_number"]),
            "due_date": iso(r["due_date"]),
            "amount": money_str(r["amount"]),
        }
        for r in rows
    ]


STATUS_MESSAGES = {
    "open": "Complete your card payment before the time runs out.",
    "pending": "Your card payment is being processed. This page will show the result.",
    "paid": "Thank you. Your payment was received.",
    "failed": "Your card payment did not go through. Nothing was charged. Your bills are still "
    "in your cart: you can try again with another card.",
    "expired": "The 10 minutes to pay ran out before the payment was completed. Nothing was "
    "charged. Your bills are still in your cart.",
    "canceled": "This checkout was canceled. Nothing was charged.",
}


def payment_view(conn: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
    status = CHECKOUT_STATUS.get(row["status"], "open")
    expires_at = aware(row["expires_at"])
    seconds_left = 0
    if status in ("open", "pending") and expires_at is not None:
        seconds_left = max(0, int((expires_at - now).total_seconds()))
    items = items_of(conn, row["payment_id"])
    out: dict[str, Any] = {
        "checkout_id": row["checkout_id"],
        "payment_id": row["payment_id"],
        "kind": row["kind"],
        "owner": row["owner"],
        "status": status,
        "payment_status": row["status"],
        "message": STATUS_MESSAGES[status],
        "expires_at": iso(expires_at),
        "seconds_left": seconds_left,
        "subtotal": money_str(row["subtotal"]),
        "convenience_fee": money_str(row["convenience_fee"]),
        "amount_total": money_str(row["amount_total"]),
        "refunded": money_str(row["reversed"]),
        "payment_url": row["payment_url"] if status == "open" else None,
        "items": items,
        "email": row["email"],
        "failure_reason": row["failure_reason"],
        "receipt": None,
        "late_payment": None,
        "created_at": iso(row["created_at"]),
    }
    if status == "failed" and row["failure_reason"]:
        out["message"] = f"{row['failure_reason']} " + STATUS_MESSAGES["failed"]
    if status == "canceled" and row["closed_reason"]:
        out["message"] = f"{row['closed_reason']} Nothing was charged."
    if row["confirmation_number"]:
        out["receipt"] = {
            "confirmation_number": row["confirmation_number"],
            "paid_at": iso(row["paid_at"]),
            "amount_total": money_str(row["amount_total"]),
            "convenience_fee": money_str(row["convenience_fee"]),
            "card_brand": row["card_brand"],
            "card_last4": row["card_last4"],
            "email": row["email"],
            "items": items,
        }
    if row["late_status"]:
        out["late_payment"] = {
            "status": row["late_status"],
            "amount": money_str(row["amount_total"]),
            "reason": row["late_reason"]
            or "Your card payment completed after the checkout had closed. It was not applied "
            "to your bills and is being refunded in full.",
        }
        out["message"] = out["late_payment"]["reason"]
    return out


def checkout_by_id(conn: Connection, checkout_id: str) -> Any:
    return (
        conn.execute(sa.select(payments).where(payments.c.checkout_id == checkout_id))
        .mappings()
        .first()
    )


def payment_history(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(payments)
        .where(payments.c.user_id == user_id, payments.c.confirmation_number.is_not(None))
        .order_by(payments.c.paid_at.desc())
        .limit(500)
    ).mappings()
    out = []
    for row in rows:
        out.append(
            {
                "confirmation_number": row["confirmation_number"],
                "payment_id": row["payment_id"],
                "checkout_id": row["checkout_id"],
                "kind": row["kind"],
                "paid_at": iso(row["paid_at"]),
                "amount": money_str(row["amount_total"]),
                "convenience_fee": money_str(row["convenience_fee"]),
                "refunded": money_str(row["reversed"]),
                "status": row["status"],
                "card_brand": row["card_brand"],
                "card_last4": row["card_last4"],
                "items": items_of(conn, row["payment_id"]),
            }
        )
    return out


def staff_view(conn: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
    out = payment_view(conn, row, now)
    out["processor_payment_id"] = row["processor_payment_id"]
    out["refund_requests"] = [
        {
            "request_id": r["request_id"],
            "amount": money_str(r["amount"]),
            "status": r["status"],
            "void": r["void"],
            "late": r["late"],
            "reason": r["reason"],
            "failure": r["failure"],
        }
        for r in conn.execute(
            sa.select(refund_requests)
            .where(refund_requests.c.payment_id == row["payment_id"])
            .order_by(refund_requests.c.requested_at)
        ).mappings()
    ]
    return out


# -- automatic payments ---------------------------------------------------------------


def autopay_view(
    conn: Connection, account_number: str, today: dt.date, warn_days: int
) -> dict[str, Any]:
    row = (
        conn.execute(sa.select(autopay).where(autopay.c.account_number == account_number))
        .mappings()
        .first()
    )
    charges = [
        {
            "bill_number": c["bill_number"],
            "due_date": iso(c["due_date"]),
            "charge_date": iso(c["charge_date"]),
            "amount": money_str(c["amount"]),
            "status": c["status"],
            "payment_id": c["payment_id"],
            "reason": c["reason"],
        }
        for c in conn.execute(
            sa.select(autopay_charges)
            .where(autopay_charges.c.account_number == account_number)
            .order_by(autopay_charges.c.charge_date.desc())
            .limit(24)
        ).mappings()
    ]
    if row is None:
        return {
            "account_number": account_number,
            "status": "none",
            "card": None,
            "charges": charges,
        }
    from services.payments.domain.autopay import card_expiry_date

    expires_on = card_expiry_date(row["card_expires"])
    return {
        "account_number": account_number,
        "status": row["status"],
        "user_id": row["user_id"],
        "email": row["email"],
        "days_before": row["days_before"],
        "card": {
            "brand": row["card_brand"],
            "last4": row["card_last4"],
            "expires": row["card_expires"],
            "expired": expires_on < today,
            "expiring_soon": expires_on - today <= dt.timedelta(days=warn_days),
        },
        "enrolled_at": iso(row["enrolled_at"]),
        "last_failure": (
            {
                "bill_number": row["last_failure_bill"],
                "reason": row["last_failure_reason"],
                "at": iso(row["last_failure_at"]),
            }
            if row["last_failure_reason"]
            else None
        ),
        "charges": charges,
    }
