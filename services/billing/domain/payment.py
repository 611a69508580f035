"""Payments as billing sees them: where each dollar went, and how reversals take it back.

A payment is applied to the bills the resident chose, up to each bill's balance;
what is left goes to the account's other open bills, oldest due first; what is
still left stays on the first chosen bill as a credit (a negative balance), so
the account balance, the sum of its bills, stays right. Money for bills billing
does not know is held as unapplied for a clerk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from services.billing.domain.values import ZERO, money_str
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict


@dataclasses.dataclass
class OpenBill:
    bill_number: str
    account_number: str | None
    customer_id: str
    balance: Decimal
    due_date: dt.date


@dataclasses.dataclass(frozen=True)
class Requested:
    bill_number: str | None
    account_number: str | None
    amount: Decimal


def allocate(
    requested: list[Requested],
    bills: dict[str, OpenBill],
    others_by_account: dict[str, list[OpenBill]],
) -> tuple[dict[str, Decimal], Decimal]:
    """Split a payment over bills. Returns (amount per bill, unapplied amount)."""
    placed: dict[str, Decimal] = {}
    remaining = sum((r.amount for r in requested), ZERO)

    def room(bill: OpenBill) -> Decimal:
        return max(bill.balance - placed.get(bill.bill_number, ZERO), ZERO)

    def place(bill: OpenBill, amount: Decimal) -> None:
        nonlocal remaining
        if amount > 0:
            placed[bill.bill_number] = placed.get(bill.bill_number, ZERO) + amount
            remaining -= amount

    for r in requested:
        bill = bills.get(r.bill_number or "")
        if bill is not None:
            place(bill, min(r.amount, room(bill), remaining))
    accounts: list[str] = []
    for r in requested:
        bill = bills.get(r.bill_number or "")
        account = bill.account_number if bill is not None else r.account_number
        if account and account not in accounts:
            accounts.append(account)
    for account in accounts:
        for bill in sorted(
            others_by_account.get(account, []), key=lambda b: (b.due_date, b.bill_number)
        ):
            if remaining <= 0:
                break
            place(bill, min(room(bill), remaining))
    if remaining > 0:
        first_known = next(
            (bills[r.bill_number] for r in requested if r.bill_number in bills), None
        )
        if first_known is not None:
            place(first_known, remaining)  # a credit on the bill the resident chose
    return placed, remaining


class PaymentNotReversible(Conflict):
    """Nothing of this payment is left to reverse."""


class Payment(Aggregate):
    """Stream payment-<payment_id>: what billing did with one payment of the payments service."""

    stream_type = "payment"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.applied = False
        self.order: list[str] = []  # bill numbers in the order the payment was placed
        self.net: dict[str, Decimal] = {}  # bill -> amount still applied
        self.bill_accounts: dict[str, dict[str, Any]] = {}
        self.unapplied = ZERO
        self.done_reversals: set[str] = set()
        self.deferred: list[dict[str, Any]] = []

    def record_applied(
        self,
        *,
        placed: dict[str, Decimal],
        bills: dict[str, OpenBill],
        unapplied: Decimal,
        checkout_id: str | None,
        confirmation_number: str | None,
        paid_at: dt.datetime,
        posted_on: dt.date,
    ) -> None:
        allocations = [
            {
                "bill_number": number,
                "account_number": bills[number].account_number,
                "customer_id": bills[number].customer_id,
                "amount": money_str(amount),
            }
            for number, amount in placed.items()
        ]
        total = sum(placed.values(), ZERO) + unapplied
        self.record(
            "PaymentApplied",
            {
                "payment_id": self.id,
                "checkout_id": checkout_id,
                "confirmation_number": confirmation_number,
                "paid_at": paid_at.isoformat(),
                "posted_on": posted_on.isoformat(),
                "amount": money_str(total),
                "allocations": allocations,
                "unapplied": money_str(unapplied),
            },
        )

    def defer_reversal(
        self,
        *,
        reversal_id: str,
        kind: str,
        amount: Decimal | None,
        allocations: list[dict[str, Any]],
        reason: str | None,
    ) -> None:
        """Keep a reversal that arrived before its payment, to apply when the payment does."""
        if reversal_id in self.done_reversals or any(
            d["reversal_id"] == reversal_id for d in self.deferred
        ):
            return
        self.record(
            "PaymentReversalReceived",
            {
                "payment_id": self.id,
                "reversal_id": reversal_id,
                "kind": kind,
                "amount": None if amount is None else money_str(amount),
                "allocations": allocations,
                "reason": reason,
            },
        )

    def reversal_split(
        self, amount: Decimal | None, requested: list[dict[str, Any]]
    ) -> tuple[dict[str, Decimal], Decimal]:
        """Which bills a reversal takes money back from: (per bill, from unapplied)."""
        wanted = (
            amount
            if amount is not None
            else (
                sum((Decimal(str(a["amount"])) for a in requested), ZERO)
                if requested
                else self.remaining
            )
        )
        wanted = min(wanted, self.remaining)
        split: dict[str, Decimal] = {}
        left = wanted
        from_unapplied = min(self.unapplied, left)
        left -= from_unapplied
        if requested:
            for item in requested:
                number = str(item.get("bill_number") or "")
                take = min(
                    Decimal(str(item["amount"])),
                    self.net.get(number, ZERO) - split.get(number, ZERO),
                    left,
                )
                if take > 0:
                    split[number] = split.get(number, ZERO) + take
                    left -= take
        for number in reversed(self.order):
            if left <= 0:
                break
            take = min(self.net.get(number, ZERO) - split.get(number, ZERO), left)
            if take > 0:
                split[number] = split.get(number, ZERO) + take
                left -= take
        return split, from_unapplied

    @property
    def remaining(self) -> Decimal:
        return sum(self.net.values(), ZERO) + self.unapplied

    def record_reversal(
        self,
        *,
        reversal_id: str,
        kind: str,
        split: dict[str, Decimal],
        from_unapplied: Decimal,
        reason: str | None,
        posted_on: dt.date,
    ) -> None:
        if reversal_id in self.done_reversals:
            return
        total = sum(split.values(), ZERO) + from_unapplied
        if total <= 0:
            raise PaymentNotReversible(
                f"payment {self.id} has nothing left to reverse", code="nothing_to_reverse"
            )
        self.record(
            "PaymentReversed",
            {
                "payment_id": self.id,
                "reversal_id": reversal_id,
                "kind": kind,
                "amount": money_str(total),
                "allocations": [
                    {
                        "bill_number": number,
                        "account_number": self.bill_accounts.get(number, {}).get("account_number"),
                        "customer_id": self.bill_accounts.get(number, {}).get("customer_id"),
                        "amount": money_str(value),
                    }
                    for number, value in split.items()
                ],
                "reason": reason,
                "posted_on": posted_on.isoformat(),
            },
        )

    @applies("PaymentApplied")
    def _applied(self, data: dict[str, Any]) -> None:
        self.applied = True
        for item in data["allocations"]:
            number = item["bill_number"]
            if number not in self.net:
                self.order.append(number)
            self.net[number] = self.net.get(number, ZERO) + Decimal(item["amount"])
            self.bill_accounts[number] = {
                "account_number": item.get("account_number"),
                "customer_id": item.get("customer_id"),
            }
        self.unapplied = Decimal(data["unapplied"])

    @applies("PaymentReversalReceived")
    def _deferred(self, data: dict[str, Any]) -> None:
        self.deferred.append(data)

    @applies("PaymentReversed")
    def _reversed(self, data: dict[str, Any]) -> None:
        self.done_reversals.add(data["reversal_id"])
        self.deferred = [d for d in self.deferred if d["reversal_id"] != data["reversal_id"]]
        taken = ZERO
        for item in data["allocations"]:
            number = item["bill_number"]
            self.net[number] = self.net.get(number, ZERO) - Decimal(item["amount"])
            taken += Decimal(item["amount"])
        self.unapplied -= Decimal(data["amount"]) - taken
