"""Registration, its challenge, and email verification."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from services.identity import state, throttle
from services.identity.domain.challenge import answer_matches, make_challenge
from services.identity.domain.errors import EmailTaken, UserIdTaken
from services.identity.domain.rules import email_key, email_stream_key, password_problem
from services.identity.domain.user import EmailAddress, User
from services.identity.handlers.common import (
    CHANGE_EMAIL,
    VERIFY,
    Identity,
    issue_link,
    restore_legacy,
    spend_token,
    user_by_email,
    user_row,
)
from services.identity.projections import legacy_users
from shared.errors import InvalidInput
from shared.uow import UnitOfWork


def new_challenge(ctx: Identity) -> dict[str, Any]:
    """A fresh registration challenge and its spoken form."""
    challenge = make_challenge(ctx.rng)
    challenge_id = str(uuid.uuid4())
    with ctx.store.events.transaction() as conn:
        conn.execute(
            state.challenges.insert().values(
                challenge_id=challenge_id,
                answers=list(challenge.answers),
                expires_at=ctx.now() + dt.timedelta(seconds=ctx.settings.challenge_ttl),
            )
        )
    return {
        "challenge_id": challenge_id,
        "question": challenge.question,
        "audio_text": challenge.audio_text,
        "expires_in": ctx.settings.challenge_ttl,
    }


def _challenge_problem(ctx: Identity, challenge_id: str | None, answer: str | None) -> str | None:
    """Check and spend a challenge (single use, right or wrong); None when it was answered."""
    if not challenge_id or not answer:
        return "is required: answer the question"
    with ctx.store.events.transaction() as conn:
        row = conn.execute(
            sa.select(state.challenges).where(state.challenges.c.challenge_id == challenge_id)
        ).first()
        spent = row is not None and (
            conn.execute(
                state.challenges.delete().where(state.challenges.c.challenge_id == challenge_id)
            ).rowcount
            == 1
        )
    if not spent:  # unknown, or spent by a request racing this one
        return "has expired: answer the new question"
    if state.utc(row.expires_at) <= ctx.now():
        return "has expired: answer the new question"
    if not answer_matches(answer, row.answers):
        return "is not correct"
    return None


def count_attempt(ctx: Identity, checks: list[tuple[str, Any, str]]) -> None:
    """Count an attempt against each limit in its own transaction, so it counts whatever
    happens next; refuse when a limit is exceeded."""
    now = ctx.now()
    with ctx.store.events.transaction() as conn:
        for name, limit, what in checks:
            throttle.hit_and_check(conn, name, limit, now, what)


def register(
    ctx: Identity,
    *,
    user_id: str,
    email: str,
    password: str,
    client_ip: str,
    challenge_id: str | None = None,
    challenge_answer: str | None = None,
) -> dict[str, Any]:
    """Register a user with a password; the email must be verified before signing in."""
    s = ctx.settings
    count_attempt(
        ctx,
        [
            (
                throttle.key("register-ip", client_ip),
                s.register_per_ip,
                "registrations from your network",
            ),
            (
                throttle.key("register-email", email),
                s.register_per_email,
                "registrations with this email",
            ),
        ],
    )
    errors: dict[str, str] = {}
    if s.captcha:
        problem = _challenge_problem(ctx, challenge_id, challenge_answer)
        if problem:
            errors["challenge_answer"] = problem
    problem = password_problem(password, is_common=ctx.is_common, user_id=user_id, email=email)
    if problem:
        errors["password"] = problem
    if errors:
        code = "challenge_failed" if list(errors) == ["challenge_answer"] else "invalid_input"
        raise InvalidInput("Some fields are not valid.", errors, code=code)

    canonical = user_id.lower()
    with ctx.store.read() as conn:
        if user_row(conn, canonical) is not None:
            raise UserIdTaken()  # before the costly hash; the append below settles races
    password_hash = ctx.hasher.hash(password)

    def work(uow: UnitOfWork) -> Any:
        _check_legacy_reservation(uow, canonical, email)
        user = uow.load(User, canonical)
        user.register(display_user_id=user_id, email=email)
        # Append now: a racing registration of the same ID fails here, as a concurrency
        # conflict that is retried (and then refused), before it touches the credentials.
        uow.flush()
        state.set_password_hash(uow.conn, canonical, password_hash, ctx.now())
        return _verification(ctx, uow, user, email, VERIFY)

    message = ctx.store.run(work)
    ctx.send(message)
    return {
        "user_id": canonical,
        "display_user_id": user_id,
        "email": email,
        "status": "pending_verification",
    }


def _check_legacy_reservation(uow: UnitOfWork, canonical: str, email: str) -> None:
    """A user ID of the old portal stays reserved for the owner of its address."""
    t = legacy_users
    rows = uow.conn.execute(
        sa.select(t.c.email_key).where(t.c.legacy_user_key == canonical, t.c.claimed_by.is_(None))
    ).all()
    if any(r.email_key != email_key(email) for r in rows):
        raise UserIdTaken()


def _verification(ctx: Identity, uow: UnitOfWork, user: User, email: str, purpose: str) -> Any:
    message, expires_at = issue_link(
        ctx, uow, purpose=purpose, user=user, email=email, ttl=ctx.settings.verify_ttl
    )
    user.verification_requested(
        email, "registration" if purpose == VERIFY else "email_change", expires_at
    )
    return message


def verify_email(ctx: Identity, *, token: str) -> dict[str, Any]:
    """Follow an emailed verification link (registration or a new address)."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> dict[str, Any]:
        # Spent first; any refusal below rolls back and leaves the link usable.
        row = spend_token(uow.conn, token, (VERIFY, CHANGE_EMAIL), now)
        user = uow.get(User, row.user_id)
        address = uow.load(EmailAddress, email_stream_key(row.email))
        if address.owner not in (None, user.id):
            owner = user_row(uow.conn, address.owner)
            raise EmailTaken(owner.display_user_id if owner else None)
        if row.purpose == VERIFY:
            user.verify_email(row.email)
        elif user.email.lower() != row.email.lower():
            old = user.change_email(row.email)
            uow.load(EmailAddress, email_stream_key(old)).release(old, user.id)
        address.claim(row.email, user.id)
        restored, matches = restore_legacy(uow, user, row.email)
        return {
            "user_id": user.id,
            "display_user_id": user.display_user_id,
            "email": row.email,
            "purpose": "registration" if row.purpose == VERIFY else "email_change",
            "restored": restored,
            "legacy_matches": matches,
        }

    return ctx.store.run(work)


def resend_verification(ctx: Identity, *, email: str, client_ip: str | None) -> dict[str, Any]:
    """Send a new verification link; the same answer whether or not the address is known."""
    recovery_limits(ctx, email, client_ip)
    with ctx.store.read() as conn:
        row = user_by_email(conn, email)
    if row is None or row.email_verified:
        return {}

    def work(uow: UnitOfWork) -> Any:
        user = uow.get(User, row.user_id)
        if user.email_verified or user.email.lower() != email.lower():
            return None
        return _verification(ctx, uow, user, user.email, VERIFY)

    ctx.send(ctx.store.run(work))
    return {}


def recovery_limits(ctx: Identity, email: str, client_ip: str | None) -> None:
    """Mails on request (resend, reset, reminder, unlock) are limited per address and IP.

    The limits apply whether or not the address is known, so they reveal nothing."""
    s = ctx.settings
    checks = [
        (throttle.key("recovery-email", email), s.recovery_per_email, "requests for this email")
    ]
    if client_ip:
        checks.append(
            (
                throttle.key("recovery-ip", client_ip),
                s.recovery_per_ip,
                "requests from your network",
            )
        )
    count_attempt(ctx, checks)
