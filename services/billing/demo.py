"""Billing's part of the demo city, loaded through the same imports as the ops tool.

``demo_data/bills.csv``: the seed guides' bills for account 28624 / customer
405583 (bill 98465 of Figure A, 127.11 due 01/23/2017; bill 98820, 134.46 due
12/10/2016, both outstanding; bill 35932, paid 8/26/2016) and two CLAIMS
invoices of 250.00 for EXAMPLE CUSTOMER (customer 12345, pay by 7/2/2021).
``demo_data/reads.csv``: a read for each active metered service of the
accounts service's generated accounts, so that ``muniportal-ops billing-run
--cycle 1 --statement-date 2026-11-20`` bills them. Loading again changes
nothing: both imports skip what is already recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.billing import domain  # noqa: F401 - event schemas
from services.billing.import_bills import import_bills
from services.billing.import_reads import import_reads
from services.billing.schedule import load_schedule

DEMO_DIR = Path(__file__).with_name("demo_data")


def load(store: Any) -> dict[str, Any]:
    """Import the demo bills and reads; idempotent."""
    store.migrate()
    schedule = load_schedule()
    bills = import_bills(store, DEMO_DIR / "bills.csv", schedule=schedule, actor="system")
    reads = import_reads(store, DEMO_DIR / "reads.csv", schedule=schedule, actor="system")
    return {
        "bills": {"issued": bills["issued"], "skipped": bills["skipped"]},
        "reads": {"recorded": reads["recorded"], "skipped": reads["skipped"]},
    }
