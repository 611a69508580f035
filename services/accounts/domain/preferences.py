"""Per-account delivery preferences: paperless or printed bills, email notices on or off."""

from __future__ import annotations

from typing import Any

from shared.aggregate import Aggregate, applies

# Until a resident chooses: printed bills, no notice emails (nothing is opted in for them).
DEFAULTS = {"paperless": False, "email_notices": False}


class AccountPreferences(Aggregate):
    stream_type = "preferences"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.paperless = DEFAULTS["paperless"]
        self.email_notices = DEFAULTS["email_notices"]

    def change(
        self, *, customer_id: str, paperless: bool, email_notices: bool, user_id: str
    ) -> bool:
        """Record the new choice; returns False when nothing changed (no event)."""
        if self.exists and (paperless, email_notices) == (self.paperless, self.email_notices):
            return False
        self.record(
            "PreferencesChanged",
            {
                "account_number": self.id,
                "customer_id": customer_id,
                "paperless": paperless,
                "email_notices": email_notices,
                "user_id": user_id,
            },
        )
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"paperless": self.paperless, "email_notices": self.email_notices}

    @applies("PreferencesChanged")
    def _changed(self, data: dict[str, Any]) -> None:
        self.paperless = data["paperless"]
        self.email_notices = data["email_notices"]
