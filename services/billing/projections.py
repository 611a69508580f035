"""Read models of the billing service, rebuilt from its events (and consumed ones).

Every projection is inline: a query after a command sees its effect.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from shared.events import Envelope
from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()
Money = sa.Numeric(14, 2)
Units = sa.Numeric(14, 3)

# -- what billing knows of accounts and customers (from the accounts service) -------------

accounts = sa.Table(
    "billing_accounts",
    metadata,
    sa.Column("account_number", sa.String(30), primary_key=True),
    sa.Column("customer_id", sa.String(30), index=True),
    sa.Column("cycle", sa.String(20)),
    sa.Column("status", sa.String(20)),
    sa.Column("service_address", sa.String(300)),
    sa.Column("parcel_id", sa.String(50)),
    sa.Column("services", sa.JSON),
    sa.Column("source_at", sa.DateTime(timezone=True)),
    sa.Index("ix_billing_accounts_cycle", "cycle", "account_number"),
)

customers = sa.Table(
    "billing_customers",
    metadata,
    sa.Column("customer_id", sa.String(30), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("source_at", sa.DateTime(timezone=True)),
)

# -- bills --------------------------------------------------------------------------------

bills = sa.Table(
    "bills",
    metadata,
    sa.Column("bill_number", sa.String(30), primary_key=True),
    sa.Column("bill_number_int", sa.BigInteger, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("bill_type", sa.String(30), nullable=False),
    sa.Column("description", sa.String(100), nullable=False),
    sa.Column("account_number", sa.String(30), index=True),
    sa.Column("customer_id", sa.String(30), nullable=False),
    sa.Column("customer_name", sa.String(200), nullable=False),
    sa.Column("service_address", sa.String(300)),
    sa.Column("cycle", sa.String(20)),
    sa.Column("statement_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("bill_year", sa.Integer, nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("penalty", Money, nullable=False),
    sa.Column("paid", Money, nullable=False),
    sa.Column("balance_due", Money, nullable=False),
    sa.Column("late_penalty", sa.Boolean, nullable=False),
    sa.Column("last_posted", sa.Date),
    sa.Column("issued_via", sa.String(10), nullable=False),
    sa.Column("run_id", sa.String(80)),
    sa.Column("fingerprint", sa.String(64)),
    # The bill as issued (lines, reads, statement block) stays in its BillIssued event.
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    # A billing run bills an account once, even if something went badly wrong.
    sa.UniqueConstraint("run_id", "account_number", name="uq_bills_run_account"),
    # Customers' invoices are general billing's; utility bills are found by account.
    sa.Index(
        "ix_bills_general_customer",
        "customer_id",
        postgresql_where=sa.text("kind = 'general'"),
        sqlite_where=sa.text("kind = 'general'"),
    ),
)

balance_changes = sa.Table(
    "bill_balance_changes",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("bill_number", sa.String(30), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),  # in the bill's stream: the true order
    sa.Column("account_number", sa.String(30), index=True),
    sa.Column("customer_id", sa.String(30)),
    sa.Column("payment_id", sa.String(80)),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("change", Money, nullable=False),
    sa.Column("balance_due", Money, nullable=False),
    sa.Column("posted_on", sa.Date, nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
)

# -- meter reads ----------------------------------------------------------------------------

meter_reads = sa.Table(
    "meter_reads",
    metadata,
    sa.Column("meter_number", sa.String(40), primary_key=True),
    sa.Column("read_date", sa.Date, primary_key=True),
    sa.Column("account_number", sa.String(30), nullable=False),
    sa.Column("service_code", sa.String(20), nullable=False),
    sa.Column("previous_read_date", sa.Date, nullable=False),
    sa.Column("previous_reading", Units, nullable=False),
    sa.Column("reading", Units, nullable=False),
    sa.Column("usage_units", Units, nullable=False),
    sa.Column("read_type", sa.String(10), nullable=False),
    sa.Column("note", sa.String(200)),
    sa.Column("billed_bill_number", sa.String(30)),
    sa.Index("ix_meter_reads_account", "account_number", "service_code", "read_date"),
)

# -- payments: ledger postings and in-flight checkouts ---------------------------------------

ledger = sa.Table(
    "ledger_postings",
    metadata,
    sa.Column("posting_id", sa.String(60), primary_key=True),
    sa.Column("posting_date", sa.Date, nullable=False, index=True),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("payment_id", sa.String(80), nullable=False, index=True),
    sa.Column("reversal_id", sa.String(80)),
    sa.Column("confirmation_number", sa.String(80)),
    sa.Column("paid_at", sa.DateTime(timezone=True)),
    sa.Column("bill_number", sa.String(30)),
    sa.Column("account_number", sa.String(30)),
    sa.Column("customer_id", sa.String(30)),
    sa.Column("amount", Money, nullable=False),
)

checkouts = sa.Table(
    "checkouts",
    metadata,
    sa.Column("checkout_id", sa.String(80), primary_key=True),
    sa.Column("payment_id", sa.String(80), index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
)

# Payments the processor is still settling (PaymentPending), whatever arrived first.
settling = sa.Table(
    "settling_payments",
    metadata,
    sa.Column("payment_id", sa.String(80), primary_key=True),
)

checkout_bills = sa.Table(
    "checkout_bills",
    metadata,
    sa.Column("checkout_id", sa.String(80), primary_key=True),
    sa.Column("bill_number", sa.String(30), primary_key=True),
    sa.Column("amount", Money),
    sa.Index("ix_checkout_bills_bill", "bill_number"),
)

# -- runs, numbering and imports -----------------------------------------------------------

runs = sa.Table(
    "billing_runs",
    metadata,
    sa.Column("run_id", sa.String(80), primary_key=True),
    sa.Column("cycle", sa.String(20), nullable=False),
    sa.Column("statement_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("billed", sa.Integer, nullable=False),
    sa.Column("exceptions", sa.Integer, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("last_account", sa.String(30)),
    sa.Column("first_bill_number", sa.BigInteger),
    sa.Column("last_bill_number", sa.BigInteger),
    sa.Column("schedule_sha", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
)

run_exceptions = sa.Table(
    "billing_run_exceptions",
    metadata,
    sa.Column("run_id", sa.String(80), primary_key=True),
    sa.Column("account_number", sa.String(30), primary_key=True),
    sa.Column("reason", sa.String(300), nullable=False),
)

sequences = sa.Table(
    "bill_number_sequences",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("last_value", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

imports = sa.Table(
    "billing_imports",
    metadata,
    sa.Column("import_id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("filename", sa.String(300)),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
)


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _bill_number_int(number: str) -> int | None:
    return int(number) if number.isdigit() and len(number) < 19 else None


class AccountsProjection(Projection):
    """Accounts and customers as billing needs them to bill: cycle, services, meters, names.

    accounts sends full records (AccountChanged carries the whole account), so the
    latest record wins, by the time of its event, whatever order they arrive in.
    """

    name = "accounts"
    version = 1
    tables = (accounts, customers)

    @handles("accounts.AccountImported", "accounts.AccountChanged")
    def account(self, w: Writer, e: Envelope) -> None:
        d = e.data
        number = _norm(d.get("account_number"))
        if not number:
            return
        address = d.get("service_address")
        if address and d.get("service_city"):
            place = " ".join(x for x in (d.get("service_state"), d.get("service_zip")) if x)
            address = f"{address}, {d['service_city']}" + (f", {place}" if place else "")
        w.upsert(
            self.t.billing_accounts,
            {
                "account_number": number,
                "customer_id": _norm(d.get("customer_id")) or None,
                "cycle": None if d.get("cycle") is None else str(d["cycle"]).strip(),
                "status": d.get("status"),
                "service_address": address,
                "parcel_id": d.get("parcel_id"),
                "services": d.get("services") or [],
                "source_at": e.occurred_at,
            },
            key=["account_number"],
            newer="source_at",
        )

    @handles("accounts.CustomerImported", "accounts.CustomerChanged")
    def customer(self, w: Writer, e: Envelope) -> None:
        customer_id = _norm(e.data.get("customer_id"))
        name = e.data.get("name")
        if not customer_id or not name:
            return
        w.upsert(
            self.t.billing_customers,
            {"customer_id": customer_id, "name": name, "source_at": e.occurred_at},
            key=["customer_id"],
            newer="source_at",
        )


def _norm(value: Any) -> str:
    from services.billing.domain.values import normalize_number

    return normalize_number(value) if value is not None else ""


class BillsProjection(Projection):
    """Bills with their balances and balance history."""

    name = "bills"
    version = 1
    tables = (bills, balance_changes)

    @handles("BillIssued")
    def issued(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.bills,
            {
                "bill_number": d["bill_number"],
                "bill_number_int": _bill_number_int(d["bill_number"]),
                "kind": d["kind"],
                "bill_type": d["bill_type"],
                "description": d["description"],
                "account_number": d.get("account_number"),
                "customer_id": d["customer_id"],
                "customer_name": d["customer_name"],
                "service_address": d.get("service_address"),
                "cycle": d.get("cycle"),
                "statement_date": _date(d["statement_date"]),
                "due_date": _date(d["due_date"]),
                "bill_year": d["bill_year"],
                "total": Decimal(d["total"]),
                "penalty": Decimal(0),
                "paid": Decimal(0),
                "balance_due": Decimal(d["balance_due"]),
                "late_penalty": bool(d["late_penalty"]),
                "last_posted": None,
                "issued_via": d["issued_via"],
                "run_id": d.get("run_id"),
                "fingerprint": d.get("fingerprint"),
                "issued_at": e.occurred_at,
            },
        )

    @handles("BillBalanceChanged")
    def balance_changed(self, w: Writer, e: Envelope) -> None:
        d = e.data
        change = Decimal(d["change"])
        t = self.t.bills
        values: dict[str, Any] = {"balance_due": Decimal(d["balance_due"])}
        if d["reason"] == "penalty":
            values["penalty"] = t.c.penalty + change
        else:
            values["paid"] = t.c.paid - change
            if d["reason"] in ("payment", "legacy_payment"):
                values["last_posted"] = sa.func.coalesce(
                    sa.case((t.c.last_posted > _date(d["posted_on"]), t.c.last_posted)),
                    _date(d["posted_on"]),
                )
        w.update(t, {"bill_number": d["bill_number"]}, values)
        w.insert(
            self.t.bill_balance_changes,
            {
                "event_id": e.event_id,
                "bill_number": d["bill_number"],
                "version": e.version,
                "account_number": d.get("account_number"),
                "customer_id": d.get("customer_id"),
                "payment_id": d.get("payment_id"),
                "reason": d["reason"],
                "change": change,
                "balance_due": Decimal(d["balance_due"]),
                "posted_on": _date(d["posted_on"]),
                "posted_at": e.occurred_at,
            },
        )


class ReadsProjection(Projection):
    """Meter reads on record, and which bill billed each: the billed ones are the
    account's billed consumption history (every bill lists each read it billed)."""

    name = "reads"
    version = 1
    tables = (meter_reads,)

    @handles("MeterReadsRecorded")
    def recorded(self, w: Writer, e: Envelope) -> None:
        for read in e.data["reads"]:
            w.upsert(self.t.meter_reads, _read_row(read), key=["meter_number", "read_date"])

    @handles("BillIssued")
    def billed(self, w: Writer, e: Envelope) -> None:
        for read in e.data.get("reads") or []:
            row = _read_row({**read, "account_number": e.data.get("account_number") or ""})
            row["billed_bill_number"] = e.data["bill_number"]
            w.upsert(self.t.meter_reads, row, key=["meter_number", "read_date"])


