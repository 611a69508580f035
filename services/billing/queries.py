"""The read side: what residents and the gateway ask of billing, from the projections.

Every function takes a connection, so one RPC reads one consistent snapshot:
the listed bills and their total come from the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.domain.values import ZERO, money_str, normalize_number, units_str
from services.billing.penalties import pending_bills_clause
from services.billing.schedule import Schedule
from shared.errors import InvalidInput, NotFound
from shared.store import events_table

PAYMENT_REASONS = ("payment", "legacy_payment", "refund", "return", "chargeback")
NO_MATCH = "No bill matches that customer ID and bill number."


def _money(value: Any) -> str:
    return money_str(Decimal(value if value is not None else 0))


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def pending_bills(conn: Any, numbers: list[str], now: dt.datetime) -> set[str]:
    """Which of these bills have a web payment in flight."""
    if not numbers:
        return set()
    query = pending_bills_clause(now).where(p.checkout_bills.c.bill_number.in_(numbers))
    return {number for (number,) in conn.execute(query)}


def _status(balance: Decimal) -> str:
    if balance > 0:
        return "open"
    return "credit" if balance < 0 else "paid"


def _bill_row(row: Any, pending: set[str]) -> dict[str, Any]:
    balance = Decimal(row["balance_due"])
    return {
        "bill_number": row["bill_number"],
        "bill_type": row["bill_type"],
        "description": row["description"],
        "bill_year": row["bill_year"],
        "bill_date": _iso(row["statement_date"]),
        "due_date": _iso(row["due_date"]),
        "pay_by": _iso(row["due_date"]),
        "charges": _money(Decimal(row["total"]) + Decimal(row["penalty"])),
        "balance_due": _money(balance),
        "status": _status(balance),
        "pending_web_payment": row["bill_number"] in pending,
    }


def _listing(
    conn: Any,
    where: Any,
    *,
    status: str,
    schedule: Schedule,
    as_of: dt.date,
    now: dt.datetime,
) -> tuple[list[Any], tuple[int, int], set[str]]:
    if status not in ("outstanding", "all"):
        raise InvalidInput(errors={"status": "must be outstanding or all"})
    first, last = schedule.bill_years(as_of)
    b = p.bills
    # Open bills are listed whatever their year: the total due is always their sum.
    shown = b.c.balance_due != 0
    if status == "all":
        shown = sa.or_(shown, b.c.bill_year.between(first, last))
    rows = list(
        conn.execute(
            sa.select(b).where(where, shown).order_by(b.c.due_date, b.c.bill_number)
        ).mappings()
    )
    pending = pending_bills(conn, [r["bill_number"] for r in rows], now)
    return rows, (first, last), pending


def account_bills(
    conn: Any,
    schedule: Schedule,
    account_number: str,
    status: str = "outstanding",
    *,
    as_of: dt.date,
    now: dt.datetime,
) -> dict[str, Any]:
    """Manage Bills: the account's bills with the total due (the sum of its open bills)."""
    number = normalize_number(account_number)
    b = p.bills
    rows, (first, last), pending = _listing(
        conn, b.c.account_number == number, status=status, schedule=schedule, as_of=as_of, now=now
    )
    total = sum((Decimal(r["balance_due"]) for r in rows if r["balance_due"] != 0), ZERO)
    return {
        "account_number": number,
        "as_of": as_of.isoformat(),
        "bill_years": {"from": first, "to": last},
        "bills": [_bill_row(r, pending) for r in rows],
        "total_due": money_str(total),
        "pending_web_payment_exists": bool(pending),
    }


