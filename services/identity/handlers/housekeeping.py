"""Housekeeping: end expired sessions (with their events) and drop expired one-time state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from services.identity import state
from services.identity.domain.user import User
from services.identity.handlers.common import Identity, end_sessions
from shared.uow import UnitOfWork

BATCH = 200


def expire_sessions(ctx: Identity) -> int:
    """Record the end of every session past its deadline; safe to run on several replicas."""
    now = ctx.now()
    t = state.session_tokens
    idle_cutoff = now - dt.timedelta(seconds=ctx.settings.session_idle)
    with ctx.store.read() as conn:
        # Candidates by index; the exact deadline of each is checked below.
        rows = conn.execute(
            sa.select(
                t.c.session_id,
                t.c.user_id,
                t.c.absolute_expires_at,
                t.c.last_seen_at,
                t.c.idle_seconds,
            ).where(
                sa.or_(
                    t.c.absolute_expires_at <= now,
                    sa.and_(t.c.idle_seconds.is_not(None), t.c.last_seen_at <= idle_cutoff),
                )
            )
        ).all()
    expired = [r for r in rows if state.session_deadline(r) <= now]
    ended = 0
    for start in range(0, len(expired), BATCH):
        batch = expired[start : start + BATCH]

        def work(uow: UnitOfWork, batch: list[Any] = batch) -> int:
            count = 0
            for row in batch:
                count += end_sessions(uow, uow.get(User, row.user_id), [row.session_id], "expired")
            return count

        ended += ctx.store.run(work, actor="system")
    return ended


def purge(ctx: Identity) -> dict[str, int]:
    """Expire sessions and delete spent tokens, challenges, flows and throttle windows."""
    ended = expire_sessions(ctx)
    with ctx.store.events.transaction() as conn:
        purged = state.purge_expired(conn, ctx.now())
    return {"sessions_expired": ended, **purged}
