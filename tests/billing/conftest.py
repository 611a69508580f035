"""Billing fixtures: a real store (SQLite or PostgreSQL), the demo schedule, and builders
of the events billing consumes, shaped as accounts and payments publish them.

Nothing is faked: events go through the kernel's consume path (inbox, inline
projections, handlers) exactly as a delivery from RabbitMQ does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.billing import domain  # noqa: F401 - event schemas
from services.billing.projections import PROJECTIONS
from services.billing.schedule import load_schedule
from shared.events import Envelope
from shared.uow import ServiceStore

DEMO_BILLS = Path(__file__).resolve().parents[2] / "services/billing/demo_data/bills.csv"
_seq = itertools.count(1)


def unique(prefix: str = "") -> str:
    """A fresh number, so that tests never share accounts, meters or bills."""
    return f"{prefix}{uuid.uuid4().int % 10**7 + 10**7}"


@pytest.fixture(scope="session")
def schedule():
    return load_schedule()


def open_billing_store(url: str) -> ServiceStore:
    store = ServiceStore("billing", url, PROJECTIONS, pool_size=4)
    store.migrate()
    return store


@pytest.fixture
def sqlite_store(sqlite_url):
    store = open_billing_store(sqlite_url)
    yield store
    store.dispose()


@pytest.fixture
def pg_store(pg_url):
    store = open_billing_store(pg_url)
    yield store
    store.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory):
    """The billing store on both backends, one per test module: tests use unique numbers."""
    from shared import testing

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('billing') / 'billing.db'}"
        base = None
    else:
        base = request.getfixturevalue("pg_base")
        url = testing.create_database(base)
    s = open_billing_store(url)
    yield s
    s.dispose()
    if base is not None:
        testing.drop_database(base, url)


SEED_NUMBERS = ("98465", "98820", "35932", "28624", "405583", "63295", "63296", "12345")


def seed_file(directory: Path) -> tuple[Path, dict[str, str]]:
    """The demo bills renumbered (bills, account, customers): the seed's figures under a
    fresh identity. Returns the file and {seed number: this copy's number}."""
    import re

    numbers = {old: unique() for old in SEED_NUMBERS}
    text = re.sub(
        r"(?<![\d.-])(" + "|".join(SEED_NUMBERS) + r")(?![\d.-])",
        lambda m: numbers[m.group(1)],
        DEMO_BILLS.read_text(),
    )
    path = directory / f"seed-{numbers['28624']}.csv"
    path.write_text(text)
    return path, numbers


def seed_copy(store, schedule, directory: Path) -> dict[str, str]:
    """Import a renumbered copy of the demo bills; returns the numbers of the copy."""
    from services.billing.import_bills import import_bills

    path, numbers = seed_file(directory)
    import_bills(store, path, schedule=schedule, today=dt.date(2026, 11, 22))
    return numbers


def envelope(
    source: str,
    type_: str,
    data: dict[str, Any],
    *,
    stream_id: str | None = None,
    version: int = 1,
    occurred_at: dt.datetime | None = None,
) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=type_,
        schema_version=1,
        stream_id=stream_id or f"{source}-{next(_seq)}",
        version=version,
        position=next(_seq),
        occurred_at=occurred_at or dt.datetime.now(dt.UTC),
        correlation_id=None,
        causation_id=None,
        actor="system",
        source=source,
        data=data,
    )


def water_services(meter: str, size: str = "1-1/2", code: str = "15000") -> list[dict[str, Any]]:
    names = {
        "15000": "PLEASANTON WATER VAR CHARGE IRRIGATION",
        "15100": "PLEASANTON WATER VAR CHARGE RESIDENTIAL",
    }
    return [
        {
            "code": "10000",
            "name": "PLEASANTON WATER FIXED CHARGE",
            "start_date": "1995-11-13",
            "stop_date": None,
            "status": "ACTIVE",
            "meter_number": meter,
            "meter_size": size,
        },
        {
            "code": code,
            "name": names[code],
            "start_date": "1995-11-13",
            "stop_date": None,
            "status": "ACTIVE",
            "meter_number": meter,
            "meter_size": size,
        },
    ]


