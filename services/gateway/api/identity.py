"""Registration, verification, signing in, sessions, recovery and profile changes."""

from __future__ import annotations

import logging
import urllib.parse

from services.gateway import schemas as s
from services.gateway.problems import Problem
from services.gateway.routing import route
from shared.errors import MuniportalError

log = logging.getLogger(__name__)


def _take_over_guest_cart(ctx, user_id: str) -> int:
    """Move a quick-pay cart into the resident's own when they sign in; returns items moved."""
    ctx.resolve_guest()
    if ctx.guest is None:
        return 0
    guest = f"guest:{ctx.guest['g']}"
    ctx.services.set_context(actor=f"user:{user_id}")
    moved = 0
    try:
        items = ctx.services.payments.get_cart(guest).get("items", [])
        for item in items:
            ctx.services.payments.add_to_cart(
                f"user:{user_id}", item["bill_number"], item["amount"]
            )
            ctx.services.payments.remove_from_cart(guest, item["bill_number"])
            moved += 1
    except MuniportalError as exc:  # a bill now in checkout, paid, ...: it stays behind
        log.info("guest cart not fully taken over at sign-in: %s", exc)
    return moved


def _signed_in(ctx, result: dict, remember_me: bool) -> tuple[int, dict]:
    token = result["token"]
    user = result.get("user") or {}
    if user.get("user_id"):
        _take_over_guest_cart(ctx, user["user_id"])
    ctx.set_session_cookies(token, result.get("expires_at"), remember_me)
    from services.gateway import security

    body = {
        "token": token,
        "csrf_token": security.csrf_token(ctx.settings.secret, token),
        "expires_at": result.get("expires_at"),
        "user": result.get("user"),
    }
    for key in ("created", "restored", "legacy_matches"):
        if key in result:
            body[key] = result[key]
    return 201, body


# -- registration -------------------------------------------------------------------------


@route("GET", "/api/v1/registrations/challenge", auth="none", tag="identity")
def challenge(ctx):
    """A registration challenge: a question, its spoken form and the id to send back."""
    return ctx.services.identity.new_challenge()


@route(
    "POST",
    "/api/v1/registrations",
    auth="none",
    body=s.RegistrationRequest,
    response=s.RegistrationSchema,
    status=201,
    throttle="registration",
    tag="identity",
    errors=(409, 422, 429),
)
def register(ctx):
    """Register a user ID; optionally link a utility account from a bill at once."""
    body = ctx.body
    account = None
    if body["account_number"]:
        checked = ctx.services.accounts.check_utility_values(
            body["account_number"], body["customer_id"], f"ip:{ctx.client_ip}"
        )
        account = checked["account_number"]
    result = ctx.services.identity.register(
        {
            "user_id": body["user_id"],
            "email": body["email"],
            "password": body["password"],
            "challenge_id": body["challenge_id"],
            "challenge_answer": body["challenge_answer"],
            "client_ip": ctx.client_ip,
        }
    )
    if account:
        ctx.services.accounts.link_verified(result["user_id"], "utility", account, "registration")
    return {**result, "linked_account": account}


@route(
    "POST",
    "/api/v1/email-verifications",
    auth="none",
    body=s.TokenBody,
    tag="identity",
    errors=(409, 422),
)
def verify_email(ctx):
    """Follow the emailed verification link."""
    return ctx.services.identity.verify_email(ctx.body["token"])


@route(
    "POST",
    "/api/v1/email-verifications/resend",
    auth="none",
    body=s.EmailBody,
    status=202,
    throttle="recovery",
    tag="identity",
    errors=(422, 429),
)
def resend_verification(ctx):
    """Send a new verification link (the same answer whether or not the address is known)."""
    ctx.services.identity.resend_verification(ctx.body["email"], ctx.client_ip)
    return 202, {"status": "sent_if_known"}


# -- sessions -----------------------------------------------------------------------------


