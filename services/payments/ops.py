"""Staff verbs: `muniportal-ops payments refund|void|show ID` and `payments settlement --date D`.

They go through the payments service over RPC, so the processor is called by the
service itself (with its idempotency keys and side-effect guard), and every change is
recorded with the staff member as its actor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
from typing import Any

from shared.ops.cli import UsageError, amqp_uri, emit, table
from shared.rpc import rpc_client


def register(subparsers: Any, groups: dict[str, Any], common: argparse.ArgumentParser) -> None:
    # --json belongs to each action (a parent parser's value would be overridden by it).
    p = subparsers.add_parser("payments", help="payments: refunds, voids, settlement")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument(
        "--staff",
        default=os.environ.get("MUNIPORTAL_STAFF") or _user(),
        help="who is acting (recorded on the events; default: your login)",
    )

    r = sub.add_parser("refund", parents=[common, who], help="refund a payment, in full or in part")
    r.add_argument("payment", help="payment id, checkout id or confirmation number")
    r.add_argument("--amount", help="dollars and cents (default: everything still refundable)")
    r.add_argument("--reason", required=True, help="why (kept with the refund)")
    r.set_defaults(func=cmd_refund)

    v = sub.add_parser(
        "void", parents=[common, who], help="stop an open payment, or void an unsettled one"
    )
    v.add_argument("payment", help="payment id, checkout id or confirmation number")
    v.add_argument("--reason", default="Voided by city staff.")
    v.set_defaults(func=cmd_void)

    s = sub.add_parser("show", parents=[common], help="one payment, with its refunds")
    s.add_argument("payment", help="payment id, checkout id or confirmation number")
    s.set_defaults(func=cmd_show)

    t = sub.add_parser(
        "settlement",
        parents=[common],
        help="reconcile the processor's transactions of a day with ours; list every difference",
    )
    t.add_argument("--date", required=True, help="the (UTC) day, YYYY-MM-DD")
    t.set_defaults(func=cmd_settlement)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): say so rather than guess
        return "unknown"


def _client(staff: str | None = None):
    context = {"actor": f"staff:{staff}"} if staff else None
    return rpc_client(amqp_uri(), timeout=30, context_data=context)


def _summary(p: dict[str, Any]) -> str:
    confirmation = (p.get("receipt") or {}).get("confirmation_number") or "-"
    return (
        f"payment {p['payment_id']} ({confirmation}): {p['payment_status']}, "
        f"total ${p['amount_total']}, refunded ${p['refunded']}"
    )


def cmd_refund(args: argparse.Namespace) -> None:
    with _client(args.staff) as cluster:
        payment = cluster.payments.refund(args.payment, args.amount, args.reason)
    emit(args, payment, _summary(payment) + _requests(payment))


def cmd_void(args: argparse.Namespace) -> None:
    with _client(args.staff) as cluster:
        payment = cluster.payments.void(args.payment, args.reason)
    emit(args, payment, _summary(payment) + _requests(payment))


def cmd_show(args: argparse.Namespace) -> None:
    with _client() as cluster:
        payment = cluster.payments.payment(args.payment)
    items = table(payment["items"], ["bill_number", "account_number", "amount"])
    emit(args, payment, _summary(payment) + "\n" + items + _requests(payment))


def _requests(payment: dict[str, Any]) -> str:
    rows = payment.get("refund_requests") or []
    if not rows:
        return ""
    return "\n" + table(rows, ["request_id", "amount", "status", "void", "reason", "failure"])


def cmd_settlement(args: argparse.Namespace) -> None:
    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        raise UsageError(f"--date {args.date!r} is not a date (YYYY-MM-DD)") from None
    with _client() as cluster:
        report = cluster.payments.settlement(day.isoformat())
    head = (
        f"settlement {report['date']}: processor {report['processor']['transactions']} "
        f"transactions, net ${report['processor']['net']}; ours "
        f"{report['ours']['transactions']}, net ${report['ours']['net']}; "
        + ("balanced" if report["balanced"] else f"{len(report['differences'])} difference(s)")
    )
    rows = report["differences"]
    columns = [
        "difference",
        "transaction_id",
        "kind",
        "payment_id",
        "processor_amount",
        "our_amount",
    ]
    emit(args, report, head + ("\n" + table(rows, columns) if rows else ""))
