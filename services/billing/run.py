"""Billing runs: bill every account of a cycle from its reads, resumably.

A run is the stream ``billrun-<cycle>-<statement date>``. It bills the cycle's
accounts in account-number order, a batch per unit of work. Each batch's
transaction appends, together: the batch's bills (each a new stream, so a bill
can never be issued twice), the bill numbers it took from the ``billnumbers``
sequence (contiguous, no gaps), and the run's progress (the last account
billed), all with expected versions. A crash loses at most the batch in
flight, entirely; running the same command again resumes after the last
account billed, with the rates recorded when the run started.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.domain.compose import (
    AccountIn,
    Carried,
    History,
    ReadIn,
    compose_utility_bill,
)
from services.billing.domain.rates import RateError
from services.billing.domain.values import ZERO, money_str
from services.billing.penalties import assess_penalties
from services.billing.schedule import Schedule, parse_schedule
from shared.errors import Conflict, InvalidInput
from shared.events import NewEvent, validate_data
from shared.lease import Lease
from shared.uow import ServiceStore, UnitOfWork

SEQUENCE_STREAM = "billnumbers"
PAYMENT_REASONS = ("payment", "legacy_payment", "refund", "return", "chargeback")


class RunInProgress(Conflict):
    """Another billing run holds the lease."""


@dataclasses.dataclass
class RunResult:
    run_id: str
    cycle: str
    statement_date: dt.date
    due_date: dt.date
    status: str
    resumed: bool
    billed: int
    exceptions: int
    amount: Decimal
    first_bill_number: int | None
    last_bill_number: int | None
    penalties: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["statement_date"] = self.statement_date.isoformat()
        out["due_date"] = self.due_date.isoformat()
        out["amount"] = money_str(self.amount)
        return out


def run_id_for(cycle: str, statement_date: dt.date) -> str:
    return f"{cycle}-{statement_date.isoformat()}"


def run_stream(run_id: str) -> str:
    return f"billrun-{run_id}"


def billing_run(
    store: ServiceStore,
    *,
    cycle: str,
    statement_date: dt.date,
    schedule: Schedule,
    due_days: int | None = None,
    batch_size: int = 500,
    pause: float = 0.0,
    actor: str = "system",
    today: dt.date | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    stats: dict[str, float] | None = None,
) -> RunResult:
    """Bill every account of `cycle` as of `statement_date`; resumes a run cut short.

    `stats`, when given, collects the seconds spent in each stage (benchmarks).
    """
    cycle = str(cycle).strip()
    if not cycle:
        raise InvalidInput(errors={"cycle": "is required"})
    if not 1 <= batch_size <= 5000:
        raise InvalidInput(errors={"batch_size": "must be between 1 and 5000"})
    if due_days is not None and not 0 <= due_days <= 366:
        raise InvalidInput(errors={"due_days": "must be between 0 and 366"})
    today = today or schedule.today()
    if statement_date > today + dt.timedelta(days=62):
        raise InvalidInput(
            f"statement date {statement_date} is more than two months after today ({today})",
            {"statement_date": "must be at most 62 days after today"},
        )
    lease = Lease(store.events, "billing-run")
    if not lease.try_acquire():
        raise RunInProgress(
            "another billing run is in progress; wait for it to finish", code="run_in_progress"
        )
    try:
        return _run(
            store,
            cycle=cycle,
            statement_date=statement_date,
            schedule=schedule,
            due_days=due_days,
            batch_size=batch_size,
            pause=pause,
            actor=actor,
            progress=progress,
            stats=stats if stats is not None else {},
        )
    finally:
        lease.release()


def _run(
    store: ServiceStore,
    *,
    cycle: str,
    statement_date: dt.date,
    schedule: Schedule,
    due_days: int | None,
    batch_size: int,
    pause: float,
    actor: str,
    progress: Callable[[dict[str, Any]], None] | None,
    stats: dict[str, float],
) -> RunResult:
    run_id = run_id_for(cycle, statement_date)
    meta = {"actor": actor, "correlation_id": f"billing-run:{run_id}"}
    with store.unit_of_work(**meta) as uow:
        row = _run_row(uow, run_id)
        resumed = row is not None
        if row is None:
            _start(uow, run_id, cycle, statement_date, schedule, due_days)
            row = _run_row(uow, run_id)
    assert row is not None  # noqa: S101 - just written
    if row["status"] == "completed":
        return _result(row, "already_completed", resumed=True)
    if due_days is not None and row["due_date"] != statement_date + dt.timedelta(days=due_days):
        raise Conflict(
            f"run {run_id} started with due date {row['due_date']}; rerun it without "
            "--due-days (or with the same) to finish it",
            {"due_days": f"the run's due date is {row['due_date']}"},
            code="run_options_differ",
        )
    refresh_statistics(store, RUN_TABLES)
    started = store.events.read_stream(run_stream(run_id))[0]
    recorded = parse_schedule(started.data["schedule"], source=f"run {run_id}")
    due_date = row["due_date"]

    started_at = time.perf_counter()
    penalties = assess_penalties(store, recorded, as_of=statement_date, cycle=cycle, actor=actor)
    _add(stats, "penalties", started_at)
    while True:
        started_at = time.perf_counter()
        more = store.run(
            lambda uow: _bill_batch(
                uow, recorded, run_id, cycle, statement_date, due_date, batch_size, stats
            ),
            **meta,
        )
        _add(stats, "batches", started_at)
        if progress is not None:
            with store.read() as conn:
                progress(dict(_run_row_conn(conn, run_id) or {}))
        if not more:
            break
        if pause:
            time.sleep(pause)
    with store.unit_of_work(**meta) as uow:
        row = _run_row(uow, run_id)
        assert row is not None  # noqa: S101
        if row["status"] != "completed":
            uow.append(
                run_stream(run_id),
                [
                    NewEvent(
                        "BillingRunCompleted",
                        validate_data(
                            "BillingRunCompleted",
                            {
                                "run_id": run_id,
                                "billed": row["billed"],
                                "exceptions": row["exceptions"],
                                "amount": money_str(row["amount"]),
                            },
                        ),
                    )
                ],
                row["version"],
            )
        row = _run_row(uow, run_id)
    result = _result(row, "completed", resumed=resumed)
    result.penalties = penalties
    return result


RUN_TABLES = (
    p.accounts,
    p.customers,
    p.meter_reads,
    p.bills,
    p.balance_changes,
)


def refresh_statistics(store: ServiceStore, tables: tuple[sa.Table, ...]) -> None:
    """PostgreSQL: ANALYZE tables just filled in bulk.

    Until autovacuum gets to them the planner sees them as nearly empty and picks
    plans that scan the whole cycle for every batch of a run.
    """
    if store.events.is_sqlite:
        return
    names = ", ".join(f'"{t.name}"' for t in tables)
    with store.events.engine.connect() as conn, conn.begin():
        conn.execute(sa.text(f"ANALYZE {names}"))


def _add(stats: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    stats[stage] = stats.get(stage, 0.0) + now - since
    return now


def _result(row: Any, status: str, *, resumed: bool) -> RunResult:
    return RunResult(
        run_id=row["run_id"],
        cycle=row["cycle"],
        statement_date=row["statement_date"],
        due_date=row["due_date"],
        status=status,
        resumed=resumed,
        billed=row["billed"],
        exceptions=row["exceptions"],
        amount=Decimal(row["amount"]),
        first_bill_number=row["first_bill_number"],
        last_bill_number=row["last_bill_number"],
    )


def _run_row(uow: UnitOfWork, run_id: str) -> Any:
    return _run_row_conn(uow.conn, run_id)


def _run_row_conn(conn: Any, run_id: str) -> Any:
    return conn.execute(sa.select(p.runs).where(p.runs.c.run_id == run_id)).mappings().first()


def _active(a: Any) -> Any:
    """Inactive (closed) accounts are not billed; an account with no status is."""
    return sa.or_(a.c.status.is_(None), sa.func.upper(a.c.status).in_(("ACTIVE", "A")))


def _start(
    uow: UnitOfWork,
    run_id: str,
    cycle: str,
    statement_date: dt.date,
    schedule: Schedule,
    due_days: int | None,
) -> None:
    a = p.accounts
    count = uow.conn.execute(
        sa.select(sa.func.count()).select_from(a).where(a.c.cycle == cycle, _active(a))
    ).scalar_one()
    if not count:
        known = [
            c
            for (c,) in uow.conn.execute(
                sa.select(a.c.cycle).where(a.c.cycle.is_not(None)).distinct().order_by(a.c.cycle)
            )
        ]
        raise InvalidInput(
            f"no active accounts in cycle {cycle} "
            f"(cycles known to billing: {', '.join(known) or 'none'})",
            {"cycle": f"no accounts in cycle {cycle}"},
            code="unknown_cycle",
        )
    days = schedule.policy.due_days if due_days is None else due_days
    data = validate_data(
        "BillingRunStarted",
        {
            "run_id": run_id,
            "cycle": cycle,
            "statement_date": statement_date.isoformat(),
            "due_date": (statement_date + dt.timedelta(days=days)).isoformat(),
            "schedule_sha": schedule.sha,
            "schedule": schedule.data,
        },
    )
    uow.append(run_stream(run_id), [NewEvent("BillingRunStarted", data)], 0)


def next_bill_numbers(uow: UnitOfWork, schedule: Schedule) -> tuple[int, int]:
    """(first free bill number, sequence stream version)."""
    seq = uow.conn.execute(
        sa.select(p.sequences.c.last_value, p.sequences.c.version).where(
            p.sequences.c.name == SEQUENCE_STREAM
        )
    ).first()
    highest = uow.conn.execute(sa.select(sa.func.max(p.bills.c.bill_number_int))).scalar()
    last = max(seq[0] if seq else 0, highest or 0, schedule.policy.bill_number_start - 1)
    return last + 1, (seq[1] if seq else 0)


def _bill_batch(
    uow: UnitOfWork,
    schedule: Schedule,
    run_id: str,
    cycle: str,
    statement_date: dt.date,
    due_date: dt.date,
    batch_size: int,
    stats: dict[str, float] | None = None,
) -> bool:
    """Bill the next batch of accounts; False when the cycle is done."""
    stats = stats if stats is not None else {}
    clock = time.perf_counter()
    row = _run_row(uow, run_id)
    if row is None or row["status"] == "completed":
        return False
    conn = uow.conn
    a, c = p.accounts, p.customers
    query = (
        sa.select(a)
        .where(a.c.cycle == cycle, _active(a))
        .order_by(a.c.account_number)
        .limit(batch_size)
    )
    if row["last_account"] is not None:
        query = query.where(a.c.account_number > row["last_account"])
    batch = list(conn.execute(query).mappings())
    if not batch:
        return False
    numbers = [r["account_number"] for r in batch]
    # Names by key, not by a join: a join plans a pass over every customer per batch.
    names = dict(
        conn.execute(
            sa.select(c.c.customer_id, c.c.name).where(
                c.c.customer_id.in_({r["customer_id"] for r in batch if r["customer_id"]})
            )
        ).all()
    )
    unbilled = _unbilled_reads(conn, numbers, statement_date)
    carried = _carried(conn, numbers)
    history: dict[str, dict[str, History]] = {}
    if schedule.policy.estimate_missing_reads:
        history = _history(conn, _missing_reads(batch, unbilled, schedule), statement_date)

    next_number, seq_version = next_bill_numbers(uow, schedule)
    first_number = next_number
    clock = _add(stats, "gather", clock)
    statement = schedule.statement_block()
    year = schedule.bill_year(statement_date)
    late_penalty = schedule.policy.penalty_percent > 0
    issued: list[tuple[str, list[NewEvent], int]] = []
    exceptions: list[dict[str, str]] = []
    amount = ZERO
    for account_row in batch:
        account = AccountIn(
            account_number=account_row["account_number"],
            customer_id=account_row["customer_id"] or "",
            customer_name=names.get(account_row["customer_id"]) or "",
            service_address=account_row["service_address"],
            cycle=account_row["cycle"],
            services=list(account_row["services"] or []),
        )
        try:
            data = compose_utility_bill(
                account=account,
                bill_number=str(next_number),
                statement_date=statement_date,
                due_date=due_date,
                bill_year=year,
                rates=schedule.rates,
                unbilled=unbilled.get(account.account_number, {}),
                history=history.get(account.account_number, {}),
                carried=carried.get(account.account_number, Carried()),
                estimate_missing=schedule.policy.estimate_missing_reads,
                late_penalty=late_penalty,
                statement=statement,
                run_id=run_id,
            )
        except RateError as exc:
            exceptions.append({"account_number": account.account_number, "reason": exc.detail})
            continue
        if not issued:
            # Bills are built by one function; checking one per batch against the schema
            # catches drift without paying the schema's price 100,000 times a run.
            data = validate_data("BillIssued", data)
        issued.append((f"bill-{next_number}", [NewEvent("BillIssued", data)], 0))
        amount += Decimal(data["total"])
        next_number += 1
    last_number = next_number - 1 if issued else None
    clock = _add(stats, "compose", clock)
    appends = list(issued)
    if issued:
        appends.append(
            (
                SEQUENCE_STREAM,
                [
                    NewEvent(
                        "BillNumbersAllocated",
                        {"first": first_number, "last": last_number, "run_id": run_id},
                    )
                ],
                seq_version,
            )
        )
    appends.append(
        (
            run_stream(run_id),
            [
                NewEvent(
                    "BillingRunBatchCompleted",
                    validate_data(
                        "BillingRunBatchCompleted",
                        {
                            "run_id": run_id,
                            "batch": row["batches"] + 1,
                            "last_account": numbers[-1],
                            "billed": len(issued),
                            "first_bill_number": first_number if issued else None,
                            "last_bill_number": last_number,
                            "amount": money_str(amount),
                            "exceptions": exceptions,
                        },
                    ),
                )
            ],
            row["version"],
        )
    )
    uow.append_many(appends)
    _add(stats, "append_and_project", clock)
    return len(batch) == batch_size


def _missing_reads(
    batch: list[Any], unbilled: dict[str, dict[str, list[ReadIn]]], schedule: Schedule
) -> list[str]:
    """Accounts with a metered service that has no new read (they may need an estimate)."""
    out = []
    for row in batch:
        have = unbilled.get(row["account_number"], {})
        for service in row["services"] or []:
            rate = schedule.rates.get(str(service.get("code") or "").strip())
            if rate is not None and rate.metered and rate.code not in have:
                out.append(row["account_number"])
                break
    return out


def _unbilled_reads(
    conn: Any, numbers: list[str], statement_date: dt.date
) -> dict[str, dict[str, list[ReadIn]]]:
    r = p.meter_reads
    rows = conn.execute(
        sa.select(r).where(
            r.c.account_number.in_(numbers),
            r.c.billed_bill_number.is_(None),
            r.c.read_date <= statement_date,
        )
    ).mappings()
    out: dict[str, dict[str, list[ReadIn]]] = {}
    for row in rows:
        out.setdefault(row["account_number"], {}).setdefault(row["service_code"], []).append(
            _read_in(row)
        )
    return out


def _read_in(row: Any) -> ReadIn:
    return ReadIn(
        service_code=row["service_code"],
        meter_number=row["meter_number"],
        previous_read_date=row["previous_read_date"],
        read_date=row["read_date"],
        previous_reading=Decimal(row["previous_reading"]),
        reading=Decimal(row["reading"]),
        usage_units=Decimal(row["usage_units"]),
        read_type=row["read_type"],
        note=row["note"],
    )


def _history(
    conn: Any, numbers: list[str], statement_date: dt.date
) -> dict[str, dict[str, History]]:
    """The last billed read and last year's billed usage rate per account and service."""
    if not numbers:
        return {}
    r = p.meter_reads
    latest = (
        sa.select(
            r.c.account_number,
            r.c.service_code,
            sa.func.max(r.c.read_date).label("read_date"),
        )
        .where(r.c.account_number.in_(numbers), r.c.billed_bill_number.is_not(None))
        .group_by(r.c.account_number, r.c.service_code)
        .subquery()
    )
    last_reads = conn.execute(
        sa.select(r).join(
            latest,
            sa.and_(
                latest.c.account_number == r.c.account_number,
                latest.c.service_code == r.c.service_code,
                latest.c.read_date == r.c.read_date,
            ),
        )
    ).mappings()
    out: dict[str, dict[str, History]] = {}
    lasts: dict[tuple[str, str], ReadIn] = {}
    for row in last_reads:
        lasts[(row["account_number"], row["service_code"])] = _read_in(row)
    since = statement_date - dt.timedelta(days=365)
    usage = conn.execute(
        sa.select(
            r.c.account_number,
            r.c.service_code,
            sa.func.sum(r.c.usage_units),
            sa.func.min(r.c.previous_read_date),
            sa.func.max(r.c.read_date),
        )
        .where(
            r.c.account_number.in_(numbers),
            r.c.billed_bill_number.is_not(None),
            r.c.read_date > since,
        )
        .group_by(r.c.account_number, r.c.service_code)
    )
    totals = {
        (acct, code): (Decimal(units or 0), first, last) for acct, code, units, first, last in usage
    }
    for key, last in lasts.items():
        units, first, final = totals.get(key, (ZERO, None, None))
        days = (final - first).days if first and final else 0
        out.setdefault(key[0], {})[key[1]] = History(last, units, days)
    return out


