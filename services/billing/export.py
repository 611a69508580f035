"""`muniportal-ops export payments --date D`: the day's postings for the city's ledger.

A posting belongs to the day billing recorded it (in the city's time zone), so
a day, once over, never changes: exporting it twice gives the same bytes.
Columns and meaning: docs/billing.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.domain.values import money_str

COLUMNS = (
    "posting_date",
    "posted_at",
    "kind",
    "payment_id",
    "confirmation_number",
    "reversal_id",
    "paid_at",
    "bill_number",
    "account_number",
    "customer_id",
    "amount",
)


def _utc(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def payments_csv(conn: Any, date: dt.date) -> tuple[str, dict[str, Any]]:
    """The CSV text of one posting day, and its counts and net total."""
    t = p.ledger
    rows = conn.execute(
        sa.select(t)
        .where(t.c.posting_date == date)
        .order_by(t.c.posted_at, t.c.payment_id, t.c.posting_id)
    ).mappings()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    net = Decimal(0)
    kinds: dict[str, int] = {}
    for row in rows:
        amount = Decimal(row["amount"])
        net += amount
        count += 1
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        writer.writerow(
            [
                row["posting_date"].isoformat(),
                _utc(row["posted_at"]),
                row["kind"],
                row["payment_id"],
                row["confirmation_number"] or "",
                row["reversal_id"] or "",
                _utc(row["paid_at"]),
                row["bill_number"] or "",
                row["account_number"] or "",
                row["customer_id"] or "",
                money_str(amount),
            ]
        )
    return out.getvalue(), {
        "date": date.isoformat(),
        "rows": count,
        "kinds": kinds,
        "net": money_str(net),
    }
