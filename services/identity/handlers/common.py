"""What every identity handler shares: its context, lookups, tokens, sessions and legacy claims."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.identity import mail, state
from services.identity.domain.errors import TokenInvalid
from services.identity.domain.legacy import LegacyUser
from services.identity.domain.rules import email_key
from services.identity.domain.user import User
from services.identity.mail import Mailer, SecureEmail
from services.identity.oidc import OidcClient
from services.identity.projections import legacy_users, users
from services.identity.security import (
    PasswordHasher,
    is_common_password,
    looks_like_token,
    new_token,
    token_hash,
)
from services.identity.settings import Settings
from shared.events import utcnow
from shared.uow import UnitOfWork

# Purposes of one-time tokens, with the page of the portal that takes each.
VERIFY = "verify_email"
CHANGE_EMAIL = "change_email"
RESET = "reset_password"
UNLOCK = "unlock"
PAGES = {
    VERIFY: "/verify-email",
    CHANGE_EMAIL: "/verify-email",
    RESET: "/reset-password",
    UNLOCK: "/unlock",
}
MAIL_KINDS = {
    VERIFY: mail.VERIFY_EMAIL,
    CHANGE_EMAIL: mail.VERIFY_EMAIL,
    RESET: mail.RESET_PASSWORD,
    UNLOCK: mail.UNLOCK_ACCOUNT,
}
PURPOSE_WORDS = {
    VERIFY: "registration",
    CHANGE_EMAIL: "email_change",
    RESET: "password_reset",
    UNLOCK: "unlock",
}


@dataclasses.dataclass
class Identity:
    """Everything a handler needs; the service builds one per call, tests build their own."""

    store: Any  # WorkerStore in a service, ServiceStore in tests and the ops tool
    settings: Settings
    hasher: PasswordHasher
    mailer: Mailer
    providers: Mapping[str, OidcClient] = dataclasses.field(default_factory=dict)
    clock: Callable[[], dt.datetime] = utcnow
    rng: random.Random = dataclasses.field(default_factory=random.SystemRandom)
    is_common: Callable[[str], bool] = is_common_password

    def now(self) -> dt.datetime:
        return self.clock()

    def send(self, messages: list[SecureEmail] | SecureEmail | None) -> None:
        """Queue mails after the transaction that made their tokens has committed."""
        if messages is None:
            return
        for message in messages if isinstance(messages, list) else [messages]:
            self.mailer.send(message)


def iso(value: dt.datetime | None) -> str | None:
    value = state.utc(value)
    return value.isoformat() if value else None


# -- users ----------------------------------------------------------------------------------


def user_row(conn: Connection, user_id: str) -> Any:
    return conn.execute(sa.select(users).where(users.c.user_id == user_id.lower())).first()


def user_by_email(conn: Connection, email: str) -> Any:
    """The account with this address: the verified owner, else the latest pending registration."""
    return conn.execute(
        sa.select(users)
        .where(users.c.email_key == email_key(email))
        .order_by(users.c.email_verified.desc(), users.c.created_at.desc())
        .limit(1)
    ).first()


def user_by_login(conn: Connection, login: str) -> Any:
    """Sign-in takes a user ID or an email address; IDs cannot contain '@'."""
    return user_by_email(conn, login) if "@" in login else user_row(conn, login)


def profile(row: Any) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "display_user_id": row.display_user_id,
        "email": row.email,
        "email_verified": bool(row.email_verified),
        "has_password": row.via == "password",
        "external_provider": row.external_provider,
        # The sign-in before the latest one: what "Last successful login" shows once signed in.
        "last_successful_login": iso(row.previous_login_at),
        "last_successful_login_ip": row.previous_login_ip,
        "current_login_at": iso(row.last_login_at),
        "failed_sign_ins_before_current_login": int(row.failures_before_last_login or 0),
        "locked": bool(row.locked),
        "created_at": iso(row.created_at),
    }


# -- one-time tokens and their mail ----------------------------------------------------------


def issue_link(
    ctx: Identity,
    uow: UnitOfWork,
    *,
    purpose: str,
    user: User,
    email: str,
    ttl: int,
    context: dict[str, Any] | None = None,
) -> tuple[SecureEmail, dt.datetime]:
    """Store a new token's hash and build the mail that carries the token itself."""
    token = new_token()
    token_id = str(uuid.uuid4())
    expires_at = state.store_secret_token(
        uow.conn,
        token_hash=token_hash(token),
        token_id=token_id,
        purpose=purpose,
        user_id=user.id,
        email=email,
        now=ctx.now(),
        ttl=ttl,
    )
    message = SecureEmail(
        kind=MAIL_KINDS[purpose],
        to=email,
        context={
            "user_id": user.id,
            "display_user_id": user.display_user_id,
            "purpose": PURPOSE_WORDS[purpose],
            "expires_at": expires_at.isoformat(),
            "expires_in_hours": ttl // 3600,
            "expires_in_minutes": ttl // 60,
            **(context or {}),
        },
        secret_url=f"{ctx.settings.public_url}{PAGES[purpose]}?token={token}",
        idempotency_key=f"identity-{purpose}-{token_id}",
    )
    return message, expires_at


