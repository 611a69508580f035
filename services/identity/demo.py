"""The identity part of the demo city (`make run`): a resident to sign in with, and an
old-portal user to try re-registration with. Loading again changes nothing.

    user ID  Demo.Resident   password  harbor lantern morning 42   (verified)
    old portal user CITYCSC, former.resident@example.org, account 28624

Register with former.resident@example.org and verify it (the local mailbox at
http://localhost:8026 shows the link): account 28624 comes back by itself.
"""

from __future__ import annotations

from typing import Any

from services.identity import state
from services.identity.domain.rules import email_stream_key
from services.identity.domain.user import EmailAddress, User
from services.identity.handlers.legacy import LegacyRecord, import_legacy_users
from services.identity.security import PasswordHasher
from shared.events import utcnow
from shared.uow import UnitOfWork

RESIDENT = ("Demo.Resident", "demo.resident@example.org", "harbor lantern morning 42")
LEGACY = [LegacyRecord("CITYCSC", "former.resident@example.org", ["28624"])]


def load(store: Any) -> dict[str, Any]:
    """Create the demo resident and the old-portal user; idempotent."""
    store.migrate()
    display, email, password = RESIDENT
    password_hash = PasswordHasher().hash(password)

    def work(uow: UnitOfWork) -> bool:
        user = uow.load(User, display.lower())
        if user.exists:
            return False
        user.register(display_user_id=display, email=email)
        user.verify_email(email)
        uow.load(EmailAddress, email_stream_key(email)).claim(email, user.id)
        uow.flush()
        state.set_password_hash(uow.conn, user.id, password_hash, utcnow())
        return True

    created = store.run(work, actor="system")
    return {
        "resident_created": created,
        "legacy_users": import_legacy_users(store, LEGACY, actor="system"),
    }
