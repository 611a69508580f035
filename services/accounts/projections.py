"""Read models of the accounts service, rebuilt from its events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from services.accounts.domain import events as _events  # noqa: F401 - registers schemas
from services.accounts.domain.identifiers import name_key
from shared.events import Envelope
from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("name_key", sa.Text, nullable=False),
    sa.Column("email", sa.String(254)),
    # The mailing address as last imported: what a re-import compares against (requests
    # change the address of record in customer_addresses, not this).
    sa.Column("imported_address", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# Every address of record a customer has had or will have, by the date it takes effect:
# the one in effect is the latest with effective_date <= today (seq breaks ties).
customer_addresses = sa.Table(
    "customer_addresses",
    metadata,
    sa.Column("customer_id", sa.String(20), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("line1", sa.String(100), nullable=False),
    sa.Column("line2", sa.String(100)),
    sa.Column("city", sa.String(50), nullable=False),
    sa.Column("state", sa.String(2), nullable=False),
    sa.Column("zip", sa.String(10), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("request_id", sa.String(20)),
)
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_number", sa.String(20), primary_key=True),
    sa.Column("customer_id", sa.String(20), nullable=False, index=True),
    sa.Column("service_address", sa.String(100), nullable=False),
    sa.Column("service_city", sa.String(50), nullable=False),
    sa.Column("service_state", sa.String(2), nullable=False),
    sa.Column("service_zip", sa.String(10), nullable=False),
    sa.Column("parcel_id", sa.String(30)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("cycle", sa.String(10), nullable=False),
    sa.Column("services", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
links = sa.Table(
    "links",
    metadata,
    sa.Column("link_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(100), nullable=False, index=True),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Column("account_number", sa.String(20), index=True),
    sa.Column("customer_id", sa.String(20), nullable=False, index=True),
    sa.Column("via", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
remembered_values = sa.Table(
    "remembered_values",
    metadata,
    sa.Column("user_id", sa.String(100), primary_key=True),
    sa.Column("module", sa.String(10), primary_key=True),
    sa.Column("search_values", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("account_number", sa.String(20), primary_key=True),
    sa.Column("customer_id", sa.String(20), nullable=False),
    sa.Column("paperless", sa.Boolean, nullable=False),
    sa.Column("email_notices", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200)),
)
address_requests = sa.Table(
    "address_requests",
    metadata,
    sa.Column("request_id", sa.String(20), primary_key=True),
    sa.Column("customer_id", sa.String(20), nullable=False, index=True),
    sa.Column("account_number", sa.String(20), nullable=False, index=True),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.Column("customer_name", sa.String(100), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.Column("line1", sa.String(100), nullable=False),
    sa.Column("line2", sa.String(100)),
    sa.Column("city", sa.String(50), nullable=False),
    sa.Column("state", sa.String(2), nullable=False),
    sa.Column("zip", sa.String(10), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("current_address", sa.JSON, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("reason", sa.Text),
)


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _datetime(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _address_row(address: dict[str, Any]) -> dict[str, Any]:
    return {k: address.get(k) for k in ("line1", "line2", "city", "state", "zip")}


class RegistryProjection(Projection):
    """Customers, their addresses of record and utility accounts.

    A first import inserts (batched, and a stream's first event meets no row,
    also in a rebuild); a change upserts.
    """

    name = "registry"
    version = 1
    tables = (customers, customer_addresses, accounts)

    @handles("CustomerImported", "CustomerChanged")
    def customer(self, w: Writer, e: Envelope) -> None:
        d = e.data
        row = {
            "customer_id": d["customer_id"],
            "name": d["name"],
            "name_key": name_key(d["name"]),
            "email": d.get("email"),
            "imported_address": d["mailing_address"],
            "updated_at": e.occurred_at,
        }
        if e.type == "CustomerImported":
            w.insert(self.t.customers, row)
        else:
            w.upsert(self.t.customers, row, key=["customer_id"])
        if e.type == "CustomerImported" or "mailing_address" in d.get("changed", ()):
            w.insert(
                self.t.customer_addresses,
                {
                    "customer_id": d["customer_id"],
                    "seq": e.version,
                    "effective_date": e.occurred_at.date(),
                    **_address_row(d["mailing_address"]),
                    "source": "import",
                    "request_id": None,
                },
            )

    @handles("CustomerAddressChanged")
    def address_changed(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.customer_addresses,
            {
                "customer_id": d["customer_id"],
                "seq": e.version,
                "effective_date": _date(d["effective_date"]),
                **_address_row(d["mailing_address"]),
                "source": "request",
                "request_id": d["request_id"],
            },
        )

    @handles("AccountImported", "AccountChanged")
    def account(self, w: Writer, e: Envelope) -> None:
        d = e.data
        row = {
            "account_number": d["account_number"],
            "customer_id": d["customer_id"],
            "service_address": d["service_address"],
            "service_city": d["service_city"],
            "service_state": d["service_state"],
            "service_zip": d["service_zip"],
            "parcel_id": d.get("parcel_id"),
            "status": d["status"],
            "cycle": d["cycle"],
            "services": d["services"],
            "updated_at": e.occurred_at,
        }
        if e.type == "AccountImported":
            w.insert(self.t.accounts, row)
        else:
            w.upsert(self.t.accounts, row, key=["account_number"])


class LinksProjection(Projection):
    """Who may reach which account, and each user's remembered search values."""

    name = "links"
    version = 1
    tables = (links, remembered_values)

    @handles("LinkCreated")
    def created(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.links,
            {
                "link_id": d["link_id"],
                "user_id": d["user_id"],
                "type": d["type"],
                "account_number": d.get("account_number"),
                "customer_id": d["customer_id"],
                "via": d["via"],
                "created_at": _datetime(d["created_at"]),
            },
        )

    @handles("LinkRemoved")
    def removed(self, w: Writer, e: Envelope) -> None:
        w.delete(self.t.links, {"link_id": e.data["link_id"]})

    @handles("SearchValuesRemembered")
    def remembered(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.remembered_values,
            {
                "user_id": d["user_id"],
                "module": d["module"],
                "search_values": d["values"],
                "updated_at": e.occurred_at,
            },
            key=["user_id", "module"],
        )

    @handles("SearchValuesForgotten")
    def forgotten(self, w: Writer, e: Envelope) -> None:
        w.delete(
            self.t.remembered_values, {"user_id": e.data["user_id"], "module": e.data["module"]}
        )


