"""Settlement: the processor's record of one day's money against ours, every difference listed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from services.payments.domain.money import money_str
from services.payments.processors.base import Processor
from services.payments.projections import movements

# A void is the processor's word for a refund before settlement: the same money.
SAME_KIND = {"void": "refund"}


def _kind(kind: str) -> str:
    return SAME_KIND.get(kind, kind)


def reconcile(store: Any, processor: Processor, day: dt.date) -> dict[str, Any]:
    theirs = {t.transaction_id: t for t in processor.transactions(day)}
    with store.read() as conn:
        ours_today = {
            r["transaction_id"]: r
            for r in conn.execute(sa.select(movements).where(movements.c.day == day)).mappings()
        }
        # Their transactions we recorded under another day (e.g. a webhook after midnight).
        elsewhere = {
            r["transaction_id"]: r
            for r in conn.execute(
                sa.select(movements).where(
                    movements.c.transaction_id.in_([t for t in theirs if t not in ours_today])
                )
            ).mappings()
        }
    differences: list[dict[str, Any]] = []
    for txn_id, t in sorted(theirs.items(), key=lambda kv: kv[1].created_at):
        ours = ours_today.get(txn_id)
        if ours is None:
            other = elsewhere.get(txn_id)
            differences.append(
                {
                    "difference": "recorded_on_another_day" if other else "missing_in_ours",
                    "transaction_id": txn_id,
                    "kind": t.kind,
                    "payment_id": t.reference,
                    "processor_payment_id": t.processor_payment_id,
                    "processor_amount": money_str(t.amount),
                    "our_amount": money_str(other["amount"]) if other else None,
                    "our_day": other["day"].isoformat() if other else None,
                }
            )
            continue
        if Decimal(ours["amount"]) != t.amount or _kind(ours["kind"]) != _kind(t.kind):
            differences.append(
                {
                    "difference": "amount_mismatch"
                    if Decimal(ours["amount"]) != t.amount
                    else "kind_mismatch",
                    "transaction_id": txn_id,
                    "kind": t.kind,
                    "our_kind": ours["kind"],
                    "payment_id": ours["payment_id"],
                    "processor_payment_id": t.processor_payment_id,
                    "processor_amount": money_str(t.amount),
                    "our_amount": money_str(ours["amount"]),
                }
            )
    for txn_id, ours in sorted(ours_today.items(), key=lambda kv: kv[1]["occurred_at"]):
        if txn_id not in theirs:
            differences.append(
                {
                    "difference": "missing_at_processor",
                    "transaction_id": txn_id,
                    "kind": ours["kind"],
                    "payment_id": ours["payment_id"],
                    "processor_amount": None,
                    "our_amount": money_str(ours["amount"]),
                }
            )

    def net(items: list[tuple[str, Decimal]]) -> Decimal:
        return sum((a if k == "charge" else -a for k, a in items), Decimal("0"))

    processor_net = net([(t.kind, t.amount) for t in theirs.values()])
    our_net = net([(r["kind"], Decimal(r["amount"])) for r in ours_today.values()])
    return {
        "date": day.isoformat(),
        "processor": {"transactions": len(theirs), "net": money_str(processor_net)},
        "ours": {"transactions": len(ours_today), "net": money_str(our_net)},
        "matched": len(theirs)
        - sum(1 for d in differences if d["difference"] != "missing_at_processor"),
        "differences": differences,
        "balanced": not differences,
    }
