"""A payment and its state machine.

    created -> pending -> succeeded | failed | expired | canceled
    succeeded -> partially_refunded -> refunded;  succeeded -> returned | charged_back

The processor reports through webhooks that may come twice, late or out of order,
and through polling. Every report becomes a `ProcessorUpdate`; `Payment.apply`
decides what it means in the current state, so a duplicate or a stale report
changes nothing. A success reported after the session expired (or was canceled) is
never posted: it is recorded as late and refunded.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

from services.payments.domain.base import PaymentsAggregate, parse_time
from services.payments.domain.errors import (
    CheckoutClosedError,
    PaymentProcessingError,
    RefundNotAllowedError,
    RefundTooLargeError,
)
from services.payments.domain.money import ZERO, money
from shared.aggregate import applies

CREATED, PENDING = "created", "pending"
SUCCEEDED, FAILED, EXPIRED, CANCELED = "succeeded", "failed", "expired", "canceled"
PARTIALLY_REFUNDED, REFUNDED = "partially_refunded", "refunded"
RETURNED, CHARGED_BACK = "returned", "charged_back"

OPEN_STATES = (CREATED, PENDING)
PAID_STATES = (SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED, RETURNED, CHARGED_BACK)
CHECKOUT_STATUS = {
    CREATED: "open",
    PENDING: "pending",
    FAILED: "failed",
    EXPIRED: "expired",
    CANCELED: "canceled",
    **{s: "paid" for s in PAID_STATES},
}

# What the processor's failure codes mean to a resident.
FAILURE_REASONS = {
    "card_declined": "Your card was declined by your bank.",
    "insufficient_funds": "Your card was declined for insufficient funds.",
    "processing_error": "The card processor had an error and could not complete the payment.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "The card's security code was not correct.",
    "unknown_test_card": "The sandbox accepts only its documented test cards.",
}

# Outcomes of applying one processor update.
APPLIED, DUPLICATE, IGNORED, NEEDS_POLL = "applied", "duplicate", "ignored", "needs_poll"


@dataclasses.dataclass(frozen=True)
class ProcessorUpdate:
    """One fact from the processor (a webhook or a poll), in the processor-neutral shape."""

    event_id: str
    kind: str  # payment | refund | return | chargeback
    occurred_at: dt.datetime
    status: str | None = (
        None  # payment: open | processing | succeeded | failed | canceled | expired
    )
    processor_payment_id: str | None = None
    amount: Decimal | None = None
    succeeded_at: dt.datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    transaction_id: str | None = None  # refund, return or dispute id
    reference: str | None = None  # our refund request id, when we asked for it
    reason: str | None = None


def confirmation_number(payment_id: str, paid_at: dt.datetime) -> str:
    """Short, unambiguous, and the same every time it is computed for this payment."""
    digest = hashlib.sha256(payment_id.encode()).digest()
    code = base64.b32encode(digest).decode().rstrip("=")
    code = code.translate(str.maketrans("01", "XY"))[:8]  # no 0/O or 1/I mix-ups
    return f"MP-{paid_at:%Y%m%d}-{code}"


class Payment(PaymentsAggregate):
    stream_type = "payment"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: str | None = None
        self.checkout_id: str | None = None
        self.kind = "web"
        self.owner = ""
        self.user_id: str | None = None
        self.email = ""
        self.billing: dict[str, Any] | None = None
        self.allocations: list[dict[str, Any]] = []
        self.subtotal = ZERO
        self.convenience_fee = ZERO
        self.amount_total = ZERO
        self.expires_at: dt.datetime | None = None
        self.return_url: str | None = None
        self.processor = ""
        self.session_id: str | None = None
        self.payment_url: str | None = None
        self.processor_payment_id: str | None = None
        self.confirmation_number: str | None = None
        self.paid_at: dt.datetime | None = None
        self.card_brand: str | None = None
        self.card_last4: str | None = None
        self.failure_reason: str | None = None
        self.seen: set[str] = set()
        self.transactions: set[str] = set()
        self.reversed = ZERO
        self.reversed_by_bill: dict[str, Decimal] = {}
        self.fee_reversed = ZERO
        self.refund_requests: dict[str, dict[str, Any]] = {}
        self.late = False
        self.late_amount = ZERO
        self.late_refunded = False

    # -- reading -----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @property
    def is_paid(self) -> bool:
        return self.status in PAID_STATES

    @property
    def checkout_status(self) -> str:
        return CHECKOUT_STATUS.get(self.status or "", "open")

    @property
    def bill_numbers(self) -> list[str]:
        return [a["bill_number"] for a in self.allocations]

    @property
    def pending_refunds(self) -> Decimal:
        return sum(
            (r["amount"] for r in self.refund_requests.values() if r["status"] == "requested"),
            ZERO,
        )

    @property
    def refundable(self) -> Decimal:
        if not self.is_paid:
            return ZERO
        return max(ZERO, self.amount_total - self.reversed - self.pending_refunds)

    def refund_due(self) -> list[tuple[str, dict[str, Any]]]:
        """Refund requests the processor has not answered yet (the janitor retries them)."""
        return [(k, r) for k, r in self.refund_requests.items() if r["status"] == "requested"]

    # -- commands ----------------------------------------------------------------------

    def create(
        self,
        *,
        checkout_id: str | None,
        kind: str,
        owner: str,
        user_id: str | None,
        email: str,
        billing: dict[str, Any] | None,
        allocations: list[dict[str, Any]],
        convenience_fee: Decimal,
        expires_at: dt.datetime | None,
        return_url: str | None,
        processor: str,
    ) -> None:
        subtotal = money(sum((Decimal(a["amount"]) for a in allocations), ZERO))
        self.emit(
            "PaymentCreated",
            {
                "payment_id": self.id,
                "checkout_id": checkout_id,
                "kind": kind,
                "owner": owner,
                "user_id": user_id,
                "email": email,
                "billing": billing,
                "allocations": allocations,
                "subtotal": subtotal,
                "convenience_fee": convenience_fee,
                "amount_total": subtotal + convenience_fee,
                "expires_at": expires_at,
                "return_url": return_url,
                "processor": processor,
            },
        )
        if kind == "web" and checkout_id is not None and expires_at is not None:
            self.emit(
                "CheckoutOpened",
                {
                    "checkout_id": checkout_id,
                    "payment_id": self.id,
                    "owner": owner,
                    "bills": self._bills(),
                    "expires_at": expires_at,
                },
            )

    def session_created(self, session_id: str, payment_url: str) -> None:
        if self.session_id is None:
            self.emit(
                "PaymentSessionCreated",
                {"payment_id": self.id, "session_id": session_id, "payment_url": payment_url},
            )

    def expire(self, now: dt.datetime) -> bool:
        """Close an open session whose time is up (after the processor was asked)."""
        if not self.is_open or self.expires_at is None or now < self.expires_at:
            return False
        self.emit(
            "PaymentExpired",
            {
                "payment_id": self.id,
                "checkout_id": self.checkout_id,
                "owner": self.owner,
                "email": self.email,
                "expired_at": now,
            },
        )
        self._close("expired")
        return True

    def cancel(self, reason: str, by: str | None) -> None:
        if self.status == PENDING:
            raise PaymentProcessingError(self.id)
        if self.status != CREATED:
            raise CheckoutClosedError(self.checkout_id or self.id, self.checkout_status)
        self.emit(
            "PaymentCanceled",
            {
                "payment_id": self.id,
                "checkout_id": self.checkout_id,
                "owner": self.owner,
                "reason": reason,
                "canceled_by": by,
            },
        )
        self._close("canceled")

    def request_refund(
        self,
        request_id: str,
        amount: Decimal | None,
        reason: str,
        by: str | None,
        *,
        void: bool = False,
    ) -> Decimal:
        """Ask for money back on a succeeded payment; returns the amount asked for."""
        if not self.is_paid:
            raise RefundNotAllowedError(self.id, self.status or "unknown")
        refundable = self.refundable
        amount = refundable if amount is None else money(amount)
        if amount <= 0 or amount > refundable:
            raise RefundTooLargeError(refundable)
        self.emit(
            "RefundRequested",
            {
                "payment_id": self.id,
                "request_id": request_id,
                "amount": amount,
                "reason": reason,
                "late": False,
                "void": void,
                "requested_by": by,
            },
        )
        return amount

    def refund_failed(self, request_id: str, reason: str) -> None:
        request = self.refund_requests.get(request_id)
        if request and request["status"] == "requested":
            self.emit(
                "RefundFailed", {"payment_id": self.id, "request_id": request_id, "reason": reason}
            )

    # -- the state machine -------------------------------------------------------------

    def apply_update(self, update: ProcessorUpdate, now: dt.datetime) -> str:
        """Apply one processor fact; returns APPLIED, DUPLICATE, IGNORED or NEEDS_POLL."""
        if update.event_id in self.seen:
            return DUPLICATE
        if update.kind == "payment":
            return self._payment_update(update, now)
        if update.kind in ("refund", "return", "chargeback"):
            return self._reversal_update(update, now)
        return IGNORED

    def _payment_update(self, u: ProcessorUpdate, now: dt.datetime) -> str:
        if u.status == "processing":
            if self.status != CREATED:
                return IGNORED
            self.emit(
                "PaymentPending",
                {
                    "payment_id": self.id,
                    "processor_event_id": u.event_id,
                    "processor_payment_id": u.processor_payment_id,
                },
            )
            return APPLIED
        if u.status == "succeeded":
            return self._succeeded(u, now)
        if u.status == "failed":
            if not self.is_open:
                return IGNORED
            code = u.failure_code or "card_declined"
            reason = FAILURE_REASONS.get(code) or u.failure_message or "The payment failed."
            self.emit(
                "PaymentFailed",
                {
                    "payment_id": self.id,
                    "checkout_id": self.checkout_id,
                    "kind": self.kind,
                    "owner": self.owner,
                    "reason": reason,
                    "reason_code": code,
                    "email": self.email,
                    "processor_event_id": u.event_id,
                    "processor_payment_id": u.processor_payment_id,
                },
            )
            self._close("failed")
            return APPLIED
        if u.status in ("canceled", "expired"):
            if not self.is_open:
                return IGNORED
            if u.status == "expired" and self.expires_at is not None:
                self.emit(
                    "PaymentExpired",
                    {
                        "payment_id": self.id,
                        "checkout_id": self.checkout_id,
                        "owner": self.owner,
                        "email": self.email,
                        "expired_at": max(now, self.expires_at),
                    },
                )
                self._close("expired")
            else:
                self.emit(
                    "PaymentCanceled",
                    {
                        "payment_id": self.id,
                        "checkout_id": self.checkout_id,
                        "owner": self.owner,
                        "reason": u.reason or "The card processor canceled the payment.",
                        "canceled_by": "processor",
                    },
                )
                self._close("canceled")
            return APPLIED
        return IGNORED

    def _succeeded(self, u: ProcessorUpdate, now: dt.datetime) -> str:
        if self.is_open:
            succeeded_at = u.succeeded_at or u.occurred_at
            if self.expires_at is not None and succeeded_at > self.expires_at:
                # The processor finished after our hard deadline: the session is over.
                self.expire(max(now, self.expires_at))
            else:
                paid_at = succeeded_at
                self.emit(
                    "PaymentSucceeded",
                    {
                        "payment_id": self.id,
                        "checkout_id": self.checkout_id,
                        "kind": self.kind,
                        "confirmation_number": confirmation_number(self.id, paid_at),
                        "owner": self.owner,
                        "user_id": self.user_id,
                        "email": self.email,
                        "amount_total": self.amount_total,
                        "convenience_fee": self.convenience_fee,
                        "allocations": self.allocations,
                        "paid_at": paid_at,
                        "processor_event_id": u.event_id,
                        "processor_payment_id": u.processor_payment_id or "",
                        "card_brand": u.card_brand,
                        "card_last4": u.card_last4,
                    },
                )
                self._close("paid")
                return APPLIED
        if self.status in (EXPIRED, CANCELED) and not self.late:
            amount = money(u.amount) if u.amount is not None else self.amount_total
            self.emit(
                "LatePaymentReceived",
                {
                    "payment_id": self.id,
                    "checkout_id": self.checkout_id,
                    "amount": amount,
                    "processor_event_id": u.event_id,
                    "processor_payment_id": u.processor_payment_id or "",
                    "reason": self.status,
                    "email": self.email,
                },
            )
            self.emit(
                "RefundRequested",
                {
                    "payment_id": self.id,
                    "request_id": f"{self.id}-late",
                    "amount": amount,
                    "reason": "payment completed after the checkout had "
                    + ("expired" if self.status == EXPIRED else "been canceled"),
                    "late": True,
                    "void": False,
                    "requested_by": "system",
                },
            )
            return APPLIED
        return IGNORED

    def _reversal_update(self, u: ProcessorUpdate, now: dt.datetime) -> str:
        if u.transaction_id is None or u.transaction_id in self.transactions:
            return DUPLICATE
        if self.is_open:
            # Money came back before we heard it went out: ask the processor what happened.
            return NEEDS_POLL
        request = self.refund_requests.get(u.reference or "")
        if u.kind == "refund" and (self.late or (request and request.get("late"))):
            if self.late_refunded:
                return DUPLICATE
            self.emit(
                "LatePaymentRefunded",
                {
                    "payment_id": self.id,
                    "checkout_id": self.checkout_id,
                    "refund_id": u.transaction_id,
                    "amount": money(u.amount) if u.amount is not None else self.late_amount,
                    "reason": self._late_reason(),
                    "owner": self.owner,
                    "email": self.email,
                    "refunded_at": u.occurred_at,
                },
            )
            return APPLIED
        if not self.is_paid:
            return IGNORED
        amount = money(u.amount) if u.amount is not None else self.amount_total - self.reversed
        allocations, fee_part = self._allocate_reversal(amount)
        common = {
            "payment_id": self.id,
            "checkout_id": self.checkout_id,
            "amount": amount,
            "allocations": allocations,
            "convenience_fee": fee_part,
            "owner": self.owner,
            "user_id": self.user_id,
            "email": self.email,
        }
        if u.kind == "refund":
            self.emit(
                "PaymentRefunded",
                {
                    **common,
                    "refund_id": u.transaction_id,
                    "request_id": u.reference if request else None,
                    "full": self.reversed + amount >= self.amount_total,
                    "void": bool(request and request.get("void")),
                    "reason": (request or {}).get("reason") or u.reason or "refund",
                    "refunded_at": u.occurred_at,
                },
            )
        else:
            self.emit(
                "PaymentReturned" if u.kind == "return" else "PaymentChargedBack",
                {
                    **common,
                    "transaction_id": u.transaction_id,
                    "reason": u.reason or u.kind,
                    "occurred_at": u.occurred_at,
                },
            )
        return APPLIED

    def _late_reason(self) -> str:
        when = self.expires_at.strftime("%H:%M UTC") if self.expires_at else "its deadline"
        if self.status == CANCELED:
            return (
                "Your card payment completed after the checkout had been canceled, so it was "
                "not applied to your bills and the full amount has been refunded to your card."
            )
        return (
            f"Your card payment completed after the 10-minute checkout had expired ({when}), "
            "so it was not applied to your bills and the full amount has been refunded to your "
            "card. Your bills are unchanged; you can pay them again at any time."
        )

    def _allocate_reversal(self, amount: Decimal) -> tuple[list[dict[str, Any]], Decimal]:
        """Money back comes off the bills first (last bill first), then off the fee."""
        left = amount
        out = []
        for alloc in reversed(self.allocations):
            remaining = alloc["amount"] - self.reversed_by_bill.get(alloc["bill_number"], ZERO)
            take = min(remaining, left)
            if take > 0:
                out.append(
                    {
                        "bill_number": alloc["bill_number"],
                        "account_number": alloc["account_number"],
                        "customer_id": alloc.get("customer_id"),
                        "amount": take,
                    }
                )
                left -= take
        fee_part = min(self.convenience_fee - self.fee_reversed, left)
        return list(reversed(out)), max(fee_part, ZERO)

    def _bills(self) -> list[dict[str, Any]]:
        return [{"bill_number": a["bill_number"], "amount": a["amount"]} for a in self.allocations]

    def _close(self, outcome: str) -> None:
        if self.kind == "web" and self.checkout_id is not None:
            self.emit(
                "CheckoutClosed",
                {
                    "checkout_id": self.checkout_id,
                    "payment_id": self.id,
                    "outcome": outcome,
                    "bills": self._bills(),
                },
            )

    # -- state changes -----------------------------------------------------------------

    @applies("PaymentCreated")
    def _on_created(self, d: dict) -> None:
        self.status = CREATED
        self.checkout_id = d.get("checkout_id")
        self.kind = d["kind"]
        self.owner = d["owner"]
        self.user_id = d.get("user_id")
        self.email = d["email"]
        self.billing = d.get("billing")
        self.allocations = [{**a, "amount": Decimal(a["amount"])} for a in d["allocations"]]
        self.subtotal = Decimal(d["subtotal"])
        self.convenience_fee = Decimal(d["convenience_fee"])
        self.amount_total = Decimal(d["amount_total"])
        self.expires_at = parse_time(d.get("expires_at"))
        self.return_url = d.get("return_url")
        self.processor = d["processor"]

    @applies("PaymentSessionCreated")
    def _on_session(self, d: dict) -> None:
        self.session_id = d["session_id"]
        self.payment_url = d["payment_url"]

    @applies("PaymentPending")
    def _on_pending(self, d: dict) -> None:
        self.status = PENDING
        self.seen.add(d["processor_event_id"])
        self.processor_payment_id = d.get("processor_payment_id") or self.processor_payment_id

    @applies("PaymentSucceeded")
    def _on_paid(self, d: dict) -> None:
        self.status = SUCCEEDED
        self.seen.add(d["processor_event_id"])
        self.processor_payment_id = d["processor_payment_id"] or self.processor_payment_id
        self.confirmation_number = d["confirmation_number"]
        self.paid_at = parse_time(d["paid_at"])
        self.card_brand = d.get("card_brand")
        self.card_last4 = d.get("card_last4")

    @applies("PaymentFailed")
    def _on_failed(self, d: dict) -> None:
        self.status = FAILED
        self.seen.add(d["processor_event_id"])
        self.failure_reason = d["reason"]
        self.processor_payment_id = d.get("processor_payment_id") or self.processor_payment_id

    @applies("PaymentExpired")
    def _on_expired(self, d: dict) -> None:
        self.status = EXPIRED

    @applies("PaymentCanceled")
    def _on_canceled(self, d: dict) -> None:
        self.status = CANCELED

    @applies("LatePaymentReceived")
    def _on_late(self, d: dict) -> None:
        self.late = True
        self.late_amount = Decimal(d["amount"])
        self.seen.add(d["processor_event_id"])
        self.processor_payment_id = d["processor_payment_id"] or self.processor_payment_id

    @applies("RefundRequested")
    def _on_refund_requested(self, d: dict) -> None:
        self.refund_requests[d["request_id"]] = {
            "amount": Decimal(d["amount"]),
            "reason": d["reason"],
            "late": d.get("late", False),
            "void": d.get("void", False),
            "status": "requested",
        }

    @applies("RefundFailed")
    def _on_refund_failed(self, d: dict) -> None:
        request = self.refund_requests.get(d["request_id"])
        if request:
            request["status"] = "failed"
            request["failure"] = d["reason"]

    @applies("LatePaymentRefunded")
    def _on_late_refunded(self, d: dict) -> None:
        self.late_refunded = True
        self.transactions.add(d["refund_id"])
        for request in self.refund_requests.values():
            if request.get("late"):
                request["status"] = "succeeded"

    def _reverse(self, d: dict, transaction_id: str) -> None:
        self.transactions.add(transaction_id)
        self.reversed += Decimal(d["amount"])
        self.fee_reversed += Decimal(d["convenience_fee"])
        for alloc in d["allocations"]:
            bill = alloc["bill_number"]
            self.reversed_by_bill[bill] = self.reversed_by_bill.get(bill, ZERO) + Decimal(
                alloc["amount"]
            )

    @applies("PaymentRefunded")
    def _on_refunded(self, d: dict) -> None:
        self._reverse(d, d["refund_id"])
        request = self.refund_requests.get(d.get("request_id") or "")
        if request:
            request["status"] = "succeeded"
        if self.status in (SUCCEEDED, PARTIALLY_REFUNDED):
            full = d["full"] or self.reversed >= self.amount_total
            self.status = REFUNDED if full else PARTIALLY_REFUNDED

    @applies("PaymentReturned")
    def _on_returned(self, d: dict) -> None:
        self._reverse(d, d["transaction_id"])
        self.status = RETURNED

    @applies("PaymentChargedBack")
    def _on_charged_back(self, d: dict) -> None:
        self._reverse(d, d["transaction_id"])
        self.status = CHARGED_BACK
