"""The identity service's nameko entrypoints: load with marshmallow, call a handler, dump."""

from __future__ import annotations

import logging
from typing import Any

from eventlet import tpool
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.identity import handlers
from services.identity.handlers import Identity
from services.identity.mail import SecureMailer
from services.identity.oidc import OidcClient
from services.identity.projections import PROJECTIONS
from services.identity.schemas import (
    ChangeEmailRequest,
    ChangePasswordRequest,
    ClaimLegacyRequest,
    EmailRequest,
    OidcCompleteRequest,
    OidcStartRequest,
    RegisterPayload,
    ResetRequest,
    RevokeRequest,
    SessionsRequest,
    SignInPayload,
    TokenRequest,
    UserRef,
    load,
)
from services.identity.security import PasswordHasher, common_passwords
from services.identity.settings import Settings
from shared.nameko import KernelService, Store
from shared.rpc import rpc, rpc_timeout

log = logging.getLogger(__name__)


class Runtime(DependencyProvider):
    """Settings, the argon2id hasher and the OIDC clients, built once per process."""

    def setup(self) -> None:
        config = self.container.config
        self.settings = Settings.from_config(config)
        s = self.settings
        self.hasher = PasswordHasher(
            time_cost=s.argon2_time_cost,
            memory_kib=s.argon2_memory_kib,
            parallelism=s.argon2_parallelism,
            # argon2 releases the GIL: in a real thread it leaves the other requests running.
            offload=tpool.execute,
        )
        self.providers = {
            # Well inside the caller's RPC timeout: a slow provider is an error, not a hang.
            p.key: OidcClient(p, timeout=max(1.0, rpc_timeout(config) / 2))
            for p in s.oidc_providers
        }
        common_passwords()  # read the list at start, not during someone's registration

    def get_dependency(self, worker_ctx: Any) -> Runtime:
        return self