def _read_row(read: dict[str, Any]) -> dict[str, Any]:
    return {
        "meter_number": read["meter_number"],
        "read_date": _date(read["read_date"]),
        "account_number": read["account_number"],
        "service_code": read["service_code"],
        "previous_read_date": _date(read["previous_read_date"]),
        "previous_reading": Decimal(read["previous_reading"]),
        "reading": Decimal(read["reading"]),
        "usage_units": Decimal(read["usage_units"]),
        "read_type": read["read_type"],
        "note": read.get("note"),
    }


class LedgerProjection(Projection):
    """Postings for the city's ledger: payments and reversals, one row per bill."""

    name = "ledger"
    version = 1
    tables = (ledger,)

    @handles("PaymentApplied")
    def applied(self, w: Writer, e: Envelope) -> None:
        self._rows(w, e, "payment", Decimal(1))

    @handles("PaymentReversed")
    def reversed(self, w: Writer, e: Envelope) -> None:
        self._rows(w, e, e.data["kind"], Decimal(-1))

    def _rows(self, w: Writer, e: Envelope, kind: str, sign: Decimal) -> None:
        d = e.data
        paid_at = dt.datetime.fromisoformat(d["paid_at"]) if d.get("paid_at") else None
        common = {
            "posting_date": _date(d["posted_on"]),
            "posted_at": e.occurred_at,
            "kind": kind,
            "payment_id": d["payment_id"],
            "reversal_id": d.get("reversal_id"),
            "confirmation_number": d.get("confirmation_number"),
            "paid_at": paid_at,
        }
        placed = Decimal(0)
        for i, item in enumerate(d["allocations"]):
            placed += Decimal(item["amount"])
            w.insert(
                self.t.ledger_postings,
                {
                    **common,
                    "posting_id": f"{e.event_id}:{i:04d}",
                    "bill_number": item["bill_number"],
                    "account_number": item.get("account_number"),
                    "customer_id": item.get("customer_id"),
                    "amount": sign * Decimal(item["amount"]),
                },
            )
        # PaymentApplied says what it could not place; a reversal takes that back first.
        unapplied = Decimal(d["unapplied"]) if "unapplied" in d else Decimal(d["amount"]) - placed
        if unapplied > 0:
            w.insert(
                self.t.ledger_postings,
                {
                    **common,
                    "posting_id": f"{e.event_id}:u",
                    "kind": "unapplied" if sign > 0 else f"{kind}_unapplied",
                    "bill_number": None,
                    "account_number": None,
                    "customer_id": None,
                    "amount": sign * unapplied,
                },
            )


