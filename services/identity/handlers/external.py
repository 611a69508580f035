"""Community access: sign-in with an external OpenID Connect provider.

The first sign-in creates a user bound to (issuer, subject), with the
provider's verified address and no local password; later sign-ins find the
user by that binding. An address that already belongs to a password account is
not taken over: that resident signs in with their password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from typing import Any

import sqlalchemy as sa
from authlib.common.security import is_secure_transport

from services.identity import state
from services.identity.domain.rules import email_problem, email_stream_key, normalize_email
from services.identity.domain.user import EmailAddress, ExternalIdentity, User
from services.identity.handlers.common import (
    Identity,
    profile,
    restore_legacy,
    start_session,
    user_row,
)
from services.identity.oidc import ExternalSignInFailed, OidcClient, email_is_verified
from services.identity.projections import external_ids
from services.identity.security import new_token, token_hash
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.uow import UnitOfWork

_ID_ALPHABET = string.ascii_lowercase + string.digits


def oidc_providers(ctx: Identity) -> list[dict[str, str]]:
    """The configured providers, for the sign-in page's buttons."""
    return [{"provider": p.key, "name": p.config.name} for p in ctx.providers.values()]


def _client(ctx: Identity, provider: str) -> OidcClient:
    client = ctx.providers.get(provider.strip().lower())
    if client is None:
        raise InvalidInput(
            "No such sign-in provider.",
            {"provider": "is not a configured provider"},
            code="unknown_provider",
        )
    return client


def oidc_start(ctx: Identity, *, provider: str, redirect_uri: str) -> dict[str, str]:
    """Begin a sign-in: remember state, nonce and PKCE verifier, and point at the provider."""
    client = _client(ctx, provider)
    if not is_secure_transport(redirect_uri):
        raise InvalidInput(
            "The return address must use https.", {"redirect_uri": "must be an https URL"}
        )
    state_token, nonce = new_token(), new_token()
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks for 43 to 128
    url = client.authorization_url(
        redirect_uri=redirect_uri, state=state_token, nonce=nonce, code_verifier=verifier
    )
    with ctx.store.events.transaction() as conn:
        conn.execute(
            state.oidc_flows.insert().values(
                state_hash=token_hash(state_token),
                provider=client.key,
                nonce=nonce,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
                expires_at=ctx.now() + dt.timedelta(seconds=ctx.settings.oidc_flow_ttl),
            )
        )
    return {"authorization_url": url}


def _take_flow(ctx: Identity, state_token: str, provider: str) -> Any:
    """The flow this state belongs to, spent on first use whatever comes next."""
    hashed = token_hash(state_token)
    with ctx.store.events.transaction() as conn:
        flow = conn.execute(
            sa.select(state.oidc_flows).where(state.oidc_flows.c.state_hash == hashed)
        ).first()
        spent = flow is not None and (
            conn.execute(
                state.oidc_flows.delete().where(state.oidc_flows.c.state_hash == hashed)
            ).rowcount
            == 1
        )
    if not spent or flow.provider != provider or state.utc(flow.expires_at) <= ctx.now():
        raise ExternalSignInFailed("state")
    return flow


def oidc_complete(
    ctx: Identity,
    *,
    provider: str,
    code: str,
    state: str,
    client_ip: str,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """Finish a sign-in: redeem the code, check the ID token, sign the user in (or up)."""
    client = _client(ctx, provider)
    flow = _take_flow(ctx, state, client.key)
    claims = client.redeem(
        code=code,
        redirect_uri=flow.redirect_uri,
        code_verifier=flow.code_verifier,
        nonce=flow.nonce,
    )
    issuer, subject = client.config.issuer, str(claims["sub"])
    email = normalize_email(str(claims.get("email") or ""))
    with ctx.store.read() as conn:
        bound = conn.execute(
            sa.select(external_ids.c.user_id).where(
                external_ids.c.issuer == issuer, external_ids.c.subject == subject
            )
        ).scalar()
    if bound is None and (not email_is_verified(claims) or email_problem(email)):
        raise Forbidden(
            "The provider did not share a verified email address, which the portal needs.",
            code="external_email_unverified",
        )

    def work(uow: UnitOfWork) -> dict[str, Any]:
        binding = uow.load(ExternalIdentity, identity_key(issuer, subject))
        created = False
        restored: list[str] = []
        matches: list[dict] = []
        if binding.user_id is not None:
            user = uow.get(User, binding.user_id)
        else:
            address = uow.load(EmailAddress, email_stream_key(email))
            if address.owner is not None:
                raise Conflict(
                    "An account with this email address already exists. Sign in with its "
                    "user ID and password instead.",
                    {"email": "is already in use"},
                    code="email_in_use",
                )
            user = uow.load(User, _new_user_id(uow, ctx))
            user.register(
                display_user_id=user.id, email=email, via="oidc", issuer=issuer, provider=client.key
            )
            user.verify_email(email)
            address.claim(email, user.id)
            binding.link(issuer=issuer, subject=subject, provider=client.key, user_id=user.id)
            restored, matches = restore_legacy(uow, user, email)
            created = True
        session = start_session(
            ctx,
            uow,
            user,
            method="oidc",
            remember_me=False,
            client_ip=client_ip,
            user_agent=user_agent,
        )
        return {
            **session,
            "user_id": user.id,
            "created": created,
            "restored": restored,
            "legacy_matches": matches,
        }

    result = ctx.store.run(work)
    with ctx.store.read() as conn:
        result["user"] = profile(user_row(conn, result.pop("user_id")))
    return result


def identity_key(issuer: str, subject: str) -> str:
    return hashlib.blake2b(f"{issuer}\x1f{subject}".encode(), digest_size=16).hexdigest()


def _new_user_id(uow: UnitOfWork, ctx: Identity) -> str:
    """A generated user ID (the resident never types it: they sign in with the provider)."""
    for _ in range(10):
        candidate = "ext-" + "".join(ctx.rng.choice(_ID_ALPHABET) for _ in range(12))
        if uow.find(User, candidate) is None:
            return candidate
    raise Conflict("Could not allocate a user ID; try again.", code="user_id_exhausted")