def account_summary(
    conn: Any, schedule: Schedule, account_number: str, *, as_of: dt.date, now: dt.datetime
) -> dict[str, Any]:
    """Amount due now, due date, payments by bill and the services."""
    number = normalize_number(account_number)
    b, ch = p.bills, p.balance_changes
    open_rows = list(
        conn.execute(
            sa.select(b.c.bill_number, b.c.balance_due, b.c.due_date).where(
                b.c.account_number == number, b.c.balance_due != 0
            )
        )
    )
    amount_due = sum((Decimal(r.balance_due) for r in open_rows), ZERO)
    due_dates = [r.due_date for r in open_rows if r.balance_due > 0]
    changes = conn.execute(
        sa.select(ch)
        .where(ch.c.account_number == number, ch.c.reason.in_(PAYMENT_REASONS))
        .order_by(ch.c.bill_number, ch.c.version)
    ).mappings()
    by_bill: dict[str, dict[str, Any]] = {}
    for row in changes:
        entry = by_bill.setdefault(
            row["bill_number"],
            {"bill_number": row["bill_number"], "last_posted": None, "sum": ZERO, "details": []},
        )
        amount = -Decimal(row["change"])
        entry["sum"] += amount
        if row["reason"] in ("payment", "legacy_payment"):
            last = entry["last_posted"]
            entry["last_posted"] = max(last, row["posted_on"]) if last else row["posted_on"]
        entry["details"].append(
            {
                "payment_id": row["payment_id"],
                "posted_on": _iso(row["posted_on"]),
                "kind": "payment" if row["reason"] == "legacy_payment" else row["reason"],
                "amount": money_str(amount),
                "balance_after": _money(row["balance_due"]),
            }
        )
    payments = sorted(
        by_bill.values(),
        key=lambda e: (e["last_posted"] or dt.date.min, e["bill_number"]),
        reverse=True,
    )
    account = (
        conn.execute(sa.select(p.accounts).where(p.accounts.c.account_number == number))
        .mappings()
        .first()
    )
    with_history = {
        code
        for (code,) in conn.execute(
            sa.select(p.meter_reads.c.service_code)
            .where(
                p.meter_reads.c.account_number == number,
                p.meter_reads.c.billed_bill_number.is_not(None),
            )
            .distinct()
        )
    }
    services = []
    for service in (account["services"] if account else None) or []:
        code = str(service.get("code") or "")
        services.append(
            {
                "service": service.get("name") or _service_name(schedule, code),
                "code": code,
                "start_date": service.get("start_date"),
                "stop_date": service.get("stop_date"),
                "status": str(service.get("status") or "").upper() or None,
                "has_consumption": code in with_history,
            }
        )
    return {
        "account_number": number,
        "as_of": as_of.isoformat(),
        "amount_due_now": money_str(amount_due),
        "payment_due_date": _iso(min(due_dates)) if due_dates else None,
        "open_bills": len(open_rows),
        "payments": [
            {
                "bill_number": e["bill_number"],
                "last_posted": _iso(e["last_posted"]),
                "sum_of_payments": money_str(e["sum"]),
                "details": e["details"],
            }
            for e in payments
        ],
        "services": services,
    }


def _service_name(schedule: Schedule, code: str) -> str:
    rate = schedule.rates.get(code)
    return rate.name if rate else code


def consumption(
    conn: Any, schedule: Schedule, account_number: str, service_code: str | None = None
) -> dict[str, Any]:
    """Billed consumption per service, period by period, ready for a chart."""
    number = normalize_number(account_number)
    r = p.meter_reads
    query = sa.select(
        r.c.service_code,
        r.c.meter_number,
        r.c.billed_bill_number.label("bill_number"),
        r.c.previous_read_date.label("from_date"),
        r.c.read_date.label("to_date"),
        r.c.usage_units,
        r.c.read_type,
    ).where(r.c.account_number == number, r.c.billed_bill_number.is_not(None))
    if service_code:
        query = query.where(r.c.service_code == str(service_code).strip())
    rows = conn.execute(query.order_by(r.c.service_code, r.c.read_date)).mappings()
    per_unit = schedule.policy.gallons_per_unit
    account = conn.execute(
        sa.select(p.accounts.c.services).where(p.accounts.c.account_number == number)
    ).first()
    names = {str(s.get("code")): s.get("name") for s in (account[0] if account else None) or []}
    services: dict[str, dict[str, Any]] = {}
    for row in rows:
        code = row["service_code"]
        rate = schedule.rates.get(code)
        service = services.setdefault(
            code,
            {
                "code": code,
                "name": names.get(code) or _service_name(schedule, code),
                "unit": rate.unit if rate else "CCF",
                "gallons_per_unit": per_unit,
                "periods": [],
            },
        )
        usage = Decimal(row["usage_units"])
        days = (row["to_date"] - row["from_date"]).days
        service["periods"].append(
            {
                "bill_number": row["bill_number"],
                "meter_number": row["meter_number"],
                "from": _iso(row["from_date"]),
                "to": _iso(row["to_date"]),
                "days": days,
                "usage_units": units_str(usage),
                "gallons": units_str(usage * per_unit),
                "average_daily_gallons": units_str(
                    (usage * per_unit / days).quantize(Decimal("0.1")) if days else Decimal(0)
                ),
                "read_type": row["read_type"],
            }
        )
    for service in services.values():
        periods = service["periods"]
        service["chart"] = {
            "labels": [x["to"] for x in periods],
            "usage_units": [x["usage_units"] for x in periods],
            "gallons": [x["gallons"] for x in periods],
            "estimated": [x["read_type"] == "estimated" for x in periods],
        }
    return {"account_number": number, "services": list(services.values())}


