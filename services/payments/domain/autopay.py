"""Automatic payments for one account: the card on file and the charges scheduled for its bills."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any

from services.payments.domain.base import PaymentsAggregate, parse_date
from services.payments.domain.errors import AutopayNotEnrolledError
from services.payments.domain.money import money
from shared.aggregate import applies

ACTIVE, CANCELLED = "active", "cancelled"


def card_expiry_date(expires: str) -> dt.date:
    """The last day a card marked YYYY-MM can be used."""
    year, month = (int(p) for p in expires.split("-"))
    return dt.date(year, month, calendar.monthrange(year, month)[1])


class Autopay(PaymentsAggregate):
    """Stream `autopay-<account_number>`."""

    stream_type = "autopay"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: str | None = None
        self.user_id: str | None = None
        self.email = ""
        self.card: dict[str, str] | None = None
        self.days_before = 0
        # bill_number -> {due_date, charge_date, amount, status, payment_id, reason}
        self.charges: dict[str, dict[str, Any]] = {}
        self.warned_tokens: set[str] = set()
        self.last_failure: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def enroll(self, user_id: str, email: str, card: dict[str, str], days_before: int) -> None:
        """Enrol the account, or change its card or email at once if it is enrolled."""
        data = {
            "account_number": self.id,
            "user_id": user_id,
            "email": email,
            "card_token": card["token"],
            "card_brand": card["brand"],
            "card_last4": card["last4"],
            "card_expires": card["expires"],
            "days_before": days_before,
        }
        if self.active:
            if (self.card, self.email, self.days_before) != (card, email, days_before):
                self.emit("AutopayChanged", data)
            return
        self.emit("AutopayEnrolled", data)

    def cancel(self, user_id: str) -> None:
        if not self.active:
            raise AutopayNotEnrolledError(self.id)
        self.emit(
            "AutopayCancelled", {"account_number": self.id, "user_id": user_id, "email": self.email}
        )

    def schedule(
        self, bill_number: str, due_date: dt.date, amount: Decimal, today: dt.date
    ) -> bool:
        """Plan the charge for a new bill N days before it is due (never in the past)."""
        if not self.active or self.card is None or bill_number in self.charges or amount <= 0:
            return False
        charge_date = max(today, due_date - dt.timedelta(days=self.days_before))
        self.emit(
            "AutopayScheduled",
            {
                "account_number": self.id,
                "bill_number": bill_number,
                "due_date": due_date,
                "charge_date": charge_date,
                "amount": money(amount),
                "email": self.email,
                "card_brand": self.card["brand"],
                "card_last4": self.card["last4"],
            },
        )
        return True

    def due_charges(self, today: dt.date) -> list[str]:
        return [
            bill
            for bill, c in self.charges.items()
            if c["status"] == "scheduled" and c["charge_date"] <= today
        ]

    def start_charge(self, bill_number: str, payment_id: str, amount: Decimal) -> None:
        self.emit(
            "AutopayChargeStarted",
            {
                "account_number": self.id,
                "bill_number": bill_number,
                "payment_id": payment_id,
                "amount": amount,
            },
        )

    def skip(self, bill_number: str, reason: str) -> None:
        if self.charges.get(bill_number, {}).get("status") in ("scheduled", "charging"):
            self.emit(
                "AutopayChargeSkipped",
                {"account_number": self.id, "bill_number": bill_number, "reason": reason},
            )

    def charge_succeeded(self, bill_number: str, payment_id: str) -> None:
        if self.charges.get(bill_number, {}).get("status") == "charging":
            self.emit(
                "AutopayChargeSucceeded",
                {"account_number": self.id, "bill_number": bill_number, "payment_id": payment_id},
            )

    def charge_failed(self, bill_number: str, payment_id: str | None, reason: str) -> None:
        if self.charges.get(bill_number, {}).get("status") in ("scheduled", "charging"):
            self.emit(
                "AutopayChargeFailed",
                {
                    "account_number": self.id,
                    "bill_number": bill_number,
                    "payment_id": payment_id,
                    "reason": reason,
                    "email": self.email,
                },
            )

    def warn_if_card_expiring(self, today: dt.date, warn_days: int) -> bool:
        """Tell the resident once, ahead of time, that the card on file is about to expire."""
        if not self.active or self.card is None or self.card["token"] in self.warned_tokens:
            return False
        if card_expiry_date(self.card["expires"]) - today > dt.timedelta(days=warn_days):
            return False
        self.emit(
            "CardExpiringSoon",
            {
                "account_number": self.id,
                "email": self.email,
                "expires": self.card["expires"],
                "card_brand": self.card["brand"],
                "card_last4": self.card["last4"],
            },
        )
        return True

    # -- state changes -----------------------------------------------------------------

    @applies("AutopayEnrolled", "AutopayChanged")
    def _on_enrolled(self, d: dict) -> None:
        self.status = ACTIVE
        self.user_id = d["user_id"]
        self.email = d["email"]
        self.card = {
            "token": d["card_token"],
            "brand": d["card_brand"],
            "last4": d["card_last4"],
            "expires": d["card_expires"],
        }
        self.days_before = d["days_before"]

    @applies("AutopayCancelled")
    def _on_cancelled(self, d: dict) -> None:
        self.status = CANCELLED
        for charge in self.charges.values():
            if charge["status"] == "scheduled":
                charge["status"] = "cancelled"

    @applies("AutopayScheduled")
    def _on_scheduled(self, d: dict) -> None:
        self.charges[d["bill_number"]] = {
            "due_date": parse_date(d["due_date"]),
            "charge_date": parse_date(d["charge_date"]),
            "amount": Decimal(d["amount"]),
            "status": "scheduled",
            "payment_id": None,
        }

    @applies("AutopayChargeStarted")
    def _on_started(self, d: dict) -> None:
        charge = self.charges.setdefault(d["bill_number"], {})
        charge.update(status="charging", payment_id=d["payment_id"], amount=Decimal(d["amount"]))

    @applies("AutopayChargeSucceeded")
    def _on_charged(self, d: dict) -> None:
        self.charges[d["bill_number"]]["status"] = "paid"

    @applies("AutopayChargeFailed")
    def _on_charge_failed(self, d: dict) -> None:
        self.charges[d["bill_number"]].update(status="failed", reason=d["reason"])
        self.last_failure = {"bill_number": d["bill_number"], "reason": d["reason"]}

    @applies("AutopayChargeSkipped")
    def _on_skipped(self, d: dict) -> None:
        self.charges[d["bill_number"]].update(status="skipped", reason=d["reason"])

    @applies("CardExpiringSoon")
    def _on_warned(self, d: dict) -> None:
        if self.card is not None:
            self.warned_tokens.add(self.card["token"])
