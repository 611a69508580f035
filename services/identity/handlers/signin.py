"""Signing in and out, and the sessions a user has open."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from services.identity import state, throttle
from services.identity.domain.errors import (
    AccountLocked,
    InvalidCredentials,
    SessionInvalid,
    SessionNotFound,
    UserNotFound,
)
from services.identity.domain.user import User
from services.identity.handlers.common import (
    UNLOCK,
    Identity,
    end_sessions,
    iso,
    issue_link,
    profile,
    start_session,
    user_by_login,
    user_row,
)
from services.identity.projections import sessions
from services.identity.security import looks_like_token, token_hash
from services.identity.settings import DAY, Limit
from shared.uow import UnitOfWork


def account_key(user_id: str) -> str:
    return throttle.key("signin-account", user_id)


def _keys(client_ip: str, login: str, user_id: str | None) -> dict[str, str]:
    return {
        "ip": throttle.key("signin-ip", client_ip),
        # A known account is counted as one, whether named by user ID or email; an unknown
        # login is counted by what was typed, with the same limit, so the two look alike.
        "account": account_key(user_id) if user_id else throttle.key("signin-login", login),
        "unknown": throttle.key("signin-unknown", login),
    }


def sign_in(
    ctx: Identity,
    *,
    login: str,
    password: str,
    remember_me: bool,
    client_ip: str,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """Sign in by user ID or email; a wrong user and a wrong password get the same answer."""
    s = ctx.settings
    now = ctx.now()
    with ctx.store.read() as conn:
        row = user_by_login(conn, login)
        local = row is not None and row.via == "password"
        credentials = state.read_credentials(conn, row.user_id) if local else None
        keys = _keys(client_ip, login, row.user_id if local else None)
        throttle.check(conn, keys["ip"], s.signin_per_ip, now, "failed sign-ins from your network")
        throttle.check(conn, keys["account"], s.signin_per_login, now, "failed sign-ins")

    # Always one argon2 verification: unknown users are checked against a dummy hash.
    matched = ctx.hasher.verify(credentials.password_hash if credentials else None, password)
    if not matched:
        raise _failed(ctx, keys, row.user_id if local else None, client_ip, now)

    rehashed = (
        ctx.hasher.hash(password) if ctx.hasher.needs_rehash(credentials.password_hash) else None
    )

    def work(uow: UnitOfWork) -> dict[str, Any]:
        user = uow.get(User, row.user_id)
        current = state.read_credentials(uow.conn, user.id)
        if current is None or current.generation != credentials.generation:
            return {}  # the password changed while we checked the old one
        user.check_can_sign_in()
        throttle.clear(uow.conn, keys["account"])
        if rehashed:
            state.set_password_hash(uow.conn, user.id, rehashed, now)
        return start_session(
            ctx,
            uow,
            user,
            method="password",
            remember_me=remember_me,
            client_ip=client_ip,
            user_agent=user_agent,
        )

    session = ctx.store.run(work)
    if not session:
        raise InvalidCredentials()
    with ctx.store.read() as conn:
        session["user"] = profile(user_row(conn, row.user_id))
    return session


def _failed(
    ctx: Identity, keys: dict[str, str], user_id: str | None, client_ip: str, now: dt.datetime
) -> Exception:
    """Record a failed sign-in, lock after too many; returns the answer to raise."""
    s = ctx.settings

    def work(uow: UnitOfWork) -> tuple[bool, Any]:
        throttle.hit(uow.conn, keys["ip"], s.signin_per_ip, now)
        throttle.hit(uow.conn, keys["account"], s.signin_per_login, now)
        if user_id is None:
            # Nothing to lock, but answer as a real account would after as many failures.
            failures = throttle.hit(
                uow.conn, keys["unknown"], Limit(s.lock_after_failures, DAY), now
            )
            return failures >= s.lock_after_failures, None
        user = uow.get(User, user_id)
        was_locked = user.locked
        locked_now = user.sign_in_failed(client_ip=client_ip, lock_after=s.lock_after_failures)
        message = None
        if locked_now:
            message, _ = issue_link(
                ctx,
                uow,
                purpose=UNLOCK,
                user=user,
                email=user.email,
                ttl=s.unlock_ttl,
                context={"reason": "too_many_failures"},
            )
        return was_locked or locked_now, message

    locked, message = ctx.store.run(work)
    ctx.send(message)
    return AccountLocked() if locked else InvalidCredentials()


def authenticate(ctx: Identity, *, token: str) -> dict[str, Any]:
    """The gateway's check of a session token: one indexed read, a write at most once a minute."""
    if not looks_like_token(token):
        raise SessionInvalid()
    hashed = token_hash(token)
    now = ctx.now()
    with ctx.store.read() as conn:
        row = state.find_session(conn, hashed)
    if row is None:
        raise SessionInvalid()
    deadline = state.session_deadline(row)
    if deadline <= now:
        _expire(ctx, row.user_id, row.session_id)
        raise SessionInvalid(expired=True)
    if (now - state.utc(row.last_seen_at)).total_seconds() >= ctx.settings.session_touch_interval:
        with ctx.store.events.transaction() as conn:
            conn.execute(
                state.session_tokens.update()
                .where(state.session_tokens.c.token_hash == hashed)
                .values(last_seen_at=now)
            )
        if row.idle_seconds:
            deadline = min(
                state.utc(row.absolute_expires_at), now + dt.timedelta(seconds=row.idle_seconds)
            )
    return {
        "user_id": row.user_id,
        "session_id": row.session_id,
        "expires_at": deadline.isoformat(),
        "remember_me": bool(row.remember_me),
    }