def _get_bill(conn: Any, bill_number: str) -> Any:
    number = normalize_number(bill_number)
    row = conn.execute(sa.select(p.bills).where(p.bills.c.bill_number == number)).mappings().first()
    if row is None:
        raise NotFound(f"bill {number} not found", code="bill_not_found")
    return row


def issued(conn: Any, bill_number: str) -> dict[str, Any]:
    """The bill as issued: its BillIssued event, the first of its stream."""
    e = events_table
    data = conn.execute(
        sa.select(e.c.data).where(e.c.stream_id == f"bill-{bill_number}", e.c.version == 1)
    ).scalar_one()
    return json.loads(data) if isinstance(data, str) else data


def bill_detail(
    conn: Any, schedule: Schedule, bill_number: str, *, now: dt.datetime
) -> dict[str, Any]:
    """Every field of the bill as issued (Figure A), with its balance now."""
    row = _get_bill(conn, bill_number)
    d = issued(conn, row["bill_number"])
    pending = pending_bills(conn, [row["bill_number"]], now)
    per_unit = schedule.policy.gallons_per_unit
    reads = []
    for read in d.get("reads") or []:
        usage = Decimal(read["usage_units"])
        reads.append(
            {
                **read,
                "current_read_date": read["read_date"],
                "current_reading": read["reading"],
                "days": (
                    dt.date.fromisoformat(read["read_date"])
                    - dt.date.fromisoformat(read["previous_read_date"])
                ).days,
                "gallons": units_str(usage * per_unit),
            }
        )
    first = reads[0] if reads else {}
    ch = p.balance_changes
    postings = [
        {
            "posted_on": _iso(r["posted_on"]),
            "kind": r["reason"],
            "change": _money(r["change"]),
            "balance_due": _money(r["balance_due"]),
            "payment_id": r["payment_id"],
        }
        for r in conn.execute(
            sa.select(ch).where(ch.c.bill_number == row["bill_number"]).order_by(ch.c.version)
        ).mappings()
    ]
    statement = d.get("statement") or {}
    balance = Decimal(row["balance_due"])
    return {
        "bill_number": row["bill_number"],
        "kind": row["kind"],
        "bill_type": row["bill_type"],
        "description": row["description"],
        "account_number": row["account_number"],
        "customer_id": row["customer_id"],
        "customer_name": row["customer_name"],
        "service_address": row["service_address"],
        "cycle": row["cycle"],
        "statement_date": _iso(row["statement_date"]),
        "bill_date": _iso(row["statement_date"]),
        "due_date": _iso(row["due_date"]),
        "pay_by": _iso(row["due_date"]),
        "bill_year": row["bill_year"],
        "meter_number": first.get("meter_number"),
        "previous_read_date": first.get("previous_read_date"),
        "current_read_date": first.get("read_date"),
        "previous_reading": first.get("previous_reading"),
        "current_reading": first.get("reading"),
        "read_type": first.get("read_type"),
        "usage_units": first.get("usage_units"),
        "gallons": first.get("gallons"),
        "reads": reads,
        "lines": [
            {
                "description": line["description"],
                "amount": line.get("amount"),
                "service_code": line.get("service_code"),
            }
            for line in d["lines"]
        ],
        "previous_balance": d["previous_balance"],
        "payments": d["payments"],
        "penalty": d["penalty"],
        "total": d["total"],
        "account_total_due": money_str(Decimal(d["previous_balance"]) + Decimal(d["total"])),
        "penalty_assessed": _money(row["penalty"]),
        "charges": _money(Decimal(row["total"]) + Decimal(row["penalty"])),
        "paid": _money(row["paid"]),
        "balance_due": money_str(balance),
        "status": _status(balance),
        "last_posted": _iso(row["last_posted"]),
        "pending_web_payment": row["bill_number"] in pending,
        "postings": postings,
        "issuer": statement.get("issuer"),
        "issuer_address": statement.get("issuer_address") or [],
        "contact": statement.get("contact"),
        "website": statement.get("website"),
        "unit_note": statement.get("unit_note"),
        "issued_via": row["issued_via"],
        "run_id": row["run_id"],
    }


