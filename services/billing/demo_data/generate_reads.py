"""Write reads.csv: one meter read per active metered service of the demo city's accounts.

The accounts are the accounts service's generated demo accounts (its
``services/accounts/demo/generated.csv``: account numbers, cycles, service
codes 15000/15100, meter numbers). Run again whenever that file changes:

    .venv/bin/python services/billing/demo_data/generate_reads.py [ACCOUNTS_CSV]

Deterministic: the same accounts file always gives the same reads. About one
metered service in a hundred gets no read, so a demo billing run shows its
exception report.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_ACCOUNTS = ROOT / "services" / "accounts" / "demo" / "generated.csv"
OUT = Path(__file__).with_name("reads.csv")
METERED = {"15000": (10, 90), "15100": (6, 40)}  # service code -> usage range (CCF)
PERIODS = {"1": ("2026-09-14", "2026-11-13"), "2": ("2026-09-18", "2026-11-18")}
COLUMNS = (
    "account_number",
    "service_code",
    "meter_number",
    "previous_read_date",
    "previous_reading",
    "read_date",
    "reading",
    "read_type",
)


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else DEFAULT_ACCOUNTS
    rng = random.Random(20261122)
    rows = []
    with open(source, newline="") as fh:
        for row in csv.DictReader(fh):
            code = row.get("service_code", "")
            if code not in METERED or row.get("service_status", "").upper() != "ACTIVE":
                continue
            if row.get("account_status", "").upper() != "ACTIVE" or not row.get("meter_number"):
                continue
            period = PERIODS.get(row.get("cycle", ""))
            if period is None:
                continue
            low, high = METERED[code]
            previous = rng.randint(100, 9000)
            usage = rng.randint(low, high)
            if rng.random() < 0.01:
                continue  # not read this period: the run lists it as an exception
            rows.append(
                {
                    "account_number": row["account_number"],
                    "service_code": code,
                    "meter_number": row["meter_number"],
                    "previous_read_date": period[0],
                    "previous_reading": previous,
                    "read_date": period[1],
                    "reading": previous + usage,
                    "read_type": "actual",
                }
            )
    rows.sort(key=lambda r: (r["account_number"], r["service_code"]))
    with open(OUT, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} reads to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