@route(
    "POST",
    "/api/v1/sessions",
    auth="none",
    body=s.SignInRequest,
    response=s.SessionSchema,
    status=201,
    throttle="signin",
    tag="identity",
    errors=(401, 403, 422, 429),
)
def sign_in(ctx):
    """Sign in by user ID or email; sets the session cookie and returns the token."""
    body = ctx.body
    result = ctx.services.identity.sign_in(
        {
            "login": body["login"],
            "password": body["password"],
            "remember_me": body["remember_me"],
            "client_ip": ctx.client_ip,
            "user_agent": ctx.user_agent,
        }
    )
    return _signed_in(ctx, result, body["remember_me"])


@route("DELETE", "/api/v1/sessions/current", status=204, tag="identity", errors=(401, 403))
def sign_out(ctx):
    """Sign out: the session ends everywhere, and the cookie goes."""
    from services.gateway import security

    ctx.services.identity.sign_out(ctx.token)
    ctx.runtime.sessions.drop(security.token_key(ctx.token))
    ctx.clear_session_cookies(guest_too=True)
    return 204, None


@route("GET", "/api/v1/me", response=s.MeSchema, tag="identity", errors=(401,))
def me(ctx):
    """The signed-in user's profile, the session and its CSRF token."""
    profile = ctx.services.identity.get_profile(ctx.user_id)
    return {
        "user": profile,
        "csrf_token": ctx.csrf_token(),
        "session": {
            "session_id": ctx.auth.get("session_id"),
            "expires_at": ctx.auth.get("expires_at"),
            "remember_me": ctx.auth.get("remember_me"),
        },
    }


@route("GET", "/api/v1/me/sessions", tag="identity", errors=(401,))
def sessions(ctx):
    """The user's open sessions; the current one is marked."""
    items = ctx.services.identity.list_sessions(ctx.user_id, ctx.auth.get("session_id"))
    return {"sessions": items}


@route("DELETE", "/api/v1/me/sessions", tag="identity", errors=(401, 403))
def revoke_other_sessions(ctx):
    """End every session of the user but this one."""
    result = ctx.services.identity.revoke_other_sessions(ctx.user_id, ctx.auth.get("session_id"))
    ctx.runtime.sessions.drop_user(ctx.user_id)
    return result


@route(
    "DELETE",
    "/api/v1/me/sessions/{session_id}",
    status=204,
    tag="identity",
    errors=(401, 403, 404),
)
def revoke_session(ctx, session_id):
    """End one of the user's sessions."""
    ctx.services.identity.revoke_session(ctx.user_id, session_id)
    ctx.runtime.sessions.drop_session(session_id)
    return 204, None


# -- recovery -----------------------------------------------------------------------------


@route(
    "POST",
    "/api/v1/password-resets",
    auth="none",
    body=s.EmailBody,
    status=202,
    throttle="recovery",
    tag="identity",
    errors=(422, 429),
)
def request_password_reset(ctx):
    """Mail a reset link if the address has a password account (same answer either way)."""
    ctx.services.identity.request_password_reset(ctx.body["email"], ctx.client_ip)
    return 202, {"status": "sent_if_known"}


@route(
    "POST",
    "/api/v1/password-resets/confirm",
    auth="none",
    body=s.ResetBody,
    tag="identity",
    errors=(422,),
)
def reset_password(ctx):
    """Set a new password from the emailed reset link; every session ends."""
    ctx.services.identity.reset_password(ctx.body["token"], ctx.body["new_password"])
    return {"status": "password_reset"}


@route(
    "POST",
    "/api/v1/user-id-reminders",
    auth="none",
    body=s.EmailBody,
    status=202,
    throttle="recovery",
    tag="identity",
    errors=(422, 429),
)
def remind_user_id(ctx):
    """Mail the user ID to the address (same answer whether or not it is known)."""
    ctx.services.identity.remind_user_id(ctx.body["email"], ctx.client_ip)
    return 202, {"status": "sent_if_known"}


