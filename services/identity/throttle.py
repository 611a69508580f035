"""Rate limits kept in the identity store, so every replica sees the same counts.

A fixed window per key: the first hit opens a window of `Limit.window` seconds,
each hit counts, and a full window refuses until it ends. One upsert per hit,
atomic on both backends. Keys hold a hash, not the IP or address itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.identity.domain.errors import TooManyAttempts
from services.identity.settings import Limit
from services.identity.state import TS, throttles, utc


def key(kind: str, value: str) -> str:
    digest = hashlib.blake2b(value.strip().lower().encode(), digest_size=20).hexdigest()
    return f"{kind}:{digest}"


def hit(conn: Connection, name: str, limit: Limit, now: dt.datetime) -> int:
    """Count one hit; returns the count in the current window."""
    expires = now + dt.timedelta(seconds=limit.window)
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    t = throttles
    fresh = t.c.expires_at <= sa.literal(now, TS)
    stmt = (
        insert(t)
        .values(
            key=name, window_start=now, window_seconds=limit.window, count=1, expires_at=expires
        )
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "count": sa.case((fresh, 1), else_=t.c.count + 1),
                "window_start": sa.case((fresh, sa.literal(now, TS)), else_=t.c.window_start),
                "window_seconds": limit.window,
                "expires_at": sa.case((fresh, sa.literal(expires, TS)), else_=t.c.expires_at),
            },
        )
        .returning(t.c.count)
    )
    return int(conn.execute(stmt).scalar_one())


def current(conn: Connection, name: str, now: dt.datetime) -> tuple[int, int]:
    """(count, seconds until the window ends) for a key; (0, 0) if no window is open."""
    row = conn.execute(
        sa.select(throttles.c.count, throttles.c.expires_at).where(throttles.c.key == name)
    ).first()
    if row is None:
        return 0, 0
    expires = utc(row.expires_at)
    if expires <= now:
        return 0, 0
    return int(row.count), max(1, int((expires - now).total_seconds() + 0.999))


def check(conn: Connection, name: str, limit: Limit, now: dt.datetime, what: str) -> None:
    """Refuse when the window is already full."""
    count, retry_after = current(conn, name, now)
    if count >= limit.limit:
        raise TooManyAttempts(retry_after, what)


def hit_and_check(conn: Connection, name: str, limit: Limit, now: dt.datetime, what: str) -> None:
    """Count this attempt, then refuse it if it went over the limit."""
    if hit(conn, name, limit, now) > limit.limit:
        _, retry_after = current(conn, name, now)
        raise TooManyAttempts(retry_after, what)


def clear(conn: Connection, name: str) -> None:
    conn.execute(throttles.delete().where(throttles.c.key == name))
