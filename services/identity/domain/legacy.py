"""Users of the city's previous portal, imported without passwords, waiting to be claimed."""

from __future__ import annotations

import hashlib
from typing import Any

from services.identity.domain import events  # noqa: F401 - registers the schemas
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict


def legacy_id_for(legacy_user_id: str) -> str:
    """Stable, so that importing the same file twice changes nothing."""
    digest = hashlib.blake2b(legacy_user_id.strip().lower().encode(), digest_size=8).hexdigest()
    return f"lg-{digest}"


class LegacyUser(Aggregate):
    stream_type = "legacy"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.legacy_user_id = ""
        self.email = ""
        self.account_numbers: list[str] = []
        self.claimed_by: str | None = None
        self.declined_by: set[str] = set()

    def load_from_import(self, legacy_user_id: str, email: str, account_numbers: list[str]) -> str:
        """Import or update; returns "imported", "updated" or "unchanged"."""
        data = {
            "legacy_id": self.id,
            "legacy_user_id": legacy_user_id,
            "email": email,
            "account_numbers": account_numbers,
        }
        if not self.exists:
            self.record("LegacyUserImported", data)
            return "imported"
        same = (
            self.legacy_user_id == legacy_user_id
            and self.email == email
            and self.account_numbers == account_numbers
        )
        if same or self.claimed_by is not None:
            # A claimed user's links were already restored: the old data is history now.
            return "unchanged"
        self.record("LegacyUserUpdated", data)
        return "updated"

    def matches(self, email: str, user_id: str) -> bool:
        return (
            self.claimed_by is None
            and self.email.lower() == email.lower()
            and user_id not in self.declined_by
        )

    def claim(self, user_id: str) -> None:
        if self.claimed_by == user_id:
            return
        if self.claimed_by is not None:
            raise Conflict("These legacy accounts were already claimed.", code="legacy_claimed")
        self.record("LegacyUserClaimed", {"legacy_id": self.id, "user_id": user_id})

    def decline(self, user_id: str) -> None:
        if self.claimed_by is None and user_id not in self.declined_by:
            self.record("LegacyUserDeclined", {"legacy_id": self.id, "user_id": user_id})

    @applies("LegacyUserImported", "LegacyUserUpdated")
    def _imported(self, data: dict[str, Any]) -> None:
        self.legacy_user_id = data["legacy_user_id"]
        self.email = data["email"]
        self.account_numbers = list(data["account_numbers"])

    @applies("LegacyUserClaimed")
    def _claimed(self, data: dict[str, Any]) -> None:
        self.claimed_by = data["user_id"]

    @applies("LegacyUserDeclined")
    def _declined(self, data: dict[str, Any]) -> None:
        self.declined_by.add(data["user_id"])