@route(
    "POST",
    "/api/v1/unlock-requests",
    auth="none",
    body=s.EmailBody,
    status=202,
    throttle="recovery",
    tag="identity",
    errors=(422, 429),
)
def request_unlock(ctx):
    """Mail an unlock link if the account is locked (same answer either way)."""
    ctx.services.identity.request_unlock(ctx.body["email"], ctx.client_ip)
    return 202, {"status": "sent_if_known"}


@route("POST", "/api/v1/unlocks", auth="none", body=s.TokenBody, tag="identity", errors=(422,))
def unlock(ctx):
    """Unlock the account from the emailed link."""
    ctx.services.identity.unlock(ctx.body["token"])
    return {"status": "unlocked"}


# -- changes ------------------------------------------------------------------------------


@route(
    "POST",
    "/api/v1/me/password",
    body=s.ChangePasswordRequest,
    tag="identity",
    errors=(401, 403, 422, 429),
)
def change_password(ctx):
    """Change the password, knowing the current one; optionally end the other sessions."""
    body = ctx.body
    result = ctx.services.identity.change_password(
        ctx.user_id,
        body["current_password"],
        body["new_password"],
        body["end_other_sessions"],
        ctx.auth.get("session_id"),
    )
    if body["end_other_sessions"]:
        ctx.runtime.sessions.drop_user(ctx.user_id)
    return result


@route(
    "POST",
    "/api/v1/me/email",
    body=s.ChangeEmailRequest,
    status=202,
    tag="identity",
    errors=(401, 403, 409, 422),
)
def change_email(ctx):
    """Start an email change: the link goes to the new address, which counts once verified."""
    result = ctx.services.identity.change_email(
        ctx.user_id, ctx.body["password"], ctx.body["new_email"]
    )
    return 202, result


@route("GET", "/api/v1/me/legacy-matches", tag="identity", errors=(401,))
def legacy_matches(ctx):
    """Old-portal users with this user's address, waiting to be claimed."""
    return {"matches": ctx.services.identity.legacy_matches(ctx.user_id)}


@route(
    "POST", "/api/v1/me/legacy-claims", body=s.LegacyClaimRequest, tag="identity", errors=(401, 422)
)
def claim_legacy(ctx):
    """Claim old-portal users; their accounts are linked again."""
    result = ctx.services.identity.claim_legacy(ctx.user_id, ctx.body["legacy_ids"])
    ctx.runtime.users.invalidate(f"u:{ctx.user_id}")
    return result


# -- external providers -------------------------------------------------------------------


def _redirect_uri(ctx, provider: str) -> str:
    return f"{ctx.settings.public_url}/sign-in/external/{urllib.parse.quote(provider, safe='')}"


@route("GET", "/api/v1/external-providers", auth="none", tag="identity")
def external_providers(ctx):
    """The external sign-in providers this city offers."""
    return {"providers": ctx.services.identity.oidc_providers()}


@route(
    "POST",
    "/api/v1/external-sign-ins",
    auth="none",
    body=s.OidcStartRequest,
    throttle="signin",
    tag="identity",
    errors=(404, 422, 429),
)
def external_start(ctx):
    """Begin signing in with a provider: where to send the browser."""
    provider = ctx.body["provider"]
    return ctx.services.identity.oidc_start(provider, _redirect_uri(ctx, provider))


@route(
    "POST",
    "/api/v1/external-sign-ins/complete",
    auth="none",
    body=s.OidcCompleteRequest,
    response=s.SessionSchema,
    status=201,
    throttle="signin",
    tag="identity",
    errors=(401, 403, 409, 422, 429),
)
def external_complete(ctx):
    """Finish an external sign-in with the code and state the provider sent back."""
    body = ctx.body
    result = ctx.services.identity.oidc_complete(
        body["provider"], body["code"], body["state"], ctx.client_ip, ctx.user_agent
    )
    if not result.get("token"):
        raise Problem(401, "The external sign-in did not complete.", code="external_sign_in_failed")
    return _signed_in(ctx, result, False)
