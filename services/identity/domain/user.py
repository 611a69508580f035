"""The user: registration, verification, sign-in outcomes, locking, passwords, email changes.

One stream per user, keyed by the canonical (lowercase) user ID, so that two
registrations of "Ana" and "ana" race for the same stream and one loses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.identity.domain import events  # noqa: F401 - registers the schemas
from services.identity.domain.errors import (
    AccountLocked,
    EmailNotVerified,
    NoLocalPassword,
    UserIdTaken,
)
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, InvalidInput


class User(Aggregate):
    stream_type = "user"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.display_user_id = id
        self.email = ""
        self.email_verified = False
        self.via = "password"
        self.issuer: str | None = None
        self.provider: str | None = None
        self.locked = False
        self.failures = 0
        self.pending_email: str | None = None
        self.claimed_legacy: set[str] = set()

    # -- registration and verification ---------------------------------------------------

    def register(
        self,
        *,
        display_user_id: str,
        email: str,
        via: str = "password",
        issuer: str | None = None,
        provider: str | None = None,
    ) -> None:
        if self.exists:
            raise UserIdTaken()
        self.record(
            "UserRegistered",
            {
                "user_id": self.id,
                "display_user_id": display_user_id,
                "email": email,
                "via": via,
                "issuer": issuer,
                "provider": provider,
            },
        )

    @property
    def has_password(self) -> bool:
        return self.via == "password"

    def verification_requested(self, email: str, purpose: str, expires_at: dt.datetime) -> None:
        self.record(
            "EmailVerificationRequested",
            {
                "user_id": self.id,
                "email": email,
                "purpose": purpose,
                "expires_at": expires_at.isoformat(),
            },
        )

    def verify_email(self, email: str) -> bool:
        """Mark the registration address verified; False if it already was."""
        if email.lower() != self.email.lower():
            # The address changed since the link was sent: the link proves nothing now.
            raise Conflict(
                "This link was for an address the account no longer uses.", code="token_stale"
            )
        if self.email_verified:
            return False
        self.record(
            "EmailVerified",
            {"user_id": self.id, "email": self.email, "display_user_id": self.display_user_id},
        )
        return True

    # -- signing in ----------------------------------------------------------------------

    def check_can_sign_in(self) -> None:
        """After the password matched: locked accounts and unverified addresses stop here."""
        if self.locked:
            raise AccountLocked()
        if not self.email_verified:
            raise EmailNotVerified()

    def signed_in(
        self,
        *,
        session_id: str,
        method: str,
        remember_me: bool,
        client_ip: str | None,
        user_agent: str | None,
        expires_at: dt.datetime,
    ) -> None:
        self.record(
            "SignedIn",
            {
                "user_id": self.id,
                "session_id": session_id,
                "method": method,
                "remember_me": remember_me,
                "client_ip": client_ip,
                "user_agent": user_agent,
                "expires_at": expires_at.isoformat(),
                "failures_before": self.failures,
            },
        )

    def sign_in_failed(self, *, client_ip: str | None, lock_after: int) -> bool:
        """Count a failure; returns True when this failure locked the account."""
        if self.locked:
            self.record(
                "SignInFailed",
                {
                    "user_id": self.id,
                    "reason": "locked",
                    "client_ip": client_ip,
                    "consecutive_failures": self.failures,
                },
            )
            return False
        self.record(
            "SignInFailed",
            {
                "user_id": self.id,
                "reason": "bad_password",
                "client_ip": client_ip,
                "consecutive_failures": self.failures + 1,
            },
        )
        if self.failures >= lock_after:
            self.record(
                "AccountLocked",
                {
                    "user_id": self.id,
                    "display_user_id": self.display_user_id,
                    "email": self.email,
                    "failures": self.failures,
                },
            )
            return True
        return False

    def unlock_requested(self) -> None:
        self.record("UnlockRequested", {"user_id": self.id})

    def unlock(self, via: str) -> bool:
        if not self.locked:
            return False
        self.record("AccountUnlocked", {"user_id": self.id, "via": via})
        return True

    def end_session(self, session_id: str, reason: str) -> None:
        self.record(
            "SessionEnded", {"user_id": self.id, "session_id": session_id, "reason": reason}
        )

    # -- passwords -----------------------------------------------------------------------

    def require_local_password(self) -> None:
        if not self.has_password:
            raise NoLocalPassword(self.provider)

    def change_password(self, other_sessions_ended: int) -> None:
        self.require_local_password()
        self.record(
            "PasswordChanged",
            {
                "user_id": self.id,
                "display_user_id": self.display_user_id,
                "email": self.email,
                "other_sessions_ended": other_sessions_ended,
            },
        )

    def reset_requested(self) -> None:
        self.require_local_password()
        self.record("PasswordResetRequested", {"user_id": self.id})

    def reset_password(self, sessions_ended: int) -> None:
        self.require_local_password()
        self.record(
            "PasswordReset",
            {
                "user_id": self.id,
                "display_user_id": self.display_user_id,
                "email": self.email,
                "sessions_ended": sessions_ended,
            },
        )

    # -- email changes and reminders -----------------------------------------------------

    def request_email_change(self, new_email: str) -> None:
        self.require_local_password()
        if new_email.lower() == self.email.lower():
            raise InvalidInput(
                "That is already your email address.",
                {"new_email": "is already your email address"},
                code="email_unchanged",
            )
        self.record(
            "EmailChangeRequested",
            {"user_id": self.id, "old_email": self.email, "new_email": new_email},
        )

    def change_email(self, new_email: str) -> str:
        """Adopt a verified new address; returns the old one."""
        old = self.email
        self.record(
            "EmailChanged",
            {
                "user_id": self.id,
                "display_user_id": self.display_user_id,
                "old_email": old,
                "new_email": new_email,
            },
        )
        return old

    def remind_user_id(self) -> None:
        self.record(
            "UserIdReminderRequested",
            {
                "user_id": self.id,
                "display_user_id": self.display_user_id,
                "email": self.email,
                "external_provider": self.provider,
            },
        )

    def claim_legacy(
        self, legacy_ids: list[str], account_numbers: list[str], automatic: bool
    ) -> None:
        self.record(
            "LegacyAccountsClaimed",
            {
                "user_id": self.id,
                "legacy_ids": legacy_ids,
                "account_numbers": account_numbers,
                "automatic": automatic,
            },
        )

    # -- state -----------------------------------------------------------------------------

    @applies("UserRegistered")
    def _registered(self, data: dict[str, Any]) -> None:
        self.display_user_id = data["display_user_id"]
        self.email = data["email"]
        self.via = data["via"]
        self.issuer = data.get("issuer")
        self.provider = data.get("provider")

    @applies("EmailVerified")
    def _verified(self, data: dict[str, Any]) -> None:
        self.email_verified = True

    @applies("EmailChangeRequested")
    def _change_requested(self, data: dict[str, Any]) -> None:
        self.pending_email = data["new_email"]

    @applies("EmailChanged")
    def _email_changed(self, data: dict[str, Any]) -> None:
        self.email = data["new_email"]
        self.email_verified = True
        self.pending_email = None

    @applies("SignedIn")
    def _signed_in(self, data: dict[str, Any]) -> None:
        self.failures = 0

    @applies("SignInFailed")
    def _failed(self, data: dict[str, Any]) -> None:
        self.failures = data["consecutive_failures"]

    @applies("AccountLocked")
    def _locked(self, data: dict[str, Any]) -> None:
        self.locked = True

    @applies("AccountUnlocked")
    def _unlocked(self, data: dict[str, Any]) -> None:
        self.locked = False
        self.failures = 0

    @applies("PasswordReset")
    def _reset(self, data: dict[str, Any]) -> None:
        self.failures = 0

    @applies("LegacyAccountsClaimed")
    def _claimed(self, data: dict[str, Any]) -> None:
        self.claimed_legacy.update(data["legacy_ids"])


class EmailAddress(Aggregate):
    """One stream per address: whoever claims it first owns it, across every user stream."""

    stream_type = "email"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.owner: str | None = None

    def claim(self, email: str, user_id: str) -> None:
        if self.owner == user_id:
            return
        if self.owner is not None:
            raise Conflict(
                "This email address already belongs to another account.", code="email_taken"
            )
        self.record("EmailAddressClaimed", {"email": email, "user_id": user_id})

    def release(self, email: str, user_id: str) -> None:
        if self.owner == user_id:
            self.record("EmailAddressReleased", {"email": email, "user_id": user_id})

    @applies("EmailAddressClaimed")
    def _claimed(self, data: dict[str, Any]) -> None:
        self.owner = data["user_id"]

    @applies("EmailAddressReleased")
    def _released(self, data: dict[str, Any]) -> None:
        self.owner = None


class ExternalIdentity(Aggregate):
    """(issuer, subject) bound to one user; the stream key is a hash of the pair."""

    stream_type = "extid"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.user_id: str | None = None

    def link(self, *, issuer: str, subject: str, provider: str, user_id: str) -> None:
        if self.user_id is not None:
            raise Conflict("This external identity is already linked.", code="identity_linked")
        self.record(
            "ExternalIdentityLinked",
            {"issuer": issuer, "subject": subject, "provider": provider, "user_id": user_id},
        )

    @applies("ExternalIdentityLinked")
    def _linked(self, data: dict[str, Any]) -> None:
        self.user_id = data["user_id"]
