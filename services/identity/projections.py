"""Read models of the identity service, rebuilt from its events.

users           one row per user: lookup by user ID (primary key) and by email
sessions        every session with how it ended (the tokens are in state.session_tokens)
legacy_users    the old portal's users and who claimed them
external_ids    (issuer, subject) -> user
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from services.identity.domain import events  # noqa: F401 - registers the schemas
from shared.events import Envelope
from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(20), primary_key=True),
    sa.Column("display_user_id", sa.String(20), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("email_key", sa.String(254), nullable=False, index=True),
    sa.Column("email_verified", sa.Boolean, nullable=False),
    sa.Column("via", sa.String(10), nullable=False),
    sa.Column("external_issuer", sa.String(500)),
    sa.Column("external_provider", sa.String(50)),
    sa.Column("locked", sa.Boolean, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("verified_at", TS),
    sa.Column("last_login_at", TS),
    sa.Column("last_login_ip", sa.String(45)),
    sa.Column("previous_login_at", TS),
    sa.Column("previous_login_ip", sa.String(45)),
    sa.Column("failures_before_last_login", sa.Integer, nullable=False),
    sa.Column("password_changed_at", TS),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(20), nullable=False, index=True),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("remember_me", sa.Boolean, nullable=False),
    sa.Column("client_ip", sa.String(45)),
    sa.Column("user_agent", sa.String(300)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("ended_at", TS),
    sa.Column("end_reason", sa.String(20)),
)

legacy_users = sa.Table(
    "legacy_users",
    metadata,
    sa.Column("legacy_id", sa.String(40), primary_key=True),
    sa.Column("legacy_user_id", sa.String(100), nullable=False),
    sa.Column("legacy_user_key", sa.String(100), nullable=False, index=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("email_key", sa.String(254), nullable=False, index=True),
    sa.Column("account_numbers", sa.JSON, nullable=False),
    sa.Column("claimed_by", sa.String(20)),
    sa.Column("claimed_at", TS),
    sa.Column("declined_by", sa.JSON, nullable=False),
)

external_ids = sa.Table(
    "external_ids",
    metadata,
    sa.Column("issuer", sa.String(500), primary_key=True),
    sa.Column("subject", sa.String(255), primary_key=True),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("user_id", sa.String(20), nullable=False, index=True),
)


def _ts(env: Envelope) -> dt.datetime:
    return env.occurred_at


class UsersProjection(Projection):
    name = "users"
    version = 1
    tables = (users,)

    @handles("UserRegistered")
    def registered(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.users,
            {
                "user_id": d["user_id"],
                "display_user_id": d["display_user_id"],
                "email": d["email"],
                "email_key": d["email"].lower(),
                "email_verified": False,
                "via": d["via"],
                "external_issuer": d.get("issuer"),
                "external_provider": d.get("provider"),
                "locked": False,
                "consecutive_failures": 0,
                "created_at": _ts(e),
                "failures_before_last_login": 0,
            },
        )

    def _update(self, w: Writer, e: Envelope, **values: object) -> None:
        w.update(self.t.users, {"user_id": e.data["user_id"]}, values)

    @handles("EmailVerified")
    def verified(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, email_verified=True, verified_at=_ts(e))

    @handles("EmailChanged")
    def email_changed(self, w: Writer, e: Envelope) -> None:
        new = e.data["new_email"]
        self._update(
            w, e, email=new, email_key=new.lower(), email_verified=True, verified_at=_ts(e)
        )

    @handles("SignedIn")
    def signed_in(self, w: Writer, e: Envelope) -> None:
        t = self.t.users
        row = w.one(
            sa.select(t.c.last_login_at, t.c.last_login_ip).where(t.c.user_id == e.data["user_id"])
        )
        self._update(
            w,
            e,
            previous_login_at=row["last_login_at"] if row else None,
            previous_login_ip=row["last_login_ip"] if row else None,
            last_login_at=_ts(e),
            last_login_ip=e.data.get("client_ip"),
            failures_before_last_login=e.data.get("failures_before", 0),
            consecutive_failures=0,
        )

    @handles("SignInFailed")
    def failed(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, consecutive_failures=e.data["consecutive_failures"])

    @handles("AccountLocked")
    def locked(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, locked=True)

    @handles("AccountUnlocked")
    def unlocked(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, locked=False, consecutive_failures=0)

    @handles("PasswordChanged")
    def password_changed(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, password_changed_at=_ts(e))

    @handles("PasswordReset")
    def password_reset(self, w: Writer, e: Envelope) -> None:
        self._update(w, e, password_changed_at=_ts(e), consecutive_failures=0)


class SessionsProjection(Projection):
    name = "sessions"
    version = 1
    tables = (sessions,)

    @handles("SignedIn")
    def started(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.sessions,
            {
                "session_id": d["session_id"],
                "user_id": d["user_id"],
                "method": d["method"],
                "remember_me": d["remember_me"],
                "client_ip": d.get("client_ip"),
                "user_agent": d.get("user_agent"),
                "created_at": _ts(e),
                "expires_at": dt.datetime.fromisoformat(d["expires_at"]),
            },
        )

    @handles("SessionEnded")
    def ended(self, w: Writer, e: Envelope) -> None:
        t = self.t.sessions
        w.execute(
            t.update()
            .where(t.c.session_id == e.data["session_id"], t.c.ended_at.is_(None))
            .values(ended_at=_ts(e), end_reason=e.data["reason"])
        )


class LegacyUsersProjection(Projection):
    name = "legacy_users"
    version = 1
    tables = (legacy_users,)

    @handles("LegacyUserImported")
    def imported(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.legacy_users,
            {
                "legacy_id": d["legacy_id"],
                "legacy_user_id": d["legacy_user_id"],
                "legacy_user_key": d["legacy_user_id"].lower(),
                "email": d["email"],
                "email_key": d["email"].lower(),
                "account_numbers": d["account_numbers"],
                "declined_by": [],
            },
        )

    @handles("LegacyUserUpdated")
    def updated(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.update(
            self.t.legacy_users,
            {"legacy_id": d["legacy_id"]},
            {
                "legacy_user_id": d["legacy_user_id"],
                "legacy_user_key": d["legacy_user_id"].lower(),
                "email": d["email"],
                "email_key": d["email"].lower(),
                "account_numbers": d["account_numbers"],
            },
        )

    @handles("LegacyUserClaimed")
    def claimed(self, w: Writer, e: Envelope) -> None:
        w.update(
            self.t.legacy_users,
            {"legacy_id": e.data["legacy_id"]},
            {"claimed_by": e.data["user_id"], "claimed_at": _ts(e)},
        )

    @handles("LegacyUserDeclined")
    def declined(self, w: Writer, e: Envelope) -> None:
        t = self.t.legacy_users
        row = w.one(sa.select(t.c.declined_by).where(t.c.legacy_id == e.data["legacy_id"]))
        if row is None:
            return
        declined = sorted({*(row["declined_by"] or []), e.data["user_id"]})
        w.update(t, {"legacy_id": e.data["legacy_id"]}, {"declined_by": declined})


class ExternalIdsProjection(Projection):
    name = "external_ids"
    version = 1
    tables = (external_ids,)

    @handles("ExternalIdentityLinked")
    def linked(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.external_ids,
            {
                "issuer": d["issuer"],
                "subject": d["subject"],
                "provider": d["provider"],
                "user_id": d["user_id"],
            },
        )


PROJECTIONS = [UsersProjection, SessionsProjection, LegacyUsersProjection, ExternalIdsProjection]

# The identity store's own state beside the log (services.identity.state) shares this
# metadata, so it is created with the projections; rebuilds never touch it.
from services.identity import state  # noqa: E402,F401
