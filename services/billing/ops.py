"""Billing's muniportal-ops verbs.

import reads FILE [--dry-run]          meter reads (docs/billing.md)
import bills FILE [--dry-run]          bills from an outside billing system
billing-run --cycle C --statement-date D [--due-days N] [--batch-size N] [--pause S]
billing-runs [--exceptions RUN_ID]     runs and their exceptions
assess-penalties [--as-of D]           late penalties due (normally the service does it)
export payments --date D [--output F]  the day's posted and reversed payments (CSV)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from services.billing.domain.values import parse_date
from services.billing.schedule import load_schedule


def _usage(message: str) -> Exception:
    from shared.ops.cli import UsageError

    return UsageError(message)


def _date(value: str, option: str) -> dt.date:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise _usage(f"{option}: {exc}") from None


def _store() -> Any:
    from services.billing import domain  # noqa: F401 - event schemas
    from shared.ops.registry import open_store

    store = open_store("billing")
    store.migrate()
    return store


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def _rejected(exc: Any) -> None:
    for line in exc.lines():
        print(f"  {line}", file=sys.stderr)


def cmd_import_reads(args: argparse.Namespace) -> None:
    from services.billing.csvfile import ImportRejected
    from services.billing.import_reads import import_reads

    store = _store()
    try:
        result = import_reads(store, args.file, schedule=load_schedule(), dry_run=args.dry_run)
    except ImportRejected as exc:
        _rejected(exc)
        raise
    finally:
        store.dispose()
    verb = "would record" if args.dry_run else "recorded"
    _emit(
        args,
        result,
        f"{result['file']}: {result['rows']} reads, {verb} {result['recorded']}, "
        f"{result['skipped']} already on record",
    )


def cmd_import_bills(args: argparse.Namespace) -> None:
    from services.billing.csvfile import ImportRejected
    from services.billing.import_bills import import_bills

    store = _store()
    try:
        result = import_bills(store, args.file, schedule=load_schedule(), dry_run=args.dry_run)
    except ImportRejected as exc:
        _rejected(exc)
        raise
    finally:
        store.dispose()
    verb = "would issue" if args.dry_run else "issued"
    _emit(
        args,
        result,
        f"{result['file']}: {result['bills']} bills, {verb} {result['issued']}, "
        f"{result['skipped']} already issued",
    )


def cmd_billing_run(args: argparse.Namespace) -> None:
    from services.billing.run import billing_run

    statement_date = _date(args.statement_date, "--statement-date")
    if args.due_days is not None and not 0 <= args.due_days <= 366:
        raise _usage("--due-days must be between 0 and 366")
    if not 1 <= args.batch_size <= 5000:
        raise _usage("--batch-size must be between 1 and 5000")
    if args.pause < 0:
        raise _usage("--pause must be 0 or more")
    schedule = load_schedule(args.schedule)
    store = _store()

    def progress(row: dict[str, Any]) -> None:
        if not args.json and not args.quiet:
            print(
                f"  batch {row.get('batches')}: {row.get('billed')} billed, "
                f"{row.get('exceptions')} exceptions, through account {row.get('last_account')}",
                file=sys.stderr,
                flush=True,
            )

    try:
        result = billing_run(
            store,
            cycle=args.cycle,
            statement_date=statement_date,
            schedule=schedule,
            due_days=args.due_days,
            batch_size=args.batch_size,
            pause=args.pause,
            actor=f"staff:{os.environ.get('USER', 'operator')}",
            progress=progress,
        )
    finally:
        store.dispose()
    r = result.as_dict()
    numbers = (
        f"bills {r['first_bill_number']}..{r['last_bill_number']}"
        if r["first_bill_number"]
        else "no bills"
    )
    state = {
        "completed": "resumed and completed" if r["resumed"] else "completed",
        "already_completed": "already completed earlier",
    }[r["status"]]
    _emit(
        args,
        r,
        f"run {r['run_id']} {state}: {r['billed']} bills ({numbers}), total {r['amount']}, "
        f"due {r['due_date']}, {r['exceptions']} exceptions"
        + (f", {r['penalties']} late penalties assessed" if r["penalties"] else ""),
    )


def cmd_billing_runs(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from services.billing import projections as p
    from shared.ops.cli import table

    store = _store()
    try:
        with store.read() as conn:
            if args.exceptions:
                t = p.run_exceptions
                rows = [
                    dict(r)
                    for r in conn.execute(
                        sa.select(t)
                        .where(t.c.run_id == args.exceptions)
                        .order_by(t.c.account_number)
                    ).mappings()
                ]
                known = conn.execute(
                    sa.select(p.runs.c.run_id).where(p.runs.c.run_id == args.exceptions)
                ).first()
                if known is None:
                    from shared.ops.registry import UnknownName

                    raise UnknownName(f"no billing run {args.exceptions!r}")
                _emit(args, rows, table(rows, ["account_number", "reason"]))
                return
            rows = [
                dict(r)
                for r in conn.execute(sa.select(p.runs).order_by(p.runs.c.started_at)).mappings()
            ]
    finally:
        store.dispose()
    _emit(
        args,
        rows,
        table(
            rows,
            [
                "run_id",
                "status",
                "billed",
                "exceptions",
                "amount",
                "first_bill_number",
                "last_bill_number",
                "due_date",
            ],
        ),
    )


def cmd_assess_penalties(args: argparse.Namespace) -> None:
    from services.billing.penalties import assess_penalties

    schedule = load_schedule()
    as_of = _date(args.as_of, "--as-of") if args.as_of else schedule.today()
    if as_of > schedule.today():
        raise _usage(f"--as-of {as_of} is after today ({schedule.today()})")
    store = _store()
    try:
        count = assess_penalties(
            store, schedule, as_of=as_of, actor=f"staff:{os.environ.get('USER', 'operator')}"
        )
    finally:
        store.dispose()
    _emit(
        args,
        {"as_of": as_of.isoformat(), "assessed": count},
        f"{count} late penalties assessed as of {as_of}",
    )


def cmd_export_payments(args: argparse.Namespace) -> None:
    from services.billing.export import payments_csv

    date = _date(args.date, "--date")
    schedule = load_schedule()
    if date > schedule.today():
        raise _usage(f"--date {date} is after today ({schedule.today()}): nothing is posted yet")
    store = _store()
    try:
        with store.read() as conn:
            text, summary = payments_csv(conn, date)
    finally:
        store.dispose()
    if args.output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        target = Path(args.output)
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    message = f"{summary['rows']} postings on {summary['date']}, net {summary['net']}" + (
        f" -> {args.output}" if args.output not in (None, "-") else ""
    )
    print(json.dumps(summary) if args.json else message, file=sys.stderr)


def register(sub: Any, groups: dict[str, Any], common: argparse.ArgumentParser) -> None:
    p = groups["import"].add_parser("reads", parents=[common], help="billing: meter reads (CSV)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="check the file, store nothing")
    p.set_defaults(func=cmd_import_reads)

    p = groups["import"].add_parser(
        "bills", parents=[common], help="billing: bills from an outside billing system (CSV)"
    )
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="check the file, store nothing")
    p.set_defaults(func=cmd_import_bills)

    p = groups["export"].add_parser(
        "payments", parents=[common], help="billing: the day's posted and reversed payments (CSV)"
    )
    p.add_argument("--date", required=True, help="posting day, YYYY-MM-DD")
    p.add_argument("--output", "-o", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export_payments)

    p = sub.add_parser(
        "billing-run", parents=[common], help="billing: bill a cycle's accounts (resumable)"
    )
    p.add_argument("--cycle", required=True)
    p.add_argument("--statement-date", required=True, help="YYYY-MM-DD")
    p.add_argument("--due-days", type=int, help="due date = statement date + N (default: schedule)")
    p.add_argument("--batch-size", type=int, default=500, help="accounts per transaction")
    p.add_argument("--pause", type=float, default=0.0, help="seconds between batches (throttle)")
    p.add_argument("--schedule", help="billing schedule file (default: BILLING_SCHEDULE)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_billing_run)

    p = sub.add_parser("billing-runs", parents=[common], help="billing: runs and their exceptions")
    p.add_argument("--exceptions", metavar="RUN_ID", help="list one run's exceptions")
    p.set_defaults(func=cmd_billing_runs)

    p = sub.add_parser(
        "assess-penalties", parents=[common], help="billing: assess the late penalties due"
    )
    p.add_argument("--as-of", help="YYYY-MM-DD (default: today)")
    p.set_defaults(func=cmd_assess_penalties)
