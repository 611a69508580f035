"""Announcements staff post for the portal's home page: title, body, dates and audience."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.notifications.domain import events  # noqa: F401 - registers the schemas
from services.notifications.domain.events import AUDIENCES
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, InvalidInput

TITLE_MAX = 120
BODY_MAX = 4000


class AnnouncementRetiredError(Conflict):
    """A retired announcement cannot change any more."""


class Announcement(Aggregate):
    stream_type = "announcement"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.title = ""
        self.body = ""
        self.starts_on: dt.date | None = None
        self.ends_on: dt.date | None = None
        self.audience = "all"
        self.retired = False

    def post(
        self,
        *,
        title: str,
        body: str,
        starts_on: dt.date,
        ends_on: dt.date | None,
        audience: str,
        by: str,
    ) -> None:
        if self.exists:
            raise Conflict(f"announcement {self.id} exists", code="announcement_exists")
        fields = _checked(title, body, starts_on, ends_on, audience)
        self.record("AnnouncementPosted", {"announcement_id": self.id, **_wire(fields), "by": by})

    def edit(self, *, by: str, **changes: Any) -> bool:
        """Change some fields; returns False (and records nothing) when nothing changes."""
        if self.retired:
            raise AnnouncementRetiredError(
                f"announcement {self.id} is retired", code="announcement_retired"
            )
        current = {
            "title": self.title,
            "body": self.body,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "audience": self.audience,
        }
        unknown = set(changes) - set(current)
        if unknown:
            raise InvalidInput(errors={name: "cannot be edited" for name in sorted(unknown)})
        merged = {**current, **changes}
        fields = _checked(**merged)
        if fields == current:
            return False
        self.record("AnnouncementEdited", {"announcement_id": self.id, **_wire(fields), "by": by})
        return True

    def retire(self, *, by: str) -> bool:
        if self.retired:
            return False
        self.record("AnnouncementRetired", {"announcement_id": self.id, "by": by})
        return True

    def active_on(self, day: dt.date) -> bool:
        if self.retired or self.starts_on is None or day < self.starts_on:
            return False
        return self.ends_on is None or day <= self.ends_on

    @applies("AnnouncementPosted", "AnnouncementEdited")
    def _set(self, data: dict[str, Any]) -> None:
        self.title = data["title"]
        self.body = data["body"]
        self.starts_on = dt.date.fromisoformat(data["starts_on"])
        self.ends_on = dt.date.fromisoformat(data["ends_on"]) if data.get("ends_on") else None
        self.audience = data["audience"]

    @applies("AnnouncementRetired")
    def _retired(self, data: dict[str, Any]) -> None:
        self.retired = True


def _wire(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in fields.items()}


def _checked(
    title: str, body: str, starts_on: dt.date, ends_on: dt.date | None, audience: str
) -> dict[str, Any]:
    errors = {}
    title = (title or "").strip()
    body = (body or "").strip()
    if not title:
        errors["title"] = "is required"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"must be at most {TITLE_MAX} characters"
    elif "\n" in title or "\r" in title:
        errors["title"] = "must be one line"
    if not body:
        errors["body"] = "is required"
    elif len(body) > BODY_MAX:
        errors["body"] = f"must be at most {BODY_MAX} characters"
    if not isinstance(starts_on, dt.date):
        errors["starts_on"] = "must be a date (YYYY-MM-DD)"
    if ends_on is not None and not isinstance(ends_on, dt.date):
        errors["ends_on"] = "must be a date (YYYY-MM-DD)"
    elif ends_on is not None and isinstance(starts_on, dt.date) and ends_on < starts_on:
        errors["ends_on"] = "must be on or after starts_on"
    if audience not in AUDIENCES:
        errors["audience"] = f"must be one of {', '.join(AUDIENCES)}"
    if errors:
        raise InvalidInput(errors=errors)
    return {
        "title": title,
        "body": body,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "audience": audience,
    }
