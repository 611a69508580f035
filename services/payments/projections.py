"""Read models of the payments service, rebuilt from its events and billing's.

* bills: what billing says each bill owes (from billing's events), the payments of ours
  billing has not posted yet, and which open payment holds a bill;
* carts; payments with their items, refund requests and money movements (settlement);
* automatic payments and their scheduled charges.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from services.payments.domain import events  # noqa: F401 - registers the event schemas
from shared.events import Envelope
from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()
MONEY = sa.Numeric(12, 2)
TS = sa.DateTime(timezone=True)

bills = sa.Table(
    "bills",
    metadata,
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("bill_type", sa.String(40), nullable=False, server_default="utility"),
    sa.Column("account_number", sa.String(40), nullable=False, index=True),
    sa.Column("customer_id", sa.String(40), nullable=True, index=True),
    sa.Column("statement_date", sa.Date, nullable=True),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("balance_due", MONEY, nullable=False),
    sa.Column("issued", sa.Boolean, nullable=False, server_default=sa.false()),
    # Which of billing's events set the balance, so an older one arriving late loses.
    sa.Column("balance_stream", sa.String(200), nullable=False),
    sa.Column("balance_version", sa.Integer, nullable=False),
    sa.Column("balance_at", TS, nullable=False),
)
unposted = sa.Table(
    "unposted_payments",
    metadata,
    sa.Column("payment_id", sa.String(60), primary_key=True),
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("amount", MONEY, nullable=False),
)
holds = sa.Table(
    "bill_holds",
    metadata,
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("payment_id", sa.String(60), nullable=False),
    sa.Column("owner", sa.String(140), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("expires_at", TS, nullable=True),
)
cart_items = sa.Table(
    "cart_items",
    metadata,
    sa.Column("owner", sa.String(140), primary_key=True),
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("amount", MONEY, nullable=True),  # NULL: the balance due
    sa.Column("added_at", TS, nullable=False),
)
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.String(60), primary_key=True),
    sa.Column("checkout_id", sa.String(60), nullable=True, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(140), nullable=False, index=True),
    sa.Column("user_id", sa.String(100), nullable=True, index=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("billing", sa.JSON, nullable=True),
    sa.Column("status", sa.String(30), nullable=False, index=True),
    sa.Column("subtotal", MONEY, nullable=False),
    sa.Column("convenience_fee", MONEY, nullable=False),
    sa.Column("amount_total", MONEY, nullable=False),
    sa.Column("reversed", MONEY, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=True),
    sa.Column("return_url", sa.String(2000), nullable=True),
    sa.Column("session_id", sa.String(100), nullable=True, index=True),
    sa.Column("payment_url", sa.String(2000), nullable=True),
    sa.Column("processor_payment_id", sa.String(100), nullable=True, index=True),
    sa.Column("confirmation_number", sa.String(40), nullable=True, unique=True),
    sa.Column("paid_at", TS, nullable=True),
    sa.Column("card_brand", sa.String(30), nullable=True),
    sa.Column("card_last4", sa.String(4), nullable=True),
    sa.Column("failure_reason", sa.String(500), nullable=True),
    sa.Column("late_status", sa.String(20), nullable=True),  # received | refunded
    sa.Column("late_reason", sa.String(1000), nullable=True),
    sa.Column("closed_reason", sa.String(500), nullable=True),
)
payment_items = sa.Table(
    "payment_items",
    metadata,
    sa.Column("payment_id", sa.String(60), primary_key=True),
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("account_number", sa.String(40), nullable=True),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)
refund_requests = sa.Table(
    "refund_requests",
    metadata,
    sa.Column("request_id", sa.String(80), primary_key=True),
    sa.Column("payment_id", sa.String(60), nullable=False, index=True),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("void", sa.Boolean, nullable=False),
    sa.Column("requested_by", sa.String(140), nullable=True),
    sa.Column("requested_at", TS, nullable=False),
    sa.Column("failure", sa.String(500), nullable=True),
)
# Money that moved at the processor, as we recorded it: what settlement compares.
movements = sa.Table(
    "money_movements",
    metadata,
    sa.Column("transaction_id", sa.String(100), primary_key=True),  # the processor's id
    sa.Column("payment_id", sa.String(60), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # charge|refund|void|return|chargeback
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("day", sa.Date, nullable=False, index=True),
)
autopay = sa.Table(
    "autopay",
    metadata,
    sa.Column("account_number", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("card_token", sa.String(100), nullable=False),
    sa.Column("card_brand", sa.String(30), nullable=False),
    sa.Column("card_last4", sa.String(4), nullable=False),
    sa.Column("card_expires", sa.String(7), nullable=False),
    sa.Column("days_before", sa.Integer, nullable=False),
    sa.Column("enrolled_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("card_warning_sent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_failure_bill", sa.String(40), nullable=True),
    sa.Column("last_failure_reason", sa.String(500), nullable=True),
    sa.Column("last_failure_at", TS, nullable=True),
)
autopay_charges = sa.Table(
    "autopay_charges",
    metadata,
    sa.Column("account_number", sa.String(40), primary_key=True),
    sa.Column("bill_number", sa.String(40), primary_key=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("charge_date", sa.Date, nullable=False, index=True),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("payment_id", sa.String(60), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)


def _d(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


class BillsProjection(Projection):
    """Bills as billing reports them, less our payments it has not posted, and their holds."""

    name = "bills"
    version = 1
    tables = (bills, unposted, holds)

    def _set_balance(self, w: Writer, e: Envelope, fields: dict, balance: str | None) -> None:
        t = self.t.bills
        row = w.one(sa.select(t).where(t.c.bill_number == e.data["bill_number"]))
        stamp = {
            "balance_stream": e.stream_id,
            "balance_version": e.version,
            "balance_at": e.occurred_at,
        }
        if row is None:
            w.insert(
                t,
                {
                    "bill_number": e.data["bill_number"],
                    "bill_type": fields.pop("bill_type", None) or "utility",
                    "account_number": fields.pop("account_number", None) or "",
                    "balance_due": _d(balance) or Decimal("0"),
                    **fields,
                    **stamp,
                },
            )
            return
        newer = (
            e.version > row["balance_version"]
            if e.stream_id == row["balance_stream"]
            else e.occurred_at >= _aware(row["balance_at"])
        )
        values = {k: v for k, v in fields.items() if v is not None}
        if newer and balance is not None:
            values.update(balance_due=_d(balance), **stamp)
        if values:
            w.update(t, {"bill_number": e.data["bill_number"]}, values)

    @handles("billing.BillIssued")
    def issued(self, w: Writer, e: Envelope) -> None:
        d = e.data
        self._set_balance(
            w,
            e,
            {
                "bill_type": str(d.get("bill_type") or "utility").lower(),
                "account_number": d.get("account_number"),
                "customer_id": d.get("customer_id"),
                "statement_date": _date(d.get("statement_date")),
                "due_date": _date(d.get("due_date")),
                "issued": True,
            },
            d.get("balance_due", d.get("total")),
        )

    @handles("billing.BillBalanceChanged")
    def balance_changed(self, w: Writer, e: Envelope) -> None:
        d = e.data
        self._set_balance(
            w,
            e,
            {"account_number": d.get("account_number"), "customer_id": d.get("customer_id")},
            d.get("balance_due"),
        )
        if d.get("payment_id"):
            # Billing has posted that payment: the balance above now includes it.
            w.delete(
                self.t.unposted_payments,
                {"payment_id": d["payment_id"], "bill_number": d["bill_number"]},
            )

    @handles("PaymentSucceeded")
    def paid(self, w: Writer, e: Envelope) -> None:
        for alloc in e.data["allocations"]:
            w.upsert(
                self.t.unposted_payments,
                {
                    "payment_id": e.data["payment_id"],
                    "bill_number": alloc["bill_number"],
                    "amount": Decimal(alloc["amount"]),
                },
                key=["payment_id", "bill_number"],
            )

    @handles("BillHeld")
    def held(self, w: Writer, e: Envelope) -> None:
        w.upsert(
            self.t.bill_holds,
            {
                "bill_number": e.data["bill_number"],
                "payment_id": e.data["payment_id"],
                "owner": e.data["owner"],
                "kind": e.data["kind"],
                "expires_at": _ts(e.data.get("expires_at")),
            },
            key=["bill_number"],
        )

    @handles("BillReleased")
    def released(self, w: Writer, e: Envelope) -> None:
        w.delete(
            self.t.bill_holds,
            {"bill_number": e.data["bill_number"], "payment_id": e.data["payment_id"]},
        )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class CartProjection(Projection):
    name = "carts"
    version = 1
    tables = (cart_items,)

    @handles("CartItemAdded")
    def added(self, w: Writer, e: Envelope) -> None:
        w.upsert(
            self.t.cart_items,
            {
                "owner": e.data["owner"],
                "bill_number": e.data["bill_number"],
                "amount": _d(e.data.get("amount")),
                "added_at": e.occurred_at,
            },
            key=["owner", "bill_number"],
        )

    @handles("CartItemAmountChanged")
    def changed(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.cart_items,
            {"owner": e.data["owner"], "bill_number": e.data["bill_number"]},
            {"amount": _d(e.data.get("amount"))},
        )

    @handles("CartItemRemoved")
    def removed(self, w: Writer, e: Envelope) -> None:
        w.delete(
            self.t.cart_items, {"owner": e.data["owner"], "bill_number": e.data["bill_number"]}
        )


class PaymentsProjection(Projection):
    name = "payments"
    version = 1
    tables = (payments, payment_items, refund_requests, movements)

    def _set(self, w: Writer, e: Envelope, **values) -> None:
        w.update(self.t.payments, {"payment_id": e.data["payment_id"]}, values)

    def _movement(self, w: Writer, txn: str, e: Envelope, kind: str, amount: str, at) -> None:
        when = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)
        w.upsert(
            self.t.money_movements,
            {
                "transaction_id": txn,
                "payment_id": e.data["payment_id"],
                "kind": kind,
                "amount": Decimal(amount),
                "occurred_at": when,
                "day": when.astimezone(dt.UTC).date(),
            },
            key=["transaction_id"],
        )

    @handles("PaymentCreated")
    def created(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.payments,
            {
                "payment_id": d["payment_id"],
                "checkout_id": d.get("checkout_id"),
                "kind": d["kind"],
                "owner": d["owner"],
                "user_id": d.get("user_id"),
                "email": d["email"],
                "billing": d.get("billing"),
                "status": "created",
                "subtotal": Decimal(d["subtotal"]),
                "convenience_fee": Decimal(d["convenience_fee"]),
                "amount_total": Decimal(d["amount_total"]),
                "reversed": Decimal("0"),
                "created_at": e.occurred_at,
                "expires_at": _ts(d.get("expires_at")),
                "return_url": d.get("return_url"),
            },
        )
        for i, alloc in enumerate(d["allocations"]):
            w.insert(
                self.t.payment_items,
                {
                    "payment_id": d["payment_id"],
                    "bill_number": alloc["bill_number"],
                    "account_number": alloc["account_number"],
                    "amount": Decimal(alloc["amount"]),
                    "position": i,
                },
            )

    @handles("PaymentSessionCreated")
    def session(self, w: Writer, e: Envelope) -> None:
        self._set(w, e, session_id=e.data["session_id"], payment_url=e.data["payment_url"])

    @handles("PaymentPending")
    def pending(self, w: Writer, e: Envelope) -> None:
        values = {"status": "pending"}
        if e.data.get("processor_payment_id"):
            values["processor_payment_id"] = e.data["processor_payment_id"]
        self._set(w, e, **values)

    @handles("PaymentSucceeded")
    def succeeded(self, w: Writer, e: Envelope) -> None:
        d = e.data
        self._set(
            w,
            e,
            status="succeeded",
            confirmation_number=d["confirmation_number"],
            paid_at=_ts(d["paid_at"]),
            processor_payment_id=d["processor_payment_id"],
            card_brand=d.get("card_brand"),
            card_last4=d.get("card_last4"),
        )
        self._movement(w, d["processor_payment_id"], e, "charge", d["amount_total"], d["paid_at"])

    @handles("PaymentFailed")
    def failed(self, w: Writer, e: Envelope) -> None:
        values = {"status": "failed", "failure_reason": e.data["reason"]}
        if e.data.get("processor_payment_id"):
            values["processor_payment_id"] = e.data["processor_payment_id"]
        self._set(w, e, **values)

    @handles("PaymentExpired")
    def expired(self, w: Writer, e: Envelope) -> None:
        self._set(w, e, status="expired")

    @handles("PaymentCanceled")
    def canceled(self, w: Writer, e: Envelope) -> None:
        self._set(w, e, status="canceled", closed_reason=e.data["reason"])

    @handles("LatePaymentReceived")
    def late(self, w: Writer, e: Envelope) -> None:
        self._set(w, e, late_status="received", processor_payment_id=e.data["processor_payment_id"])
        self._movement(
            w, e.data["processor_payment_id"], e, "charge", e.data["amount"], e.occurred_at
        )

    @handles("RefundRequested")
    def refund_requested(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.refund_requests,
            {
                "request_id": d["request_id"],
                "payment_id": d["payment_id"],
                "amount": Decimal(d["amount"]),
                "reason": d["reason"],
                "status": "requested",
                "late": bool(d.get("late")),
                "void": bool(d.get("void")),
                "requested_by": d.get("requested_by"),
                "requested_at": e.occurred_at,
            },
            key=["request_id"],
        )

    @handles("RefundFailed")
    def refund_failed(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.refund_requests,
            {"request_id": e.data["request_id"]},
            {"status": "failed", "failure": e.data["reason"]},
        )

    @handles("PaymentRefunded")
    def refunded(self, w: Writer, e: Envelope) -> None:
        d = e.data
        row = w.one(
            sa.select(self.t.payments).where(self.t.payments.c.payment_id == d["payment_id"])
        )
        reversed_total = (row["reversed"] if row else Decimal("0")) + Decimal(d["amount"])
        full = d["full"] or (row is not None and reversed_total >= row["amount_total"])
        self._set(
            w, e, status="refunded" if full else "partially_refunded", reversed=reversed_total
        )
        if d.get("request_id"):
            w.update(
                self.t.refund_requests, {"request_id": d["request_id"]}, {"status": "succeeded"}
            )
        kind = "void" if d.get("void") else "refund"
        self._movement(w, d["refund_id"], e, kind, d["amount"], d["refunded_at"])

    @handles("LatePaymentRefunded")
    def late_refunded(self, w: Writer, e: Envelope) -> None:
        d = e.data
        self._set(w, e, late_status="refunded", late_reason=d["reason"])
        w.update(
            self.t.refund_requests,
            {"request_id": f"{d['payment_id']}-late"},
            {"status": "succeeded"},
        )
        self._movement(w, d["refund_id"], e, "refund", d["amount"], d["refunded_at"])

    def _reversal(self, w: Writer, e: Envelope, status: str, kind: str) -> None:
        d = e.data
        row = w.one(
            sa.select(self.t.payments).where(self.t.payments.c.payment_id == d["payment_id"])
        )
        reversed_total = (row["reversed"] if row else Decimal("0")) + Decimal(d["amount"])
        self._set(w, e, status=status, reversed=reversed_total)
        self._movement(w, d["transaction_id"], e, kind, d["amount"], d["occurred_at"])

    @handles("PaymentReturned")
    def returned(self, w: Writer, e: Envelope) -> None:
        self._reversal(w, e, "returned", "return")

    @handles("PaymentChargedBack")
    def charged_back(self, w: Writer, e: Envelope) -> None:
        self._reversal(w, e, "charged_back", "chargeback")


class AutopayProjection(Projection):
    name = "autopay"
    version = 1
    tables = (autopay, autopay_charges)

    def _enrolled(self, w: Writer, e: Envelope, fresh: bool) -> None:
        d = e.data
        row = {
            "account_number": d["account_number"],
            "user_id": d["user_id"],
            "status": "active",
            "email": d["email"],
            "card_token": d["card_token"],
            "card_brand": d["card_brand"],
            "card_last4": d["card_last4"],
            "card_expires": d["card_expires"],
            "days_before": d["days_before"],
            "updated_at": e.occurred_at,
            "card_warning_sent": False,
        }
        if fresh:
            row.update(enrolled_at=e.occurred_at, last_failure_bill=None, last_failure_reason=None)
            row["last_failure_at"] = None
        existing = w.one(
            sa.select(self.t.autopay).where(self.t.autopay.c.account_number == d["account_number"])
        )
        if existing is None:
            row.setdefault("enrolled_at", e.occurred_at)
            w.insert(self.t.autopay, row)
        else:
            w.update(self.t.autopay, {"account_number": d["account_number"]}, row)

    @handles("AutopayEnrolled")
    def enrolled(self, w: Writer, e: Envelope) -> None:
        self._enrolled(w, e, fresh=True)

    @handles("AutopayChanged")
    def card_changed(self, w: Writer, e: Envelope) -> None:
        self._enrolled(w, e, fresh=False)

    @handles("AutopayCancelled")
    def cancelled(self, w: Writer, e: Envelope) -> None:
        account = e.data["account_number"]
        w.update(
            self.t.autopay,
            {"account_number": account},
            {"status": "cancelled", "updated_at": e.occurred_at},
        )
        w.update(
            self.t.autopay_charges,
            {"account_number": account, "status": "scheduled"},
            {"status": "cancelled", "updated_at": e.occurred_at},
        )

    @handles("AutopayScheduled")
    def scheduled(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.autopay_charges,
            {
                "account_number": d["account_number"],
                "bill_number": d["bill_number"],
                "due_date": _date(d["due_date"]),
                "charge_date": _date(d["charge_date"]),
                "amount": Decimal(d["amount"]),
                "status": "scheduled",
                "payment_id": None,
                "reason": None,
                "updated_at": e.occurred_at,
            },
            key=["account_number", "bill_number"],
        )

    def _charge(self, w: Writer, e: Envelope, **values) -> None:
        w.update(
            self.t.autopay_charges,
            {"account_number": e.data["account_number"], "bill_number": e.data["bill_number"]},
            {**values, "updated_at": e.occurred_at},
        )

    @handles("AutopayChargeStarted")
    def started(self, w: Writer, e: Envelope) -> None:
        self._charge(
            w,
            e,
            status="charging",
            payment_id=e.data["payment_id"],
            amount=Decimal(e.data["amount"]),
        )

    @handles("AutopayChargeSucceeded")
    def charged(self, w: Writer, e: Envelope) -> None:
        self._charge(w, e, status="paid")

    @handles("AutopayChargeFailed")
    def charge_failed(self, w: Writer, e: Envelope) -> None:
        self._charge(w, e, status="failed", reason=e.data["reason"])
        w.update(
            self.t.autopay,
            {"account_number": e.data["account_number"]},
            {
                "last_failure_bill": e.data["bill_number"],
                "last_failure_reason": e.data["reason"],
                "last_failure_at": e.occurred_at,
            },
        )

    @handles("AutopayChargeSkipped")
    def skipped(self, w: Writer, e: Envelope) -> None:
        self._charge(w, e, status="skipped", reason=e.data["reason"])

    @handles("CardExpiringSoon")
    def expiring(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.autopay,
            {"account_number": e.data["account_number"]},
            {"card_warning_sent": True},
        )


PROJECTIONS = [BillsProjection, CartProjection, PaymentsProjection, AutopayProjection]
