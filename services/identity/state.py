"""State the identity service keeps beside its event log, in its own store.

These tables hold secrets and counters, which are not facts other services may
see (every event is published): password hashes, the hashes of session and
one-time tokens, throttle counters, open challenges and OpenID Connect flows.
They are written in the same transaction as the events they go with, and a
projection rebuild never touches them. Losing them (say, restoring only the
log) costs users their passwords and sessions, not their accounts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.identity.projections import TS, metadata

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("user_id", sa.String(20), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("changed_at", TS, nullable=False),
    # Bumped at every change: a sign-in that verified an older hash must not win.
    sa.Column("generation", sa.Integer, nullable=False),
)

session_tokens = sa.Table(
    "session_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(36), nullable=False, unique=True),
    sa.Column("user_id", sa.String(20), nullable=False, index=True),
    sa.Column("remember_me", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False, index=True),
    sa.Column("absolute_expires_at", TS, nullable=False, index=True),
    sa.Column("idle_seconds", sa.Integer),  # None: no idle timeout (remember me)
)

secret_tokens = sa.Table(
    "secret_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(36), nullable=False, unique=True),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("user_id", sa.String(20), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
    sa.Column("used_at", TS),
    sa.Index("ix_secret_tokens_user_purpose", "user_id", "purpose"),
)

throttles = sa.Table(
    "throttles",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("window_start", TS, nullable=False),
    sa.Column("window_seconds", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
)

challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("challenge_id", sa.String(36), primary_key=True),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
)

oidc_flows = sa.Table(
    "oidc_flows",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives back naive datetimes; everything stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- credentials --------------------------------------------------------------------------


def read_credentials(conn: Connection, user_id: str) -> Any:
    return conn.execute(sa.select(credentials).where(credentials.c.user_id == user_id)).first()


def set_password_hash(conn: Connection, user_id: str, password_hash: str, now: dt.datetime) -> None:
    updated = conn.execute(
        credentials.update()
        .where(credentials.c.user_id == user_id)
        .values(
            password_hash=password_hash, changed_at=now, generation=credentials.c.generation + 1
        )
    ).rowcount
    if not updated:
        conn.execute(
            credentials.insert().values(
                user_id=user_id, password_hash=password_hash, changed_at=now, generation=1
            )
        )


# -- one-time tokens ----------------------------------------------------------------------


def store_secret_token(
    conn: Connection,
    *,
    token_hash: str,
    token_id: str,
    purpose: str,
    user_id: str,
    email: str,
    now: dt.datetime,
    ttl: int,
) -> dt.datetime:
    expires_at = now + dt.timedelta(seconds=ttl)
    conn.execute(
        secret_tokens.insert().values(
            token_hash=token_hash,
            token_id=token_id,
            purpose=purpose,
            user_id=user_id,
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return expires_at


def find_secret_token(conn: Connection, token_hash: str) -> Any:
    return conn.execute(
        sa.select(secret_tokens).where(secret_tokens.c.token_hash == token_hash)
    ).first()


def use_secret_token(conn: Connection, token_hash: str, now: dt.datetime) -> bool:
    """Mark a token used; False if another request used it first (single use under races)."""
    return (
        conn.execute(
            secret_tokens.update()
            .where(secret_tokens.c.token_hash == token_hash, secret_tokens.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        == 1
    )


def retire_secret_tokens(conn: Connection, user_id: str, purpose: str, now: dt.datetime) -> None:
    """Older links of this kind stop working (a new reset link replaces the last one)."""
    conn.execute(
        secret_tokens.update()
        .where(
            secret_tokens.c.user_id == user_id,
            secret_tokens.c.purpose == purpose,
            secret_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )


# -- sessions -----------------------------------------------------------------------------


def find_session(conn: Connection, token_hash: str) -> Any:
    return conn.execute(
        sa.select(session_tokens).where(session_tokens.c.token_hash == token_hash)
    ).first()


def drop_session(conn: Connection, session_id: str) -> bool:
    """Forget a session's token; False if it was already gone (someone else ended it)."""
    return (
        conn.execute(
            session_tokens.delete().where(session_tokens.c.session_id == session_id)
        ).rowcount
        == 1
    )


def session_ids_of(conn: Connection, user_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(session_tokens.c.session_id).where(session_tokens.c.user_id == user_id)
        ).scalars()
    )


def session_deadline(row: Any) -> dt.datetime:
    """When a session stops working: its absolute end, or its idle end if sooner."""
    deadline = utc(row.absolute_expires_at)
    if row.idle_seconds:
        idle_end = utc(row.last_seen_at) + dt.timedelta(seconds=row.idle_seconds)
        deadline = min(deadline, idle_end)
    return deadline


# -- housekeeping -------------------------------------------------------------------------


def purge_expired(conn: Connection, now: dt.datetime) -> dict[str, int]:
    """Delete expired one-time tokens, challenges, flows and throttle windows."""
    day_ago = now - dt.timedelta(days=1)
    return {
        "secret_tokens": conn.execute(
            secret_tokens.delete().where(secret_tokens.c.expires_at < day_ago)
        ).rowcount,
        "challenges": conn.execute(
            challenges.delete().where(challenges.c.expires_at < now)
        ).rowcount,
        "oidc_flows": conn.execute(
            oidc_flows.delete().where(oidc_flows.c.expires_at < now)
        ).rowcount,
        "throttles": conn.execute(throttles.delete().where(throttles.c.expires_at < now)).rowcount,
    }