def _expire(ctx: Identity, user_id: str, session_id: str) -> None:
    def work(uow: UnitOfWork) -> None:
        end_sessions(uow, uow.get(User, user_id), [session_id], "expired")

    ctx.store.run(work)


def sign_out(ctx: Identity, *, token: str) -> dict[str, Any]:
    """End the session on the server; signing out twice is fine."""
    if not looks_like_token(token):
        return {}
    with ctx.store.read() as conn:
        row = state.find_session(conn, token_hash(token))
    if row is not None:

        def work(uow: UnitOfWork) -> None:
            end_sessions(uow, uow.get(User, row.user_id), [row.session_id], "signed_out")

        ctx.store.run(work)
    return {}


def list_sessions(
    ctx: Identity, *, user_id: str, current_session_id: str | None = None
) -> list[dict[str, Any]]:
    """The user's open sessions, newest first, the current one marked."""
    now = ctx.now()
    t, k = sessions, state.session_tokens
    with ctx.store.read() as conn:
        if user_row(conn, user_id) is None:
            raise UserNotFound()
        rows = conn.execute(
            sa.select(
                t,
                k.c.last_seen_at,
                k.c.created_at.label("started_at"),
                k.c.absolute_expires_at,
                k.c.idle_seconds,
            )
            .join(k, k.c.session_id == t.c.session_id)
            .where(t.c.user_id == user_id.lower(), t.c.ended_at.is_(None))
            .order_by(t.c.created_at.desc())
        ).all()
    out = []
    for row in rows:
        deadline = state.session_deadline(row)
        if deadline <= now:
            continue
        out.append(
            {
                "session_id": row.session_id,
                "created_at": iso(row.started_at),
                "last_seen_at": iso(row.last_seen_at),
                "expires_at": deadline.isoformat(),
                "user_agent": row.user_agent,
                "client_ip": row.client_ip,
                "method": row.method,
                "remember_me": bool(row.remember_me),
                "current": row.session_id == current_session_id,
            }
        )
    return out


def revoke_session(ctx: Identity, *, user_id: str, session_id: str) -> dict[str, Any]:
    """End one of the user's sessions (from another device)."""
    canonical = user_id.lower()

    def work(uow: UnitOfWork) -> None:
        owner = uow.conn.execute(
            sa.select(state.session_tokens.c.user_id).where(
                state.session_tokens.c.session_id == session_id
            )
        ).scalar()
        if owner != canonical:
            raise SessionNotFound()
        end_sessions(uow, uow.get(User, canonical), [session_id], "revoked")

    ctx.store.run(work)
    return {}


def revoke_other_sessions(
    ctx: Identity, *, user_id: str, current_session_id: str | None
) -> dict[str, Any]:
    """End every session of the user but this one."""
    canonical = user_id.lower()

    def work(uow: UnitOfWork) -> int:
        user = uow.find(User, canonical)
        if user is None:
            raise UserNotFound()
        others = [s for s in state.session_ids_of(uow.conn, canonical) if s != current_session_id]
        return end_sessions(uow, user, others, "revoked")

    return {"revoked": ctx.store.run(work)}


def get_profile(ctx: Identity, *, user_id: str) -> dict[str, Any]:
    """What the portal shows about the user, including the last successful sign-in."""
    with ctx.store.read() as conn:
        row = user_row(conn, user_id)
    if row is None:
        raise UserNotFound()
    return profile(row)
