"""Command and query handlers of the identity service: load, call the domain, save.

One module per part of the service; each handler takes an `Identity` context
first and keyword arguments after it, already loaded by the RPC schemas.
"""

from services.identity.handlers.common import Identity
from services.identity.handlers.external import oidc_complete, oidc_providers, oidc_start
from services.identity.handlers.housekeeping import expire_sessions, purge
from services.identity.handlers.legacy import (
    LegacyRecord,
    claim_legacy,
    import_legacy_users,
    legacy_matches,
)
from services.identity.handlers.recovery import (
    change_email,
    change_password,
    remind_user_id,
    request_password_reset,
    request_unlock,
    reset_password,
    unlock,
)
from services.identity.handlers.registration import (
    new_challenge,
    register,
    resend_verification,
    verify_email,
)
from services.identity.handlers.signin import (
    authenticate,
    get_profile,
    list_sessions,
    revoke_other_sessions,
    revoke_session,
    sign_in,
    sign_out,
)

__all__ = [
    "Identity",
    "LegacyRecord",
    "authenticate",
    "change_email",
    "change_password",
    "claim_legacy",
    "expire_sessions",
    "get_profile",
    "import_legacy_users",
    "legacy_matches",
    "list_sessions",
    "new_challenge",
    "oidc_complete",
    "oidc_providers",
    "oidc_start",
    "purge",
    "register",
    "remind_user_id",
    "request_password_reset",
    "request_unlock",
    "resend_verification",
    "reset_password",
    "revoke_other_sessions",
    "revoke_session",
    "sign_in",
    "sign_out",
    "unlock",
    "verify_email",
]