class CheckoutsProjection(Projection):
    """Checkouts in flight at the processor: the "pending web payment" flag."""

    name = "checkouts"
    version = 1
    tables = (checkouts, checkout_bills, settling)

    @handles("payments.CheckoutOpened")
    def opened(self, w: Writer, e: Envelope) -> None:
        checkout_id = str(e.data["checkout_id"])
        payment_id = e.data.get("payment_id")
        t = self.t.checkouts
        if w.one(sa.select(t.c.status).where(t.c.checkout_id == checkout_id)) is not None:
            return  # closed (or seen) before it was opened: delivery order is not guaranteed
        expires = e.data.get("expires_at")
        st = self.t.settling_payments
        settling_already = payment_id is not None and (
            w.one(sa.select(st.c.payment_id).where(st.c.payment_id == payment_id)) is not None
        )
        w.insert(
            t,
            {
                "checkout_id": checkout_id,
                "payment_id": payment_id,
                "status": "pending" if settling_already else "open",
                "expires_at": dt.datetime.fromisoformat(expires) if expires else None,
            },
        )
        for item in e.data.get("bills") or []:
            w.upsert(
                self.t.checkout_bills,
                {
                    "checkout_id": checkout_id,
                    "bill_number": _norm(item["bill_number"]),
                    "amount": Decimal(str(item["amount"])) if item.get("amount") else None,
                },
                key=["checkout_id", "bill_number"],
            )

    @handles("payments.PaymentPending")
    def settling(self, w: Writer, e: Envelope) -> None:
        # The processor took the payment but has not settled it: in flight past the expiry.
        payment_id = str(e.data["payment_id"])
        w.upsert(self.t.settling_payments, {"payment_id": payment_id}, key=["payment_id"])
        t = self.t.checkouts
        w.execute(
            t.update()
            .where(t.c.payment_id == payment_id, t.c.status == "open")
            .values(status="pending")
        )

    @handles("payments.CheckoutClosed")
    def closed(self, w: Writer, e: Envelope) -> None:
        status = "pending" if e.data.get("outcome") == "pending" else "closed"
        self._set(w, str(e.data["checkout_id"]), status)

    @handles("payments.PaymentSucceeded", "payments.PaymentFailed")
    def settled(self, w: Writer, e: Envelope) -> None:
        if e.data.get("checkout_id"):
            self._set(w, str(e.data["checkout_id"]), "closed")

    def _set(self, w: Writer, checkout_id: str, status: str) -> None:
        t = self.t.checkouts
        row = w.one(sa.select(t.c.status).where(t.c.checkout_id == checkout_id))
        if row is None:
            w.insert(
                t,
                {
                    "checkout_id": checkout_id,
                    "payment_id": None,
                    "status": status,
                    "expires_at": None,
                },
            )
        elif row["status"] != "closed":
            w.update(t, {"checkout_id": checkout_id}, {"status": status})


