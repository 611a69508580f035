"""Compose a utility bill for one account from its services, reads and the rate schedule.

Pure: the billing run gathers the inputs from its projections and records the
result. A problem with one account (no rate for its meter size, no read to
estimate from) raises `RateError`; the run lists it as an exception and goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.billing.domain.rates import RateError, RateSchedule, ServiceRate
from services.billing.domain.values import ZERO, money_str, units_str

ACTIVE = ("active", "a")


@dataclasses.dataclass(frozen=True)
class ReadIn:
    """A read on record (billed or not) for one metered service."""

    service_code: str
    meter_number: str
    previous_read_date: dt.date
    read_date: dt.date
    previous_reading: Decimal
    reading: Decimal
    usage_units: Decimal
    read_type: str
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class History:
    """What an estimate needs: the last billed read and the usage rate of recent periods."""

    last_read: ReadIn | None
    units: Decimal = ZERO
    days: int = 0


@dataclasses.dataclass(frozen=True)
class AccountIn:
    account_number: str
    customer_id: str
    customer_name: str
    service_address: str | None
    cycle: str | None
    services: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Carried:
    """The account's position at the statement date (printed, not billed again)."""

    previous_balance: Decimal = ZERO
    payments: Decimal = ZERO
    penalty: Decimal = ZERO


def is_active(service: dict[str, Any], on: dt.date) -> bool:
    status = str(service.get("status") or "active").strip().lower()
    if status not in ACTIVE:
        return False
    start = service.get("start_date")
    stop = service.get("stop_date")
    if start and dt.date.fromisoformat(str(start)[:10]) > on:
        return False
    return not (stop and dt.date.fromisoformat(str(stop)[:10]) < on)


def billable_services(account: AccountIn, on: dt.date) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for service in sorted(account.services, key=lambda s: str(s.get("code"))):
        code = str(service.get("code") or "").strip()
        if code and code not in seen and is_active(service, on):
            seen.add(code)
            out.append({**service, "code": code})
    return out


def _meter_size(service: dict[str, Any], account: AccountIn) -> Any:
    if service.get("meter_size"):
        return service["meter_size"]
    # A fixed-charge service without a meter of its own is charged by the account's meter.
    return next((s.get("meter_size") for s in account.services if s.get("meter_size")), None)


def estimate(
    rate: ServiceRate, service: dict[str, Any], history: History, statement_date: dt.date
) -> ReadIn:
    """An estimated read up to the statement date, from the meter's recent usage."""
    last = history.last_read
    if last is None:
        raise RateError(
            f"service {rate.code} has no read and no earlier read to estimate from",
            {"read": "no read on record"},
            code="no_read",
        )
    days = (statement_date - last.read_date).days
    if days <= 0:
        raise RateError(
            f"service {rate.code} was already read on {last.read_date}",
            {"read": f"last read {last.read_date} is not before the statement date"},
            code="no_new_read",
        )
    if history.days > 0:
        per_day = history.units / history.days
    else:
        per_day = rate.estimate_units_per_day or ZERO
    usage = (per_day * days).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return ReadIn(
        service_code=rate.code,
        meter_number=str(service.get("meter_number") or last.meter_number),
        previous_read_date=last.read_date,
        read_date=statement_date,
        previous_reading=last.reading,
        reading=last.reading + usage,
        usage_units=usage,
        read_type="estimated",
    )


def compose_utility_bill(
    *,
    account: AccountIn,
    bill_number: str,
    statement_date: dt.date,
    due_date: dt.date,
    bill_year: int,
    rates: RateSchedule,
    unbilled: dict[str, list[ReadIn]],
    history: dict[str, History],
    carried: Carried,
    estimate_missing: bool,
    late_penalty: bool,
    statement: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    """The BillIssued data of one account's bill (JSON form)."""
    services = billable_services(account, statement_date)
    if not services:
        raise RateError("the account has no active service", code="no_active_service")
    lines: list[dict[str, Any]] = []
    reads: list[dict[str, Any]] = []
    rated = 0
    for service in services:
        rate = rates.get(service["code"])
        if rate is None:
            continue  # a service the schedule does not bill (e.g. billed elsewhere)
        rated += 1
        usage = None
        billed: list[ReadIn] = []
        if rate.metered:
            # Several unbilled reads make one period: each is listed (and so marked
            # billed), and the rate applies to their total usage.
            billed = sorted(unbilled.get(rate.code) or [], key=lambda r: r.read_date)
            if not billed and estimate_missing:
                history_of = history.get(rate.code, History(None))
                billed = [estimate(rate, service, history_of, statement_date)]
            elif not billed:
                raise RateError(f"service {rate.code} has no read for this period", code="no_read")
            usage = sum((r.usage_units for r in billed), ZERO)
        service_lines = rate.charge_lines(meter_size=_meter_size(service, account), usage=usage)
        for i, line in enumerate(service_lines):
            lines.append(
                {
                    "description": line.description,
                    "amount": money_str(line.amount),
                    "service_code": line.service_code,
                }
            )
            if i == 0:
                for read in billed:
                    if read.note:
                        lines.append(
                            {"description": read.note, "amount": None, "service_code": rate.code}
                        )
        for read in billed:
            reads.append(
                {
                    "service_code": read.service_code,
                    "meter_number": read.meter_number,
                    "previous_read_date": read.previous_read_date.isoformat(),
                    "read_date": read.read_date.isoformat(),
                    "previous_reading": units_str(read.previous_reading),
                    "reading": units_str(read.reading),
                    "usage_units": units_str(read.usage_units),
                    "read_type": read.read_type,
                }
            )
    if not rated:
        raise RateError(
            "none of the account's services has a rate in the schedule", code="no_rated_service"
        )
    total = sum((Decimal(x["amount"]) for x in lines if x["amount"] is not None), ZERO)
    return {
        "bill_number": bill_number,
        "kind": "utility",
        "bill_type": "UTILITY",
        "description": "Utilities",
        "account_number": account.account_number,
        "customer_id": account.customer_id,
        "customer_name": account.customer_name,
        "service_address": account.service_address,
        "cycle": account.cycle,
        "statement_date": statement_date.isoformat(),
        "due_date": due_date.isoformat(),
        "bill_year": bill_year,
        "reads": reads,
        "lines": lines,
        "previous_balance": money_str(carried.previous_balance),
        "payments": money_str(carried.payments),
        "penalty": money_str(carried.penalty),
        "total": money_str(total),
        "balance_due": money_str(total),
        "late_penalty": late_penalty,
        "statement": statement,
        "issued_via": "run",
        "run_id": run_id,
        "import_id": None,
        "fingerprint": None,
    }
