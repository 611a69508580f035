"""Read models of the notifications service, rebuilt from its events and the events it consumes.

* ``messages``: the delivery log (own events). The delivery worker reads it to
  find what is due; staff read it through `muniportal-ops mail list`.
* ``announcements``: what the home page shows (own events).
* ``recipients``: who to write to, learned from other services' events: users
  and their email (identity), account links and preferences, address requests
  (accounts). Out-of-order deliveries are tolerated: a fact older than the
  one stored never overwrites it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from shared.events import Envelope
from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("recipient", sa.String(254), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("city", sa.String(50), nullable=False),
    sa.Column("secure", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),  # in the current round
    sa.Column("total_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("trigger_type", sa.String(120), nullable=True),
    sa.Column("trigger_event_id", sa.String(36), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_messages_due", "status", "next_attempt_at"),
)

announcements = sa.Table(
    "announcements",
    metadata,
    sa.Column("announcement_id", sa.String(36), primary_key=True),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=True),
    sa.Column("audience", sa.String(20), nullable=False),
    sa.Column("retired", sa.Boolean, nullable=False),
    sa.Column("posted_by", sa.String(200), nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(100), primary_key=True),
    sa.Column("display_user_id", sa.String(100), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("email_verified", sa.Boolean, nullable=False),
    # Stream version of the identity event that set the email: later facts win.
    sa.Column("email_version", sa.Integer, nullable=False),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("link_id", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.String(100), nullable=False, index=True),
    sa.Column("type", sa.String(20), nullable=True),
    sa.Column("account_number", sa.String(50), nullable=True, index=True),
    sa.Column("customer_id", sa.String(50), nullable=True, index=True),
    sa.Column("removed", sa.Boolean, nullable=False),
)

preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("account_number", sa.String(50), primary_key=True),
    sa.Column("paperless", sa.Boolean, nullable=False),
    sa.Column("email_notices", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
)

address_requests = sa.Table(
    "address_requests",
    metadata,
    sa.Column("request_id", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.String(100), nullable=True),
    sa.Column("account_number", sa.String(50), nullable=True),
    sa.Column("new_address", sa.String(500), nullable=True),
    sa.Column("effective_date", sa.String(10), nullable=True),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.String(100), primary_key=True),
    sa.Column("confirmation_number", sa.String(100), nullable=True),
    sa.Column("user_id", sa.String(100), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("amount_total", sa.String(20), nullable=True),
)


def _when(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    else:
        when = dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class MessagesProjection(Projection):
    name = "messages"
    version = 1
    tables = (messages,)

    @handles("EmailQueued")
    def queued(self, w: Writer, e: Envelope) -> None:
        d = e.data
        trigger = d.get("trigger") or {}
        w.insert(
            self.t.messages,
            {
                "message_id": d["message_id"],
                "kind": d["kind"],
                "recipient": d["to"],
                "subject": d["subject"],
                "city": d["city"],
                "secure": bool(d["secure"]),
                "status": "queued",
                "attempts": 0,
                "total_attempts": 0,
                "next_attempt_at": e.occurred_at,
                "last_error": None,
                "trigger_type": f"{trigger['source']}.{trigger['type']}" if trigger else None,
                "trigger_event_id": trigger.get("event_id"),
                "created_at": e.occurred_at,
                "updated_at": e.occurred_at,
                "sent_at": None,
            },
        )

    def _attempt(self, w: Writer, e: Envelope, values: dict[str, Any]) -> None:
        m = self.t.messages
        row = w.one(sa.select(m.c.attempts).where(m.c.message_id == e.data["message_id"]))
        attempts = (row["attempts"] if row else 0) + 1
        w.update(
            m,
            {"message_id": e.data["message_id"]},
            {
                **values,
                "attempts": attempts,
                "total_attempts": e.data["attempt"],
                "updated_at": e.occurred_at,
            },
        )

    @handles("EmailSent")
    def sent(self, w: Writer, e: Envelope) -> None:
        self._attempt(
            w,
            e,
            {
                "status": "sent",
                "sent_at": _when(e.data["sent_at"]),
                "next_attempt_at": None,
                "last_error": None,
            },
        )

    @handles("EmailDeferred")
    def deferred(self, w: Writer, e: Envelope) -> None:
        self._attempt(
            w,
            e,
            {
                "status": "deferred",
                "next_attempt_at": _when(e.data["next_attempt_at"]),
                "last_error": e.data["error"][:500],
            },
        )

    @handles("EmailFailed")
    def failed(self, w: Writer, e: Envelope) -> None:
        self._attempt(
            w, e, {"status": "failed", "next_attempt_at": None, "last_error": e.data["error"][:500]}
        )

    @handles("EmailRetried")
    def retried(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.messages,
            {"message_id": e.data["message_id"]},
            {
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": e.occurred_at,
                "updated_at": e.occurred_at,
            },
        )

    @handles("EmailGivenUp")
    def given_up(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.messages,
            {"message_id": e.data["message_id"]},
            {
                "status": "given_up",
                "next_attempt_at": None,
                "last_error": e.data["reason"][:500],
                "updated_at": e.occurred_at,
            },
        )


class AnnouncementsProjection(Projection):
    name = "announcements"
    version = 1
    tables = (announcements,)

    @staticmethod
    def _fields(e: Envelope) -> dict[str, Any]:
        d = e.data
        return {
            "title": d["title"],
            "body": d["body"],
            "starts_on": dt.date.fromisoformat(d["starts_on"]),
            "ends_on": dt.date.fromisoformat(d["ends_on"]) if d.get("ends_on") else None,
            "audience": d["audience"],
            "updated_at": e.occurred_at,
        }

    @handles("AnnouncementPosted")
    def posted(self, w: Writer, e: Envelope) -> None:
        w.insert(
            self.t.announcements,
            {
                "announcement_id": e.data["announcement_id"],
                **self._fields(e),
                "retired": False,
                "posted_by": e.data["by"],
                "posted_at": e.occurred_at,
            },
        )

    @handles("AnnouncementEdited")
    def edited(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.announcements, {"announcement_id": e.data["announcement_id"]}, self._fields(e)
        )

    @handles("AnnouncementRetired")
    def retired(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.announcements,
            {"announcement_id": e.data["announcement_id"]},
            {"retired": True, "updated_at": e.occurred_at},
        )


class RecipientsProjection(Projection):
    """Users, links, preferences, address requests and payments: who to write to."""

    name = "recipients"
    version = 2
    tables = (users, links, preferences, address_requests, payments)

    # -- identity ------------------------------------------------------------------------

    def _set_email(
        self, w: Writer, e: Envelope, email: str | None, verified: bool | None, **extra: Any
    ) -> None:
        u = self.t.users
        user_id = e.data["user_id"]
        row = w.one(sa.select(u).where(u.c.user_id == user_id))
        if row is None:
            w.insert(
                u,
                {
                    "user_id": user_id,
                    "display_user_id": extra.get("display_user_id"),
                    "email": email,
                    "email_verified": bool(verified),
                    "email_version": e.version,
                },
            )
            return
        values: dict[str, Any] = {
            k: v for k, v in extra.items() if v is not None and not row.get(k)
        }
        if e.version >= row["email_version"]:
            if email is not None:
                values["email"] = email
            if verified is not None:
                values["email_verified"] = verified
            values["email_version"] = e.version
        if values:
            w.update(u, {"user_id": user_id}, values)

    @handles("identity.UserRegistered")
    def registered(self, w: Writer, e: Envelope) -> None:
        d = e.data
        # Email from an external provider is verified by the provider.
        verified = d.get("via") == "oidc"
        self._set_email(
            w,
            e,
            d.get("email"),
            verified,
            display_user_id=d.get("display_user_id") or d["user_id"],
        )

    @handles("identity.EmailVerified")
    def verified(self, w: Writer, e: Envelope) -> None:
        self._set_email(w, e, e.data.get("email"), True)

    @handles("identity.EmailChanged")
    def email_changed(self, w: Writer, e: Envelope) -> None:
        # identity changes the address once the new one is verified.
        self._set_email(w, e, e.data.get("new_email"), True)

    # -- accounts ------------------------------------------------------------------------

    @handles("accounts.LinkCreated")
    def linked(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.links,
            {
                "link_id": str(d["link_id"]),
                "user_id": d["user_id"],
                "type": d.get("type"),
                "account_number": d.get("account_number"),
                "customer_id": d.get("customer_id"),
                "removed": False,
            },
            key=["link_id"],
        )

    @handles("accounts.LinkRemoved")
    def unlinked(self, w: Writer, e: Envelope) -> None:
        d = e.data
        # Upsert: a removal that overtakes its creation must still win.
        w.upsert(
            self.t.links,
            {
                "link_id": str(d["link_id"]),
                "user_id": d["user_id"],
                "account_number": d.get("account_number"),
                "customer_id": d.get("customer_id"),
                "removed": True,
            },
            key=["link_id"],
        )

    @handles("accounts.PreferencesChanged")
    def preferences_changed(self, w: Writer, e: Envelope) -> None:
        d = e.data
        p = self.t.preferences
        row = w.one(sa.select(p).where(p.c.account_number == d["account_number"]))
        newer = row is None or (e.occurred_at, e.version) >= (
            _when(row["changed_at"]),
            row["stream_version"],
        )
        if newer:
            w.upsert(
                p,
                {
                    "account_number": d["account_number"],
                    "paperless": bool(d["paperless"]),
                    "email_notices": bool(d["email_notices"]),
                    "changed_at": e.occurred_at,
                    "stream_version": e.version,
                },
                key=["account_number"],
            )

    @handles("accounts.AddressChangeRequested")
    def address_requested(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.address_requests,
            {
                "request_id": str(d["request_id"]),
                "user_id": d.get("user_id"),
                "account_number": d.get("account_number"),
                "new_address": format_address(d),
                "effective_date": d.get("effective_date"),
            },
            key=["request_id"],
        )

    # -- payments ------------------------------------------------------------------------

    @handles("payments.PaymentSucceeded")
    def paid(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.payments,
            {
                "payment_id": str(d["payment_id"]),
                "confirmation_number": d.get("confirmation_number"),
                "user_id": d.get("user_id"),
                "email": d.get("email"),
                "amount_total": d.get("amount_total"),
            },
            key=["payment_id"],
        )


def format_address(d: dict[str, Any]) -> str:
    """One line from address fields as accounts sends them (flat, or under `address`)."""
    source = d.get("address") if isinstance(d.get("address"), dict) else d
    parts = [
        source.get("address_line1"),
        source.get("address_line2"),
        " ".join(
            p
            for p in (
                f"{source.get('city')}," if source.get("city") else None,
                source.get("state"),
                source.get("zip"),
            )
            if p
        ),
    ]
    return ", ".join(str(p) for p in parts if p)[:500]


PROJECTIONS = [MessagesProjection, AnnouncementsProjection, RecipientsProjection]
