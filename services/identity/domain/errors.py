"""The identity service's named errors: each is one kind of shared.errors with a rule code."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized

# One message for a wrong user and a wrong password: the answer must not tell them apart.
INVALID_CREDENTIALS = "The user ID, email or password is not correct."


class UserIdTaken(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "That user ID is already taken. Choose another one.",
            {"user_id": "is already taken"},
            code="user_id_taken",
        )


class EmailTaken(Conflict):
    def __init__(self, display_user_id: str | None = None) -> None:
        detail = "This email address already belongs to another account."
        if display_user_id:
            # Only the owner of the address sees this (they followed the emailed link).
            detail += (
                f" Its user ID is {display_user_id}: sign in with it, or use 'Forgot password'."
            )
        super().__init__(detail, {"email": "is already in use"}, code="email_taken")


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS, code="invalid_credentials")


class EmailNotVerified(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "Verify your email address first: follow the link we emailed you, "
            "or ask for a new one.",
            code="email_not_verified",
        )


class AccountLocked(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This account is locked after too many failed sign-ins. We emailed an unlock "
            "link to its address; you can also ask for a new one ('Unlock account?').",
            code="account_locked",
        )


class TooManyAttempts(RateLimited):
    def __init__(self, retry_after: int, what: str = "attempts") -> None:
        super().__init__(
            f"Too many {what}. Try again in {max(1, retry_after)} seconds.",
            code="too_many_attempts",
            extra={"retry_after": max(1, int(retry_after))},
        )


class TokenInvalid(InvalidInput):
    def __init__(self, reason: str = "invalid") -> None:
        messages = {
            "invalid": "This link is not valid. Ask for a new one.",
            "expired": "This link has expired. Ask for a new one.",
            "used": "This link has already been used.",
        }
        super().__init__(
            messages[reason],
            {
                "token": {"invalid": "is not valid", "expired": "has expired", "used": "was used"}[
                    reason
                ]
            },
            code=f"token_{reason}",
        )


class NoLocalPassword(Forbidden):
    def __init__(self, provider: str | None) -> None:
        super().__init__(
            f"This account signs in with {provider or 'an external provider'}; "
            "its password and email are managed there.",
            code="no_local_password",
        )


class SessionInvalid(Unauthorized):
    def __init__(self, expired: bool = False) -> None:
        super().__init__(
            "Your session has expired. Sign in again." if expired else "Sign in to continue.",
            code="session_expired" if expired else "session_invalid",
        )


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such user.", code="user_not_found")


class SessionNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such active session.", code="session_not_found")


class WrongPassword(InvalidInput):
    """Re-authentication inside a session failed (a field of a form, not a sign-in)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            "The password you entered is not correct.",
            {field: "is not correct"},
            code="wrong_password",
        )