def checked_token(conn: Connection, token: str, purposes: tuple[str, ...], now: dt.datetime) -> Any:
    """The stored token for this raw token if it may be used now; TokenInvalid otherwise."""
    if not looks_like_token(token):
        raise TokenInvalid()
    row = state.find_secret_token(conn, token_hash(token))
    if row is None or row.purpose not in purposes:
        raise TokenInvalid()
    if row.used_at is not None:
        raise TokenInvalid("used")
    if state.utc(row.expires_at) <= now:
        raise TokenInvalid("expired")
    return row


def spend_token(conn: Connection, token: str, purposes: tuple[str, ...], now: dt.datetime) -> Any:
    """Check a link's token and mark it used, in the caller's transaction.

    The update only succeeds for an unused token: of two requests racing with
    the same link, one spends it and the other is told it was used."""
    row = checked_token(conn, token, purposes, now)
    if not state.use_secret_token(conn, row.token_hash, now):
        raise TokenInvalid("used")
    return row


# -- sessions -----------------------------------------------------------------------------


def start_session(
    ctx: Identity,
    uow: UnitOfWork,
    user: User,
    *,
    method: str,
    remember_me: bool,
    client_ip: str | None,
    user_agent: str | None,
) -> dict[str, Any]:
    """A new session with a new token, every time (no token is ever reused)."""
    now = ctx.now()
    s = ctx.settings
    token = new_token()
    session_id = str(uuid.uuid4())
    absolute = now + dt.timedelta(seconds=s.remember_me if remember_me else s.session_absolute)
    idle = None if remember_me else s.session_idle
    user.signed_in(
        session_id=session_id,
        method=method,
        remember_me=remember_me,
        client_ip=client_ip,
        user_agent=user_agent,
        expires_at=absolute,
    )
    uow.conn.execute(
        state.session_tokens.insert().values(
            token_hash=token_hash(token),
            session_id=session_id,
            user_id=user.id,
            remember_me=remember_me,
            created_at=now,
            last_seen_at=now,
            absolute_expires_at=absolute,
            idle_seconds=idle,
        )
    )
    deadline = absolute if idle is None else min(absolute, now + dt.timedelta(seconds=idle))
    return {"token": token, "session_id": session_id, "expires_at": deadline.isoformat()}


def end_sessions(uow: UnitOfWork, user: User, session_ids: list[str], reason: str) -> int:
    """End these sessions; each one ends once, even when two requests race to end it."""
    ended = 0
    for session_id in session_ids:
        if state.drop_session(uow.conn, session_id):
            user.end_session(session_id, reason)
            ended += 1
    return ended


# -- legacy accounts ----------------------------------------------------------------------


def legacy_candidates(conn: Connection, email: str, user_id: str) -> list[Any]:
    rows = conn.execute(
        sa.select(legacy_users)
        .where(legacy_users.c.email_key == email_key(email), legacy_users.c.claimed_by.is_(None))
        .order_by(legacy_users.c.legacy_user_key)
    ).all()
    return [r for r in rows if user_id not in (r.declined_by or [])]


def legacy_view(row: Any) -> dict[str, Any]:
    return {
        "legacy_id": row.legacy_id,
        "user_id": row.legacy_user_id,
        "account_numbers": list(row.account_numbers or []),
    }


def restore_legacy(uow: UnitOfWork, user: User, email: str) -> tuple[list[str], list[dict]]:
    """After an address is verified: one legacy user with it comes back at once; several wait
    for the resident to say which are theirs. Returns (restored account numbers, matches)."""
    candidates = legacy_candidates(uow.conn, email, user.id)
    if len(candidates) == 1:
        row = candidates[0]
        uow.get(LegacyUser, row.legacy_id).claim(user.id)
        numbers = sorted(set(row.account_numbers or []))
        user.claim_legacy([row.legacy_id], numbers, automatic=True)
        return numbers, []
    return [], [legacy_view(r) for r in candidates]
