"""The Bill aggregate: issued once, then paid, reversed and penalized; its balance is exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from services.billing.domain.values import ZERO, money_str, round_money
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, InvalidInput


class BillExists(Conflict):
    """A bill with this number was already issued."""


class Bill(Aggregate):
    stream_type = "bill"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.kind = ""
        self.account_number: str | None = None
        self.customer_id = ""
        self.due_date: dt.date | None = None
        self.total = ZERO
        self.balance = ZERO
        self.late_penalty = False
        self.penalized = False
        self.fingerprint: str | None = None

    # -- commands -----------------------------------------------------------------------

    def issue(self, data: dict[str, Any]) -> None:
        """Issue the bill (from a billing run or an import)."""
        if self.exists:
            raise BillExists(
                f"bill {self.id} already exists",
                {"bill_number": f"{self.id} already exists"},
                code="bill_exists",
            )
        self.record("BillIssued", data)

    def apply_payment(
        self, amount: Decimal, *, payment_id: str, posted_on: dt.date, reason: str = "payment"
    ) -> None:
        """Lower the balance by a payment (a credit when it is more than the balance)."""
        if amount <= 0:
            raise InvalidInput(errors={"amount": "must be more than zero"})
        self._change(-amount, reason=reason, payment_id=payment_id, posted_on=posted_on)

    def reopen(self, amount: Decimal, *, payment_id: str, kind: str, posted_on: dt.date) -> None:
        """Put back an amount a refund, return or chargeback took away."""
        if amount <= 0:
            raise InvalidInput(errors={"amount": "must be more than zero"})
        self._change(amount, reason=kind, payment_id=payment_id, posted_on=posted_on)

    def penalty_due(
        self, as_of: dt.date, *, percent: Decimal, grace_days: int, minimum: Decimal
    ) -> Decimal:
        """The late penalty this bill owes as of a date (zero when none applies)."""
        if not self.late_penalty or self.penalized or self.due_date is None:
            return ZERO
        if as_of <= self.due_date + dt.timedelta(days=grace_days):
            return ZERO
        if self.balance <= 0 or percent <= 0:
            return ZERO
        return max(round_money(self.balance * percent / 100), minimum)

    def assess_penalty(
        self, as_of: dt.date, *, percent: Decimal, grace_days: int, minimum: Decimal
    ) -> Decimal:
        """Assess the late penalty once, if the balance is unpaid after due date + grace."""
        amount = self.penalty_due(as_of, percent=percent, grace_days=grace_days, minimum=minimum)
        if amount <= 0:
            return ZERO
        unpaid = self.balance
        self.record(
            "PenaltyAssessed",
            {
                "bill_number": self.id,
                "account_number": self.account_number,
                "customer_id": self.customer_id,
                "amount": money_str(amount),
                "percent": str(percent),
                "unpaid_balance": money_str(unpaid),
                "assessed_on": as_of.isoformat(),
            },
        )
        self._change(amount, reason="penalty", payment_id=None, posted_on=as_of)
        return amount

    def _change(
        self, change: Decimal, *, reason: str, payment_id: str | None, posted_on: dt.date
    ) -> None:
        self.record(
            "BillBalanceChanged",
            {
                "bill_number": self.id,
                "account_number": self.account_number,
                "customer_id": self.customer_id,
                "change": money_str(change),
                "balance_due": money_str(self.balance + change),
                "reason": reason,
                "payment_id": payment_id,
                "posted_on": posted_on.isoformat(),
            },
        )

    # -- state --------------------------------------------------------------------------

    @applies("BillIssued")
    def _issued(self, data: dict[str, Any]) -> None:
        self.kind = data["kind"]
        self.account_number = data.get("account_number")
        self.customer_id = data["customer_id"]
        self.due_date = dt.date.fromisoformat(data["due_date"])
        self.total = Decimal(data["total"])
        self.balance = Decimal(data["balance_due"])
        self.late_penalty = bool(data["late_penalty"])
        self.fingerprint = data.get("fingerprint")

    @applies("BillBalanceChanged")
    def _changed(self, data: dict[str, Any]) -> None:
        self.balance = Decimal(data["balance_due"])

    @applies("PenaltyAssessed")
    def _penalized(self, data: dict[str, Any]) -> None:
        self.penalized = True
