"""Recovery and account changes: forgot user ID or password, unlock, change password or email.

Requests that mail an address answer the same whether or not the address is
known. Their mail leaves from a queue after the answer, so sending adds no time;
a known address costs one more short write, a few milliseconds.
"""

from __future__ import annotations

from typing import Any

from services.identity import state, throttle
from services.identity.domain.errors import NoLocalPassword, UserNotFound, WrongPassword
from services.identity.domain.rules import password_problem
from services.identity.domain.user import User
from services.identity.handlers.common import (
    CHANGE_EMAIL,
    RESET,
    UNLOCK,
    Identity,
    checked_token,
    end_sessions,
    issue_link,
    spend_token,
    user_by_email,
    user_row,
)
from services.identity.handlers.registration import count_attempt, recovery_limits
from services.identity.handlers.signin import account_key
from shared.errors import InvalidInput
from shared.uow import UnitOfWork


def request_password_reset(ctx: Identity, *, email: str, client_ip: str | None) -> dict[str, Any]:
    """Mail a reset link (valid 1 h, single use) if a password account has this address."""
    recovery_limits(ctx, email, client_ip)
    with ctx.store.read() as conn:
        row = user_by_email(conn, email)
    if row is None or row.via != "password":
        return {}

    def work(uow: UnitOfWork) -> Any:
        user = uow.get(User, row.user_id)
        user.reset_requested()
        # Only the newest link works: an older one in a forgotten inbox is no longer a way in.
        state.retire_secret_tokens(uow.conn, user.id, RESET, ctx.now())
        message, _ = issue_link(
            ctx, uow, purpose=RESET, user=user, email=user.email, ttl=ctx.settings.reset_ttl
        )
        return message

    ctx.send(ctx.store.run(work))
    return {}


def reset_password(ctx: Identity, *, token: str, new_password: str) -> dict[str, Any]:
    """Set a new password from a reset link: every session ends, nobody is signed in."""
    now = ctx.now()
    with ctx.store.read() as conn:
        row = checked_token(conn, token, (RESET,), now)
        owner = user_row(conn, row.user_id)
    problem = password_problem(
        new_password, is_common=ctx.is_common, user_id=owner.display_user_id, email=owner.email
    )
    if problem:
        # The link stays usable: the resident only has to pick a better password.
        raise InvalidInput(
            f"new_password: {problem}", {"new_password": problem}, code="weak_password"
        )
    password_hash = ctx.hasher.hash(new_password)

    def work(uow: UnitOfWork) -> None:
        checked = spend_token(uow.conn, token, (RESET,), now)
        user = uow.get(User, checked.user_id)
        ended = end_sessions(uow, user, state.session_ids_of(uow.conn, user.id), "password_reset")
        user.reset_password(ended)
        state.set_password_hash(uow.conn, user.id, password_hash, now)
        # The reset proved control of the address: a lock from failed sign-ins has done its job.
        user.unlock("password_reset")
        throttle.clear(uow.conn, account_key(user.id))

    ctx.store.run(work)
    return {}


def remind_user_id(ctx: Identity, *, email: str, client_ip: str | None) -> dict[str, Any]:
    """Mail the user ID to the address (through notifications, from the event)."""
    recovery_limits(ctx, email, client_ip)
    with ctx.store.read() as conn:
        row = user_by_email(conn, email)
    if row is not None:

        def work(uow: UnitOfWork) -> None:
            uow.get(User, row.user_id).remind_user_id()

        ctx.store.run(work)
    return {}


def request_unlock(ctx: Identity, *, email: str, client_ip: str | None = None) -> dict[str, Any]:
    """Mail a new unlock link if the account with this address is locked."""
    recovery_limits(ctx, email, client_ip)
    with ctx.store.read() as conn:
        row = user_by_email(conn, email)
    if row is None or not row.locked:
        return {}

    def work(uow: UnitOfWork) -> Any:
        user = uow.get(User, row.user_id)
        if not user.locked:
            return None
        user.unlock_requested()
        state.retire_secret_tokens(uow.conn, user.id, UNLOCK, ctx.now())
        message, _ = issue_link(
            ctx,
            uow,
            purpose=UNLOCK,
            user=user,
            email=user.email,
            ttl=ctx.settings.unlock_ttl,
            context={"reason": "requested"},
        )
        return message

    ctx.send(ctx.store.run(work))
    return {}


def unlock(ctx: Identity, *, token: str) -> dict[str, Any]:
    """Unlock an account from the emailed link; it does not sign anyone in."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> None:
        row = spend_token(uow.conn, token, (UNLOCK,), now)
        uow.get(User, row.user_id).unlock("email_link")
        throttle.clear(uow.conn, account_key(row.user_id))

    ctx.store.run(work)
    return {}


def _reauthenticate(ctx: Identity, user_id: str, password: str, field: str) -> Any:
    """Check the password of a signed-in user before a sensitive change (limited per user)."""
    now = ctx.now()
    with ctx.store.read() as conn:
        row = user_row(conn, user_id)
        if row is None:
            raise UserNotFound()
        if row.via != "password":
            raise NoLocalPassword(row.external_provider)
        credentials = state.read_credentials(conn, row.user_id)
        reauth = throttle.key("reauth", row.user_id)
        throttle.check(conn, reauth, ctx.settings.reauth_per_user, now, "password attempts")
    if not ctx.hasher.verify(credentials.password_hash, password):
        count_attempt(ctx, [(reauth, ctx.settings.reauth_per_user, "password attempts")])
        raise WrongPassword(field)
    return row, credentials


def change_password(
    ctx: Identity,
    *,
    user_id: str,
    current_password: str,
    new_password: str,
    end_other_sessions: bool = False,
    current_session_id: str | None = None,
) -> dict[str, Any]:
    """Change the password, knowing the current one; optionally end the other sessions."""
    row, credentials = _reauthenticate(ctx, user_id, current_password, "current_password")
    problem = password_problem(
        new_password, is_common=ctx.is_common, user_id=row.display_user_id, email=row.email
    )
    if problem is None and ctx.hasher.verify(credentials.password_hash, new_password):
        problem = "must be different from your current password"
    if problem:
        raise InvalidInput(
            f"new_password: {problem}", {"new_password": problem}, code="weak_password"
        )
    password_hash = ctx.hasher.hash(new_password)
    now = ctx.now()

    def work(uow: UnitOfWork) -> int:
        user = uow.get(User, row.user_id)
        ended = 0
        if end_other_sessions:
            others = [s for s in state.session_ids_of(uow.conn, user.id) if s != current_session_id]
            ended = end_sessions(uow, user, others, "password_changed")
        user.change_password(ended)
        state.set_password_hash(uow.conn, user.id, password_hash, now)
        throttle.clear(uow.conn, throttle.key("reauth", user.id))
        return ended

    return {"sessions_ended": ctx.store.run(work)}


def change_email(ctx: Identity, *, user_id: str, password: str, new_email: str) -> dict[str, Any]:
    """Start an email change: re-authenticate, then verify the new address by its link.

    The address changes only once verified; the old address then gets a notice."""
    row, _ = _reauthenticate(ctx, user_id, password, "password")

    def work(uow: UnitOfWork) -> Any:
        user = uow.get(User, row.user_id)
        user.request_email_change(new_email)
        message, expires_at = issue_link(
            ctx,
            uow,
            purpose=CHANGE_EMAIL,
            user=user,
            email=new_email,
            ttl=ctx.settings.verify_ttl,
            context={"old_email": user.email},
        )
        user.verification_requested(new_email, "email_change", expires_at)
        return message

    ctx.send(ctx.store.run(work))
    return {"pending_email": new_email}