class PreferencesProjection(Projection):
    name = "preferences"
    version = 1
    tables = (preferences,)

    @handles("PreferencesChanged")
    def changed(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.upsert(
            self.t.preferences,
            {
                "account_number": d["account_number"],
                "customer_id": d["customer_id"],
                "paperless": d["paperless"],
                "email_notices": d["email_notices"],
                "updated_at": e.occurred_at,
                "updated_by": e.actor,
            },
            key=["account_number"],
        )


class AddressRequestsProjection(Projection):
    """Address change requests, for residents and for the staff's work list."""

    name = "address_requests"
    version = 1
    tables = (address_requests,)

    @handles("AddressChangeRequested")
    def requested(self, w: Writer, e: Envelope) -> None:
        d = e.data
        w.insert(
            self.t.address_requests,
            {
                "request_id": d["request_id"],
                "customer_id": d["customer_id"],
                "account_number": d["account_number"],
                "user_id": d["user_id"],
                "customer_name": d["customer_name"],
                "status": "pending",
                **_address_row(d["new_address"]),
                "effective_date": _date(d["effective_date"]),
                "current_address": d["current_address"],
                "requested_at": _datetime(d["requested_at"]),
            },
        )

    @handles("AddressChangeApproved", "AddressChangeRejected", "AddressChangeCancelled")
    def decided(self, w: Writer, e: Envelope) -> None:
        d = e.data
        status = {
            "AddressChangeApproved": "approved",
            "AddressChangeRejected": "rejected",
            "AddressChangeCancelled": "cancelled",
        }[e.type]
        w.update(
            self.t.address_requests,
            {"request_id": d["request_id"]},
            {
                "status": status,
                "decided_at": _datetime(d.get("decided_at") or d["cancelled_at"]),
                "decided_by": d.get("decided_by") or f"user:{d['user_id']}",
                "reason": d.get("reason"),
            },
        )


PROJECTIONS = [
    RegistryProjection,
    LinksProjection,
    PreferencesProjection,
    AddressRequestsProjection,
]
