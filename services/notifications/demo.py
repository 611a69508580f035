"""The demo city's announcements (idempotent: `make run` loads it every time)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.notifications.domain.announcement import Announcement
from shared.uow import ServiceStore, UnitOfWork

DEMO_NAMESPACE = uuid.UUID("0d6f5a52-3c2e-4a8e-9a9e-7f1e0c9b6a31")
ACTOR = "staff:demo"

ANNOUNCEMENTS = [
    {
        "key": "welcome",
        "title": "Welcome to the Citizen Self Service portal",
        "body": (
            "Use this portal to view and pay your utility bills, see your water usage and "
            "manage automatic payments. If you have questions about a bill or how to use the "
            "portal, call the Customer Service Center at (925) 931-5500, Monday to Friday, "
            "7:00 am to 3:30 pm."
        ),
        "audience": "all",
    },
    {
        "key": "paperless",
        "title": "Get your bill by email",
        "body": (
            "Turn on paperless bills in your account's preferences: we email you when each new "
            "bill is ready, and you can still pay it here."
        ),
        "audience": "signed_in",
    },
]


def load(store: ServiceStore) -> dict[str, Any]:
    """Post the demo announcements that are not there yet."""
    posted = []
    for item in ANNOUNCEMENTS:
        announcement_id = str(uuid.uuid5(DEMO_NAMESPACE, item["key"]))

        def work(uow: UnitOfWork, item: dict[str, Any] = item, aid: str = announcement_id) -> bool:
            announcement = uow.load(Announcement, aid)
            if announcement.exists:
                return False
            announcement.post(
                title=item["title"],
                body=item["body"],
                starts_on=dt.date(2026, 1, 1),
                ends_on=None,
                audience=item["audience"],
                by=ACTOR,
            )
            return True

        if store.run(work, actor=ACTOR):
            posted.append(announcement_id)
    return {"announcements_posted": len(posted)}
