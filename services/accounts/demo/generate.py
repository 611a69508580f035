"""Write generated.csv: the demo city's few thousand generated accounts (deterministic).

Run from the repository root: `.venv/bin/python services/accounts/demo/generate.py`.
The same seed always writes the same file; `make run` loads it through the
same import as `muniportal-ops import customers`.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

from services.accounts.importer import COLUMNS

SEED = 4
ACCOUNTS = 2500
GENERAL_ONLY = 60
CYCLES = ("1", "2")
OUT = Path(__file__).with_name("generated.csv")

FIRST = (
    "JAMES MARY ROBERT PATRICIA JOHN JENNIFER MICHAEL LINDA DAVID ELIZABETH WILLIAM BARBARA "
    "RICHARD SUSAN JOSEPH JESSICA THOMAS SARAH CHARLES KAREN MARIA WEI PRIYA CARLOS ANA "
    "HIROSHI MEI OLUWASEUN FATIMA DMITRI SOFIA LUIS CHEN AMIT GRACE NGUYEN ROSA OMAR"
).split()
LAST = (
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ "
    "LOPEZ GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON "
    "WHITE HARRIS SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT "
    "O'BRIEN PATEL NGUYEN KIM CHANG SINGH MULLER"
).split() + ["ST. JOHN", "DE LA CRUZ"]
BUSINESS = (
    "ACME PLUMBING",
    "SMITH & SONS LANDSCAPING",
    "VALLEY DENTAL GROUP",
    "TRI-VALLEY PROPERTIES LLC",
    "HOPYARD VILLAGE HOA",
    "AMADOR VALLEY SWIM CLUB",
    "MAIN STREET BAKERY",
    "KOTTINGER RANCH HOA",
    "PLEASANTON AUTO CARE",
    "RUBY HILL WINERY",
)
STREETS = (
    "MAIN ST",
    "SANTA RITA RD",
    "HOPYARD RD",
    "VALLEY AVE",
    "BERNAL AVE",
    "STONERIDGE DR",
    "FIRST ST",
    "RAY ST",
    "DEL VALLE PKWY",
    "FOOTHILL RD",
    "MOHR AVE",
    "BLACK AVE",
    "VINEYARD AVE",
    "SUNOL BLVD",
    "WEST LAS POSITAS BLVD",
    "OWENS DR",
    "KOLLN ST",
    "ALAMEDA DR",
)
OTHER_CITIES = (
    ("LIVERMORE", "CA", "94550"),
    ("DUBLIN", "CA", "94568"),
    ("SAN RAMON", "CA", "94583"),
    ("OAKLAND", "CA", "94612"),
    ("RENO", "NV", "89501"),
    ("PORTLAND", "OR", "97201"),
)
METERS = (("5/8", 60), ("3/4", 25), ("1", 10), ("1-1/2", 4), ("2", 1))


def main() -> None:
    rng = random.Random(SEED)
    numbers = rng.sample([n for n in range(30000, 90000) if n != 28624], ACCOUNTS)
    customer_pool = rng.sample([n for n in range(400000, 500000) if n != 405583], ACCOUNTS + 100)
    meters = rng.sample(range(60000000, 69999999), ACCOUNTS)
    sizes = [size for size, weight in METERS for _ in range(weight)]
    rows = []
    customer_iter = iter(customer_pool)
    previous: dict[str, str] | None = None
    for i, number in enumerate(numbers):
        # About one customer in twenty holds two accounts (a landlord, a business).
        if previous is not None and rng.random() < 0.05:
            customer = previous
        else:
            customer = _customer(rng, next(customer_iter))
            previous = customer
        street = f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"
        zip5 = rng.choice(("94566", "94588"))
        service_zip = f"{zip5}-{rng.randint(1000, 9999)}"
        if customer.get("mailing_line1") is None:
            customer.update(
                mailing_line1=street,
                mailing_line2="",
                mailing_city="PLEASANTON",
                mailing_state="CA",
                mailing_zip=service_zip,
            )
        inactive = rng.random() < 0.05
        irrigation = rng.random() < 0.08
        start = dt.date(1985, 1, 1) + dt.timedelta(days=rng.randint(0, 14000))
        stop = start + dt.timedelta(days=rng.randint(200, 3000)) if inactive else None
        if stop is not None:
            stop = min(stop, dt.date(2026, 6, 30))
        account = {
            "account_number": str(number),
            "account_status": "INACTIVE" if inactive else "ACTIVE",
            "cycle": CYCLES[i % len(CYCLES)],
            "service_address": street + (" - IRR" if irrigation else ""),
            "service_city": "PLEASANTON",
            "service_state": "CA",
            "service_zip": service_zip,
            "parcel_id": ""
            if rng.random() < 0.1
            else f"946-{rng.randint(1000, 9999)}-{rng.randint(1, 200):03d}-00",
        }
        services = [("10000", "PLEASANTON WATER FIXED CHARGE")]
        if irrigation:
            services.append(("15000", "PLEASANTON WATER VAR CHARGE IRRIGATION"))
        else:
            services.append(("15100", "PLEASANTON WATER VAR CHARGE RESIDENTIAL"))
            if rng.random() < 0.3:
                services.append(("20000", "PLEASANTON SEWER SERVICE"))
        size = rng.choice(sizes)
        for code, name in services:
            metered = code != "20000"
            rows.append(
                {
                    **{k: v for k, v in customer.items() if not k.startswith("_")},
                    **account,
                    "service_code": code,
                    "service_name": name,
                    "service_start": start.strftime("%m/%d/%Y"),
                    "service_stop": stop.strftime("%m/%d/%Y") if stop else "",
                    "service_status": "INACTIVE" if inactive else "ACTIVE",
                    "meter_number": str(meters[i]) if metered else "",
                    "meter_size": size if metered else "",
                }
            )
    for _ in range(GENERAL_ONLY):
        customer = _customer(rng, next(customer_iter))
        city, st, zip5 = rng.choice((("PLEASANTON", "CA", "94566"), *OTHER_CITIES))
        customer.update(
            mailing_line1=f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
            mailing_line2="",
            mailing_city=city,
            mailing_state=st,
            mailing_zip=zip5,
        )
        rows.append({k: v for k, v in customer.items() if not k.startswith("_")})
    with open(OUT, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    print(f"wrote {len(rows)} rows to {OUT}")


def _customer(rng: random.Random, customer_id: int) -> dict[str, str | None]:
    if rng.random() < 0.06:
        name = rng.choice(BUSINESS)
        email = f"billing{customer_id}@example.com"
    else:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        if rng.random() < 0.1:
            name = f"{first} & {rng.choice(FIRST)} {last}"
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        email = f"{local.replace('..', '.')}{customer_id % 1000}@example.com"
    customer: dict[str, str | None] = {
        "customer_id": str(customer_id),
        "customer_name": name,
        "email": email if rng.random() < 0.7 else "",
    }
    if rng.random() < 0.15:
        city, st, zip5 = rng.choice(OTHER_CITIES)
        customer.update(
            mailing_line1=f"PO BOX {rng.randint(100, 9999)}",
            mailing_line2="",
            mailing_city=city,
            mailing_state=st,
            mailing_zip=zip5,
        )
    else:
        customer["mailing_line1"] = None
    return customer


if __name__ == "__main__":
    main()