def bill_brief(conn: Any, bill_number: str, *, now: dt.datetime) -> dict[str, Any]:
    """What payments and the gateway need to know of a bill."""
    row = _get_bill(conn, bill_number)
    return {
        "bill_number": row["bill_number"],
        "kind": row["kind"],
        "bill_type": row["bill_type"],
        "account_number": row["account_number"],
        "customer_id": row["customer_id"],
        "customer_name": row["customer_name"],
        "balance_due": _money(row["balance_due"]),
        "due_date": _iso(row["due_date"]),
        "bill_date": _iso(row["statement_date"]),
        "bill_year": row["bill_year"],
        "description": row["description"],
        "pending_web_payment": row["bill_number"] in pending_bills(conn, [row["bill_number"]], now),
    }


def customer_invoices(
    conn: Any,
    schedule: Schedule,
    customer_id: str,
    status: str = "outstanding",
    *,
    as_of: dt.date,
    now: dt.datetime,
) -> dict[str, Any]:
    """General billing's Manage Bills: invoices with totals as of a date."""
    customer = normalize_number(customer_id)
    b = p.bills
    rows, (first, last), pending = _listing(
        conn,
        sa.and_(b.c.customer_id == customer, b.c.kind == "general"),
        status=status,
        schedule=schedule,
        as_of=as_of,
        now=now,
    )
    bills = []
    for r in rows:
        item = _bill_row(r, pending)
        # Without installments the whole unpaid amount is due: the two columns agree.
        item["total_unpaid"] = item["balance_due"]
        bills.append(item)
    total = sum((Decimal(r["balance_due"]) for r in rows if r["balance_due"] != 0), ZERO)
    name = rows[0]["customer_name"] if rows else None
    return {
        "customer_id": customer,
        "customer_name": name,
        "as_of": as_of.isoformat(),
        "bill_years": {"from": first, "to": last},
        "bills": bills,
        "total_unpaid": money_str(total),
        "total_balance_due": money_str(total),
        "pending_web_payment_exists": bool(pending),
    }


def find_invoice(conn: Any, customer_id: str, bill_number: str) -> dict[str, Any]:
    """General billing's search: a customer ID and a bill number that belong together."""
    customer = normalize_number(customer_id)
    number = normalize_number(bill_number)
    if not customer or not number:
        raise InvalidInput(NO_MATCH, code="no_account_match")
    b = p.bills
    row = conn.execute(
        sa.select(b.c.bill_number, b.c.customer_id, b.c.customer_name).where(
            b.c.bill_number == number, b.c.customer_id == customer, b.c.kind == "general"
        )
    ).first()
    if row is None:
        # The same answer whichever part is wrong: it must not confirm a bill or a customer.
        raise InvalidInput(NO_MATCH, code="no_account_match")
    return {"bill_number": row.bill_number, "customer_id": row.customer_id}
