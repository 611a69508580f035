"""The notifications domain: outgoing emails and announcements. Plain Python, no I/O."""

from services.notifications.domain.announcement import Announcement
from services.notifications.domain.kinds import KINDS, SECURE_KINDS, Kind
from services.notifications.domain.message import Message, RetryPolicy, message_id_for

__all__ = [
    "KINDS",
    "SECURE_KINDS",
    "Announcement",
    "Kind",
    "Message",
    "RetryPolicy",
    "message_id_for",
]
