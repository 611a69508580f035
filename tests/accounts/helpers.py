"""Builders for registry CSV rows and unique test data (every test gets its own IDs)."""

from __future__ import annotations

import csv
import io
import itertools
import random
import uuid
from typing import Any

from services.accounts.importer import COLUMNS, ImportPlan, parse

_counter = itertools.count(random.SystemRandom().randint(10_000, 90_000) * 1000)


def unique_number() -> str:
    """A fresh numeric identifier, never used by another test in this session."""
    return str(next(_counter))


def unique_user() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def customer_fields(customer_id: str, name: str = "CITY OF PLEASANTON", **extra: Any) -> dict:
    row = {
        "customer_id": customer_id,
        "customer_name": name,
        "mailing_line1": "123 MAIN STREET",
        "mailing_city": "PLEASANTON",
        "mailing_state": "CA",
        "mailing_zip": "94566-7320",
        "email": "resident@example.com",
    }
    row.update(extra)
    return row


def service_rows(
    customer_id: str,
    account_number: str,
    *,
    name: str = "CITY OF PLEASANTON",
    services: tuple[tuple[str, str], ...] = (
        ("10000", "PLEASANTON WATER FIXED CHARGE"),
        ("15000", "PLEASANTON WATER VAR CHARGE IRRIGATION"),
    ),
    cycle: str = "1",
    **extra: Any,
) -> list[dict]:
    """One row per service of a utility account, as the billing system exports it."""
    base = {
        **customer_fields(customer_id, name),
        "account_number": account_number,
        "account_status": "ACTIVE",
        "cycle": cycle,
        "service_address": "0 ALAMEDA DR - IRR",
        "service_city": "PLEASANTON",
        "service_state": "CA",
        "service_zip": "94566-0000",
        "parcel_id": "",
    }
    base.update(extra)
    return [
        {
            **base,
            "service_code": code,
            "service_name": service_name,
            "service_start": "11/13/1995",
            "service_status": "ACTIVE",
            "meter_number": "68596455",
            "meter_size": "1-1/2",
        }
        for code, service_name in services
    ]


def csv_text(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()


def plan_of(rows: list[dict], filename: str = "test.csv") -> ImportPlan:
    return parse(io.StringIO(csv_text(rows), newline=""), filename=filename)


def stored_events(store: Any, *types: str) -> list[Any]:
    """Every event in the store, in append order, straight from the events table.

    (On a shared PostgreSQL cluster `read_all` may lag behind other sessions'
    transactions; streams are read without that wait.)
    """
    import sqlalchemy as sa

    from shared.store import events_table

    with store.events.reading() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(events_table.c.stream_id)
                .group_by(events_table.c.stream_id)
                .order_by(sa.func.min(events_table.c.id))
            )
        ]
    out = [e for sid in ids for e in store.events.read_stream(sid)]
    return [e for e in out if not types or e.type in types]


def event_count(store: Any) -> int:
    import sqlalchemy as sa

    from shared.store import events_table

    with store.events.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one()