def _carried(conn: Any, numbers: list[str]) -> dict[str, Carried]:
    """Each account's open balance, and payments and penalties since its last statement."""
    b, ch = p.bills, p.balance_changes
    out: dict[str, Carried] = {}
    lasts = (
        sa.select(
            b.c.account_number,
            sa.func.sum(b.c.balance_due).label("open"),
            sa.func.max(b.c.statement_date).label("last"),
        )
        .where(b.c.account_number.in_(numbers))
        .group_by(b.c.account_number)
        .subquery()
    )
    opened = {acct: Decimal(total or 0) for acct, total, _ in conn.execute(sa.select(lasts))}
    if not opened:
        return out
    changes = conn.execute(
        sa.select(ch.c.account_number, ch.c.reason, sa.func.sum(ch.c.change))
        .join(lasts, lasts.c.account_number == ch.c.account_number)
        .where(ch.c.posted_on > lasts.c.last)
        .group_by(ch.c.account_number, ch.c.reason)
    )
    paid: dict[str, Decimal] = {}
    penalty: dict[str, Decimal] = {}
    for acct, reason, total in changes:
        if reason == "penalty":
            penalty[acct] = penalty.get(acct, ZERO) + Decimal(total)
        elif reason in PAYMENT_REASONS:
            paid[acct] = paid.get(acct, ZERO) - Decimal(total)
    for acct, open_total in opened.items():
        out[acct] = Carried(open_total, paid.get(acct, ZERO), penalty.get(acct, ZERO))
    return out


def list_runs(store: ServiceStore) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(sa.select(p.runs).order_by(p.runs.c.started_at)).mappings()
        return [dict(r) for r in rows]