def account_imported(
    account_number: str,
    customer_id: str,
    *,
    cycle: str = "1",
    services: list[dict[str, Any]] | None = None,
    meter: str | None = None,
    status: str = "ACTIVE",
    changed: bool = False,
    occurred_at: dt.datetime | None = None,
) -> Envelope:
    """AccountImported (or AccountChanged: full record and what changed), as accounts sends it."""
    data = {
        "account_number": account_number,
        "customer_id": customer_id,
        "service_address": "0 ALAMEDA DR - IRR",
        "service_city": "PLEASANTON",
        "service_state": "CA",
        "service_zip": "94566-0000",
        "parcel_id": None,
        "status": status,
        "cycle": cycle,
        "services": services if services is not None else water_services(meter or unique()),
    }
    if changed:
        data["changed"] = ["services"]
    return envelope(
        "accounts",
        "AccountChanged" if changed else "AccountImported",
        data,
        stream_id=f"account-{account_number}",
        occurred_at=occurred_at,
    )


def customer_imported(customer_id: str, name: str) -> Envelope:
    return envelope(
        "accounts",
        "CustomerImported",
        {
            "customer_id": customer_id,
            "name": name,
            "mailing_address": {
                "line1": "123 MAIN STREET",
                "line2": None,
                "city": "PLEASANTON",
                "state": "CA",
                "zip": "94566",
            },
            "email": None,
        },
        stream_id=f"customer-{customer_id}",
    )


def payment_succeeded(
    allocations: list[tuple[str, str | None, str]],
    *,
    payment_id: str | None = None,
    checkout_id: str | None = None,
) -> Envelope:
    """allocations: (bill_number, account_number, amount)."""
    total = sum((Decimal(a) for _, _, a in allocations), Decimal(0))
    payment_id = payment_id or f"pay_{uuid.uuid4().hex[:12]}"
    return envelope(
        "payments",
        "PaymentSucceeded",
        {
            "payment_id": payment_id,
            "checkout_id": checkout_id,
            "confirmation_number": f"C{payment_id[-8:].upper()}",
            "owner": "user:ana",
            "user_id": "ana",
            "email": "ana@example.com",
            "amount_total": str(total + Decimal("2.95")),
            "convenience_fee": "2.95",
            "allocations": [
                {"bill_number": b, "account_number": a, "amount": amt} for b, a, amt in allocations
            ],
            "paid_at": dt.datetime.now(dt.UTC).isoformat(),
        },
        stream_id=f"payment-{payment_id}",
    )


def payment_reversed(
    type_: str,
    payment_id: str,
    amount: str | None = None,
    allocations: list | None = None,
    convenience_fee: str = "0.00",
) -> Envelope:
    """A refund, return or chargeback as payments sends it: `amount` holds the fee given
    back too; `allocations` [(bill, amount)] say what each bill gives back."""
    data: dict[str, Any] = {
        "payment_id": payment_id,
        "reason": "test",
        "email": "ana@example.com",
        "owner": "user:ana",
        "convenience_fee": convenience_fee,
    }
    if amount is not None:
        data["amount"] = amount
    if allocations is not None:
        data["allocations"] = [
            {"bill_number": b, "account_number": None, "amount": a} for b, a in allocations
        ]
    return envelope("payments", type_, data, stream_id=f"payment-{payment_id}")


CONSUMERS = {
    "AccountImported": "billing.on_account_imported",
    "AccountChanged": "billing.on_account_changed",
    "CustomerImported": "billing.on_customer_imported",
    "CustomerChanged": "billing.on_customer_changed",
    "CheckoutOpened": "billing.on_checkout_opened",
    "CheckoutClosed": "billing.on_checkout_closed",
    "PaymentPending": "billing.on_payment_pending",
    "PaymentFailed": "billing.on_payment_failed",
    "PaymentSucceeded": "billing.on_payment_succeeded",
    "PaymentRefunded": "billing.on_payment_refunded",
    "PaymentReturned": "billing.on_payment_returned",
    "PaymentChargedBack": "billing.on_payment_charged_back",
}
REVERSALS = {
    "PaymentRefunded": "refund",
    "PaymentReturned": "return",
    "PaymentChargedBack": "chargeback",
}


def deliver(store: ServiceStore, env: Envelope, schedule) -> bool:
    """Handle a consumed event as the service's consumer does: inbox, projections, handler."""
    from services.billing import handlers

    def work(uow):
        if env.type == "PaymentSucceeded":
            handlers.apply_payment(uow, env, schedule)
        elif env.type in REVERSALS:
            handlers.reverse_payment(uow, env, REVERSALS[env.type], schedule)

    return store.consume(CONSUMERS[env.type], env, work)