class RunsProjection(Projection):
    """Billing runs, their exceptions, bill numbering and imports."""

    name = "runs"
    version = 1
    tables = (runs, run_exceptions, sequences, imports)

    @handles("BillingRunStarted")
    def started(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.billing_runs,
            {
                "run_id": d["run_id"],
                "cycle": d["cycle"],
                "statement_date": _date(d["statement_date"]),
                "due_date": _date(d["due_date"]),
                "status": "running",
                "version": e.version,
                "batches": 0,
                "billed": 0,
                "exceptions": 0,
                "amount": Decimal(0),
                "last_account": None,
                "first_bill_number": None,
                "last_bill_number": None,
                "schedule_sha": d["schedule_sha"],
                "started_at": e.occurred_at,
                "completed_at": None,
            },
        )

    @handles("BillingRunBatchCompleted")
    def batch(self, w: Writer, e: Envelope) -> None:
        d = e.data
        t = self.t.billing_runs
        values: dict[str, Any] = {
            "version": e.version,
            "batches": t.c.batches + 1,
            "billed": t.c.billed + d["billed"],
            "exceptions": t.c.exceptions + len(d.get("exceptions") or []),
            "amount": t.c.amount + Decimal(d["amount"]),
            "last_account": d["last_account"],
        }
        if d.get("first_bill_number") is not None:
            values["first_bill_number"] = sa.func.coalesce(
                t.c.first_bill_number, d["first_bill_number"]
            )
            values["last_bill_number"] = d["last_bill_number"]
        w.update(t, {"run_id": d["run_id"]}, values)
        for item in d.get("exceptions") or []:
            w.upsert(
                self.t.billing_run_exceptions,
                {
                    "run_id": d["run_id"],
                    "account_number": item["account_number"],
                    "reason": item["reason"][:300],
                },
                key=["run_id", "account_number"],
            )

    @handles("BillingRunCompleted")
    def completed(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.billing_runs,
            {"run_id": e.data["run_id"]},
            {"status": "completed", "version": e.version, "completed_at": e.occurred_at},
        )

    @handles("BillNumbersAllocated")
    def numbers(self, w: Writer, e: Envelope) -> None:
        w.upsert(
            self.t.bill_number_sequences,
            {"name": e.stream_id, "last_value": e.data["last"], "version": e.version},
            key=["name"],
        )

    @handles("MeterReadsRecorded")
    def reads_imported(self, w: Writer, e: Envelope) -> None:
        self._import(w, e, "reads", len(e.data["reads"]))

    @handles("BillsImported")
    def bills_imported(self, w: Writer, e: Envelope) -> None:
        self._import(w, e, "bills", len(e.data["bills"]), e.data.get("filename"))

    def _import(
        self, w: Writer, e: Envelope, kind: str, rows: int, filename: str | None = None
    ) -> None:
        t = self.t.billing_imports
        import_id = e.data["import_id"]
        row = w.one(sa.select(t).where(t.c.import_id == import_id))
        if row is None:
            w.insert(
                t,
                {
                    "import_id": import_id,
                    "kind": kind,
                    "filename": filename,
                    "chunks": e.version,
                    "rows": rows,
                    "imported_at": e.occurred_at,
                },
            )
            w.flush()
        else:
            w.update(
                t,
                {"import_id": import_id},
                {"chunks": max(row["chunks"], e.version), "rows": row["rows"] + rows},
            )


PROJECTIONS = [
    AccountsProjection,
    BillsProjection,
    ReadsProjection,
    LedgerProjection,
    CheckoutsProjection,
    RunsProjection,
]
