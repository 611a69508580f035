"""Command and event handlers of the notifications service: load, call the domain, save.

Handlers take a store (the nameko `WorkerStore` or, for the ops tool, a
`ServiceStore`) and plain arguments; the service and the ops tool both call them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import sqlalchemy as sa

from services.notifications.delivery import Outbox
from services.notifications.domain.announcement import Announcement
from services.notifications.domain.events import STATUSES
from services.notifications.domain.message import Message
from services.notifications.projections import announcements, messages
from services.notifications.spool import Spool
from shared.errors import InvalidInput, NotFound
from shared.events import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


# -- sending -------------------------------------------------------------------------------


def send_secure_email(
    store: Any,
    outbox: Outbox,
    *,
    kind: str,
    to: str,
    context: dict[str, Any],
    secret_url: str,
    idempotency_key: str,
) -> dict[str, Any]:
    """Queue a secret-bearing email; the same idempotency key never queues a second one."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        message_id, created = outbox.queue_secure(
            uow,
            kind=kind,
            to=to,
            context=context,
            secret_url=secret_url,
            idempotency_key=idempotency_key,
        )
        status = "queued" if created else uow.load(Message, message_id).status
        return {"message_id": message_id, "status": status, "duplicate": not created}

    result = store.run(work)
    outbox.wake()
    return result


def notify(uow: UnitOfWork, outbox: Outbox, event: Envelope) -> None:
    """Queue the emails another service's event warrants (nothing during a replay)."""
    ids = outbox.notify(uow, event)
    if ids:
        log.info("%s.%s %s queued %d email(s)", event.source, event.type, event.event_id, len(ids))


# -- the delivery log (staff) --------------------------------------------------------------


def list_messages(
    store: Any,
    *,
    status: str | None = None,
    recipient: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The delivery log, newest first; never a secret link."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            errors={"status": f"must be one of {', '.join(STATUSES)}"}, code="unknown_status"
        )
    if not 1 <= limit <= 1000:
        raise InvalidInput(errors={"limit": "must be between 1 and 1000"})
    m = messages
    query = sa.select(m).order_by(m.c.created_at.desc(), m.c.message_id).limit(limit)
    if status:
        query = query.where(m.c.status == status)
    if recipient:
        query = query.where(sa.func.lower(m.c.recipient) == recipient.strip().lower())
    if kind:
        query = query.where(m.c.kind == kind)
    with store.read() as conn:
        return [_message_row(row) for row in conn.execute(query).mappings()]


def get_message(store: Any, message_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.message_id == message_id))
        found = row.mappings().first()
    if found is None:
        raise NotFound(f"no message {message_id}", code="message_not_found")
    return _message_row(found)


def _message_row(row: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, dt.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
        out[key] = value
    out["to"] = out.pop("recipient")
    return out


def retry_message(store: Any, message_id: str, *, by: str) -> dict[str, Any]:
    """Put a failed (or deferred) message back in the queue for a new round of attempts."""

    def work(uow: UnitOfWork) -> None:
        message = _message(uow, message_id)
        message.retry(by=by)
        if message.secure and not Spool.has(uow.conn, message_id):
            raise InvalidInput(
                f"message {message_id} carried a secret link that is gone (expired or "
                "purged); the resident must ask for a new one",
                code="secret_gone",
            )

    store.run(work, actor=by)
    return get_message(store, message_id)


def drop_message(store: Any, message_id: str, *, by: str, reason: str = "") -> dict[str, Any]:
    """Give up on a message that was not sent; its secret link, if any, is forgotten."""

    def work(uow: UnitOfWork) -> None:
        _message(uow, message_id).give_up(reason=reason or f"dropped by {by}", by=by)
        Spool.purge(uow.conn, message_id)

    store.run(work, actor=by)
    return get_message(store, message_id)


def _message(uow: UnitOfWork, message_id: str) -> Message:
    try:
        uuid.UUID(message_id)
    except ValueError:
        raise NotFound(f"no message {message_id}", code="message_not_found") from None
    message = uow.find(Message, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}", code="message_not_found")
    return message


# -- announcements -------------------------------------------------------------------------


def post_announcement(
    store: Any,
    *,
    title: str,
    body: str,
    starts_on: dt.date,
    ends_on: dt.date | None,
    audience: str,
    by: str,
) -> dict[str, Any]:
    """Post a new announcement."""
    announcement_id = str(uuid.uuid4())

    def work(uow: UnitOfWork) -> None:
        announcement = Announcement(announcement_id)
        announcement.post(
            title=title, body=body, starts_on=starts_on, ends_on=ends_on, audience=audience, by=by
        )
        uow.add(announcement)

    store.run(work, actor=by)
    return get_announcement(store, announcement_id)


def edit_announcement(
    store: Any, announcement_id: str, *, by: str, **changes: Any
) -> dict[str, Any]:
    """Change an announcement's title, body, dates or audience."""

    def work(uow: UnitOfWork) -> None:
        _announcement(uow, announcement_id).edit(by=by, **changes)

    store.run(work, actor=by)
    return get_announcement(store, announcement_id)


def retire_announcement(store: Any, announcement_id: str, *, by: str) -> dict[str, Any]:
    """Take an announcement off the home page for good."""

    def work(uow: UnitOfWork) -> None:
        _announcement(uow, announcement_id).retire(by=by)

    store.run(work, actor=by)
    return get_announcement(store, announcement_id)


def _announcement(uow: UnitOfWork, announcement_id: str) -> Announcement:
    try:
        uuid.UUID(announcement_id)
    except ValueError:
        raise NotFound(
            f"no announcement {announcement_id}", code="announcement_not_found"
        ) from None
    return uow.get(Announcement, announcement_id)


def get_announcement(store: Any, announcement_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = (
            conn.execute(
                sa.select(announcements).where(announcements.c.announcement_id == announcement_id)
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no announcement {announcement_id}", code="announcement_not_found")
    return _announcement_row(row, full=True)


def list_announcements(store: Any, *, include_retired: bool = False) -> list[dict[str, Any]]:
    a = announcements
    query = sa.select(a).order_by(a.c.starts_on.desc(), a.c.posted_at.desc())
    if not include_retired:
        query = query.where(a.c.retired.is_(False))
    with store.read() as conn:
        return [_announcement_row(row, full=True) for row in conn.execute(query).mappings()]


def active_announcements(store: Any, *, signed_in: bool, today: dt.date) -> list[dict[str, Any]]:
    """What the home page shows today: newest first; signed-in-only ones for signed-in users."""
    a = announcements
    audiences = ["all", "signed_in"] if signed_in else ["all"]
    query = (
        sa.select(a)
        .where(
            a.c.retired.is_(False),
            a.c.starts_on <= today,
            sa.or_(a.c.ends_on.is_(None), a.c.ends_on >= today),
            a.c.audience.in_(audiences),
        )
        .order_by(a.c.starts_on.desc(), a.c.posted_at.desc())
    )
    with store.read() as conn:
        return [_announcement_row(row) for row in conn.execute(query).mappings()]


def _announcement_row(row: Any, full: bool = False) -> dict[str, Any]:
    out = {
        "announcement_id": row["announcement_id"],
        "title": row["title"],
        "body": row["body"],
        "starts_on": row["starts_on"].isoformat(),
        "ends_on": row["ends_on"].isoformat() if row["ends_on"] else None,
        "audience": row["audience"],
    }
    if full:
        out["retired"] = bool(row["retired"])
        out["posted_by"] = row["posted_by"]
        out["posted_at"] = _iso(row["posted_at"])
        out["updated_at"] = _iso(row["updated_at"])
    return out


def _iso(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
