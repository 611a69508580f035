"""Late penalties: a configured percent of what is still unpaid after the due date + grace.

Each bill is penalized at most once (the Bill aggregate records it), and never
while a web payment for it is in flight. The service runs this daily on exactly
one replica (a lease); billing runs run it for their cycle first, so the new
statement shows the penalty.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.domain.bill import Bill
from services.billing.schedule import Schedule
from shared.uow import ServiceStore


def pending_bills_clause(now: dt.datetime) -> Any:
    """SQL: bill numbers with a web payment in flight (open checkout, or awaiting settlement)."""
    c, cb = p.checkouts, p.checkout_bills
    return (
        sa.select(cb.c.bill_number)
        .join(c, c.c.checkout_id == cb.c.checkout_id)
        .where(
            sa.or_(
                c.c.status == "pending",
                sa.and_(
                    c.c.status == "open",
                    sa.or_(c.c.expires_at.is_(None), c.c.expires_at > now),
                ),
            )
        )
    )


def assess_penalties(
    store: ServiceStore,
    schedule: Schedule,
    *,
    as_of: dt.date,
    cycle: str | None = None,
    actor: str = "system",
    batch: int = 200,
) -> int:
    """Assess every late penalty due as of a date; returns how many bills were penalized."""
    policy = schedule.policy
    if policy.penalty_percent <= 0:
        return 0
    cutoff = as_of - dt.timedelta(days=policy.grace_days)
    b = p.bills
    now = dt.datetime.now(dt.UTC)
    assessed = 0
    after = ""
    while True:
        query = (
            sa.select(b.c.bill_number)
            .where(
                b.c.late_penalty.is_(True),
                b.c.penalty == 0,
                b.c.balance_due > 0,
                b.c.due_date < cutoff,
                b.c.bill_number > after,
                b.c.bill_number.not_in(pending_bills_clause(now)),
            )
            .order_by(b.c.bill_number)
            .limit(batch)
        )
        if cycle is not None:
            query = query.where(
                b.c.account_number.in_(
                    sa.select(p.accounts.c.account_number).where(p.accounts.c.cycle == cycle)
                )
            )
        with store.read() as conn:
            numbers = [n for (n,) in conn.execute(query)]
        if not numbers:
            return assessed

        def work(uow: Any, numbers: list[str] = numbers) -> int:
            count = 0
            for number in numbers:
                bill = uow.get(Bill, number)
                amount = bill.assess_penalty(
                    as_of,
                    percent=policy.penalty_percent,
                    grace_days=policy.grace_days,
                    minimum=policy.penalty_minimum,
                )
                count += 1 if amount > 0 else 0
            return count

        assessed += store.run(work, actor=actor, correlation_id=f"penalties:{as_of}")
        after = numbers[-1]
