"""Every billing projection rebuilt from the log (and the inbox of consumed events) is the same."""

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.billing.import_reads import import_reads
from services.billing.projections import PROJECTIONS
from services.billing.run import billing_run
from shared.projection import rebuild
from tests.billing.conftest import (
    account_imported,
    customer_imported,
    deliver,
    envelope,
    payment_reversed,
    payment_succeeded,
    seed_copy,
    unique,
    water_services,
)

pytestmark = pytest.mark.integration
TODAY = dt.date(2026, 11, 22)


def snapshot(store):
    out = {}
    with store.read() as conn:
        for cls in PROJECTIONS:
            for table in cls.tables:
                keys = [c for c in table.primary_key.columns]
                rows = conn.execute(sa.select(table).order_by(*keys)).mappings()
                out[table.name] = [dict(r) for r in rows]
    return out


def test_rebuilt_projections_equal_the_live_ones(store, schedule, tmp_path: Path):
    n = seed_copy(store, schedule, tmp_path)
    paid = payment_succeeded(
        [(n["98820"], n["28624"], "134.46"), (n["98465"], n["28624"], "50.00")]
    )
    deliver(store, paid, schedule)
    deliver(
        store,
        payment_reversed("PaymentReturned", paid.data["payment_id"], amount="50.00"),
        schedule,
    )
    co = unique("co")
    deliver(
        store,
        envelope(
            "payments",
            "CheckoutOpened",
            {
                "checkout_id": co,
                "owner": "user:ana",
                "bills": [{"bill_number": n["98465"], "amount": "127.11"}],
                "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat(),
            },
        ),
        schedule,
    )
    cycle, acct, meter = unique("c"), unique(), unique("M")
    deliver(store, customer_imported("77", "ANA"), schedule)
    deliver(
        store,
        account_imported(acct, "77", cycle=cycle, services=water_services(meter, "5/8", "15100")),
        schedule,
    )
    deliver(
        store,
        account_imported(
            acct, "77", cycle=cycle, services=water_services(meter, "3/4", "15100"), changed=True
        ),
        schedule,
    )
    reads = tmp_path / "reads.csv"
    reads.write_text(
        "account_number,service_code,meter_number,previous_read_date,previous_reading,read_date,reading\n"
        f"{acct},15100,{meter},2026-09-01,10,2026-11-01,30\n"
    )
    import_reads(store, reads, schedule=schedule, today=TODAY)
    billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 11, 5), schedule=schedule, today=TODAY
    )

    before = snapshot(store)
    assert before["bills"] and before["billing_accounts"] and before["checkout_bills"]
    assert before["ledger_postings"] and before["meter_reads"] and before["billing_runs"]
    for cls in PROJECTIONS:
        rebuild(store.events, cls)
    after = snapshot(store)
    assert after == before
