"""The registry: customers and utility accounts as the city's billing system exports them.

Imports are snapshots. `import_event` compares a new snapshot with the last
imported one and answers with the event to record, if any: a re-import of the
same data records nothing. A customer's address of record can also change
through a resident's request approved by staff (`Customer`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, InvalidInput, NotFound

CUSTOMER_FIELDS = ("name", "mailing_address", "email")
ACCOUNT_FIELDS = (
    "customer_id",
    "service_address",
    "service_city",
    "service_state",
    "service_zip",
    "parcel_id",
    "status",
    "cycle",
    "services",
)


def import_event(
    kind: str, new: dict[str, Any], last: dict[str, Any] | None, stream_exists: bool
) -> tuple[str, dict[str, Any]] | None:
    """The event a snapshot import records: (type, data), or None when nothing changed."""
    fields = CUSTOMER_FIELDS if kind == "Customer" else ACCOUNT_FIELDS
    if not stream_exists or last is None:
        return f"{kind}Imported", dict(new)
    changed = [f for f in fields if _comparable(new.get(f)) != _comparable(last.get(f))]
    if not changed:
        return None
    return f"{kind}Changed", {**new, "changed": changed}


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in sorted(value.items())}
    return value


class AddressRequestPending(Conflict):
    """A customer has one open address change request at a time."""


class Customer(Aggregate):
    """A customer of the city: name as printed, address of record, address change requests."""

    stream_type = "customer"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.email: str | None = None
        self.imported_address: dict[str, Any] | None = None
        self.requests: dict[str, dict[str, Any]] = {}

    @property
    def pending_request(self) -> dict[str, Any] | None:
        for request in self.requests.values():
            if request["status"] == "pending":
                return request
        return None

    # -- address change requests ------------------------------------------------------------

    def request_address_change(
        self,
        *,
        request_id: str,
        account_number: str,
        user_id: str,
        current_address: dict[str, Any],
        new_address: dict[str, Any],
        effective_date: dt.date,
        today: dt.date,
        now: dt.datetime,
        max_days_back: int = 30,
        max_days_ahead: int = 365,
    ) -> None:
        """A resident asks for a new mailing address from `effective_date`."""
        if effective_date < today - dt.timedelta(days=max_days_back):
            raise InvalidInput(
                f"effective_date: must be no more than {max_days_back} days ago",
                {"effective_date": f"must be no more than {max_days_back} days ago"},
            )
        if effective_date > today + dt.timedelta(days=max_days_ahead):
            raise InvalidInput(
                f"effective_date: must be within {max_days_ahead} days from today",
                {"effective_date": f"must be within {max_days_ahead} days from today"},
            )
        if _same_address(new_address, current_address):
            raise InvalidInput(
                "The new address is the same as the address of record.",
                {"address_line1": "is already the address of record"},
                code="same_address",
            )
        pending = self.pending_request
        if pending is not None:
            raise AddressRequestPending(
                "An address change request for this customer is already waiting for staff; "
                "cancel it before making another.",
                code="address_request_pending",
                extra={"request_id": pending["request_id"]},
            )
        self.record(
            "AddressChangeRequested",
            {
                "request_id": request_id,
                "customer_id": self.id,
                "account_number": account_number,
                "user_id": user_id,
                "customer_name": self.name,
                "current_address": current_address,
                "new_address": new_address,
                "effective_date": effective_date.isoformat(),
                "requested_at": now.isoformat(),
            },
        )

    def approve_address_change(self, request_id: str, *, staff: str, now: dt.datetime) -> None:
        """Staff approve: the address of record changes on the requested effective date."""
        request = self._open_request(request_id)
        common = self._request_context(request)
        self.record(
            "AddressChangeApproved",
            {
                **common,
                "new_address": request["new_address"],
                "effective_date": request["effective_date"],
                "decided_by": staff,
                "decided_at": now.isoformat(),
            },
        )
        self.record(
            "CustomerAddressChanged",
            {
                "customer_id": self.id,
                "mailing_address": request["new_address"],
                "effective_date": request["effective_date"],
                "request_id": request_id,
            },
        )

    def reject_address_change(
        self, request_id: str, *, staff: str, reason: str, now: dt.datetime
    ) -> None:
        """Staff reject, saying why: the resident is told."""
        clean = " ".join((reason or "").split())
        if not clean:
            raise InvalidInput("reason: is required when rejecting", {"reason": "is required"})
        if len(clean) > 500:
            raise InvalidInput(
                "reason: must be at most 500 characters",
                {"reason": "must be at most 500 characters"},
            )
        request = self._open_request(request_id)
        self.record(
            "AddressChangeRejected",
            {
                **self._request_context(request),
                "reason": clean,
                "decided_by": staff,
                "decided_at": now.isoformat(),
            },
        )

    def cancel_address_change(self, request_id: str, *, user_id: str, now: dt.datetime) -> None:
        """The resident withdraws a request staff have not decided yet."""
        request = self._open_request(request_id)
        self.record(
            "AddressChangeCancelled",
            {**self._request_context(request), "cancelled_at": now.isoformat()},
        )

    def _open_request(self, request_id: str) -> dict[str, Any]:
        request = self.requests.get(request_id)
        if request is None:
            raise NotFound(
                f"No address change request {request_id}.", code="address_request_not_found"
            )
        if request["status"] != "pending":
            raise Conflict(
                f"Address change request {request_id} is already {request['status']}.",
                code="address_request_decided",
                extra={"status": request["status"]},
            )
        return request

    @staticmethod
    def _request_context(request: dict[str, Any]) -> dict[str, Any]:
        keys = ("request_id", "customer_id", "account_number", "user_id", "customer_name")
        return {k: request[k] for k in keys}

    # -- state --------------------------------------------------------------------------------

    @applies("CustomerImported", "CustomerChanged")
    def _imported(self, data: dict[str, Any]) -> None:
        self.name = data["name"]
        self.email = data.get("email")
        self.imported_address = data["mailing_address"]

    @applies("AddressChangeRequested")
    def _requested(self, data: dict[str, Any]) -> None:
        self.requests[data["request_id"]] = {**data, "status": "pending"}

    @applies("AddressChangeApproved")
    def _approved(self, data: dict[str, Any]) -> None:
        self.requests[data["request_id"]]["status"] = "approved"

    @applies("AddressChangeRejected")
    def _rejected(self, data: dict[str, Any]) -> None:
        self.requests[data["request_id"]]["status"] = "rejected"

    @applies("AddressChangeCancelled")
    def _cancelled(self, data: dict[str, Any]) -> None:
        self.requests[data["request_id"]]["status"] = "cancelled"


def _same_address(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("line1", "line2", "city", "state", "zip")
    return all((a.get(k) or None) == (b.get(k) or None) for k in keys)