class IdentityService(KernelService):
    name = "identity"
    store = Store(PROJECTIONS)
    runtime = Runtime()
    mailer = SecureMailer()

    def _ctx(self) -> Identity:
        return Identity(
            store=self.store,
            settings=self.runtime.settings,
            hasher=self.runtime.hasher,
            mailer=self.mailer,
            providers=self.runtime.providers,
        )

    # -- registration and verification -----------------------------------------------------

    @rpc
    def new_challenge(self) -> dict:
        """A registration challenge: question, spoken form, id to send back."""
        return handlers.new_challenge(self._ctx())

    @rpc
    def register(self, payload: dict) -> dict:
        """Register with user ID, email and password."""
        return handlers.register(self._ctx(), **load(RegisterPayload, payload))

    @rpc
    def verify_email(self, token: str) -> dict:
        """Follow an emailed verification link."""
        return handlers.verify_email(self._ctx(), **load(TokenRequest, {"token": token}))

    @rpc
    def resend_verification(self, email: str, client_ip: str | None = None) -> dict:
        """Send a new verification link (same answer for any address)."""
        args = load(EmailRequest, {"email": email, "client_ip": client_ip})
        return handlers.resend_verification(self._ctx(), **args)

    # -- signing in and sessions -------------------------------------------------------------

    @rpc
    def sign_in(self, payload: dict) -> dict:
        """Sign in by user ID or email."""
        return handlers.sign_in(self._ctx(), **load(SignInPayload, payload))

    @rpc
    def authenticate(self, token: str) -> dict:
        """Check a session token (the gateway, on every request)."""
        # Whatever a cookie held, a bad one is "not signed in", never a form error.
        return handlers.authenticate(self._ctx(), token=token if isinstance(token, str) else "")

    @rpc
    def sign_out(self, token: str) -> dict:
        """End the session of this token."""
        return handlers.sign_out(self._ctx(), token=token if isinstance(token, str) else "")

    @rpc
    def get_profile(self, user_id: str) -> dict:
        """The user's profile, with the last successful sign-in."""
        return handlers.get_profile(self._ctx(), **load(UserRef, {"user_id": user_id}))

    @rpc
    def list_sessions(self, user_id: str, current_session_id: str | None = None) -> list:
        """The user's open sessions."""
        args = load(SessionsRequest, {"user_id": user_id, "current_session_id": current_session_id})
        return handlers.list_sessions(self._ctx(), **args)

    @rpc
    def revoke_session(self, user_id: str, session_id: str) -> dict:
        """End one of the user's sessions."""
        args = load(RevokeRequest, {"user_id": user_id, "session_id": session_id})
        return handlers.revoke_session(self._ctx(), **args)

    @rpc
    def revoke_other_sessions(self, user_id: str, current_session_id: str | None = None) -> dict:
        """End every session of the user but the current one."""
        args = load(SessionsRequest, {"user_id": user_id, "current_session_id": current_session_id})
        return handlers.revoke_other_sessions(self._ctx(), **args)

    # -- recovery and changes ----------------------------------------------------------------

    @rpc
    def request_password_reset(self, email: str, client_ip: str | None = None) -> dict:
        """Mail a reset link if the address has a password account."""
        args = load(EmailRequest, {"email": email, "client_ip": client_ip})
        return handlers.request_password_reset(self._ctx(), **args)

    @rpc
    def reset_password(self, token: str, new_password: str) -> dict:
        """Set a new password from a reset link."""
        args = load(ResetRequest, {"token": token, "new_password": new_password})
        return handlers.reset_password(self._ctx(), **args)

    @rpc
    def remind_user_id(self, email: str, client_ip: str | None = None) -> dict:
        """Mail the user ID to the address."""
        args = load(EmailRequest, {"email": email, "client_ip": client_ip})
        return handlers.remind_user_id(self._ctx(), **args)

    @rpc
    def request_unlock(self, email: str, client_ip: str | None = None) -> dict:
        """Mail an unlock link if the account is locked."""
        args = load(EmailRequest, {"email": email, "client_ip": client_ip})
        return handlers.request_unlock(self._ctx(), **args)

    @rpc
    def unlock(self, token: str) -> dict:
        """Unlock the account from the emailed link."""
        return handlers.unlock(self._ctx(), **load(TokenRequest, {"token": token}))

    @rpc
    def change_password(
        self,
        user_id: str,
        current_password: str,
        new_password: str,
        end_other_sessions: bool = False,
        current_session_id: str | None = None,
    ) -> dict:
        """Change the password, knowing the current one."""
        args = load(
            ChangePasswordRequest,
            {
                "user_id": user_id,
                "current_password": current_password,
                "new_password": new_password,
                "end_other_sessions": end_other_sessions,
                "current_session_id": current_session_id,
            },
        )
        return handlers.change_password(self._ctx(), **args)

    @rpc
    def change_email(self, user_id: str, password: str, new_email: str) -> dict:
        """Start an email change (verified at the new address)."""
        args = load(
            ChangeEmailRequest, {"user_id": user_id, "password": password, "new_email": new_email}
        )
        return handlers.change_email(self._ctx(), **args)

    # -- external providers ------------------------------------------------------------------

    @rpc
    def oidc_providers(self) -> list:
        """The configured external sign-in providers."""
        return handlers.oidc_providers(self._ctx())

    @rpc
    def oidc_start(self, provider: str, redirect_uri: str) -> dict:
        """Begin an external sign-in; returns where to send the browser."""
        args = load(OidcStartRequest, {"provider": provider, "redirect_uri": redirect_uri})
        return handlers.oidc_start(self._ctx(), **args)

    @rpc
    def oidc_complete(
        self,
        provider: str,
        code: str,
        state: str,
        client_ip: str,
        user_agent: str | None = None,
    ) -> dict:
        """Finish an external sign-in (same result as sign_in)."""
        args = load(
            OidcCompleteRequest,
            {
                "provider": provider,
                "code": code,
                "state": state,
                "client_ip": client_ip,
                "user_agent": user_agent,
            },
        )
        return handlers.oidc_complete(self._ctx(), **args)

    # -- re-registration ---------------------------------------------------------------------

    @rpc
    def legacy_matches(self, user_id: str) -> list:
        """Old-portal users with the user's address, waiting to be claimed."""
        return handlers.legacy_matches(self._ctx(), **load(UserRef, {"user_id": user_id}))

    @rpc
    def claim_legacy(self, user_id: str, legacy_ids: list) -> dict:
        """Claim old-portal users; their account links come back through accounts."""
        args = load(ClaimLegacyRequest, {"user_id": user_id, "legacy_ids": legacy_ids})
        return handlers.claim_legacy(self._ctx(), **args)

    # -- housekeeping ------------------------------------------------------------------------

    @timer(interval=300)
    def housekeeping(self) -> None:
        """End expired sessions; drop spent tokens, challenges and throttle windows."""
        done = handlers.purge(self._ctx())
        if any(done.values()):
            log.info("housekeeping: %s", done)
