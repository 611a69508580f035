"""Concurrency guards for checkouts, as tiny aggregates so optimistic concurrency decides races.

* `BillHold` (stream `billhold-<bill>`): at most one open payment per bill. Two browsers
  paying the same bill append to the same stream at the same version: one wins, the other
  retries, sees the hold and is refused.
* `CheckoutKey` (stream `checkoutkey-<digest of owner and Idempotency-Key>`): a double
  submit or the back button finds the payment the first request created.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from services.payments.domain.base import PaymentsAggregate, parse_time
from services.payments.domain.errors import BillInCheckoutError
from shared.aggregate import applies


class BillHold(PaymentsAggregate):
    stream_type = "billhold"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.payment_id: str | None = None
        self.checkout_id: str | None = None
        self.owner: str | None = None
        self.kind: str | None = None
        self.expires_at: dt.datetime | None = None

    @property
    def held(self) -> bool:
        return self.payment_id is not None

    def take(
        self,
        payment_id: str,
        owner: str,
        kind: str,
        expires_at: dt.datetime | None,
        checkout_id: str | None = None,
    ) -> None:
        """Hold the bill for this payment; refused while another payment holds it."""
        if self.payment_id == payment_id:
            return
        if self.payment_id is not None:
            same_owner = self.owner == owner
            raise BillInCheckoutError(
                self.id,
                self.expires_at,
                # Tell the owner which of their checkouts it is; tell nobody else.
                self.checkout_id if same_owner else None,
            )
        self.emit(
            "BillHeld",
            {
                "bill_number": self.id,
                "payment_id": payment_id,
                "checkout_id": checkout_id,
                "owner": owner,
                "kind": kind,
                "expires_at": expires_at,
            },
        )

    def release(self, payment_id: str) -> None:
        if self.payment_id == payment_id:
            self.emit("BillReleased", {"bill_number": self.id, "payment_id": payment_id})

    @applies("BillHeld")
    def _on_held(self, data: dict) -> None:
        self.payment_id = data["payment_id"]
        self.checkout_id = data.get("checkout_id")
        self.owner = data["owner"]
        self.kind = data["kind"]
        self.expires_at = parse_time(data.get("expires_at"))

    @applies("BillReleased")
    def _on_released(self, data: dict) -> None:
        if self.payment_id == data["payment_id"]:
            self.payment_id = self.checkout_id = self.owner = self.kind = None
            self.expires_at = None


class CheckoutKey(PaymentsAggregate):
    stream_type = "checkoutkey"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.payment_id: str | None = None

    @staticmethod
    def key_id(owner: str, idempotency_key: str) -> str:
        return hashlib.sha256(f"{owner}\x1f{idempotency_key}".encode()).hexdigest()[:40]

    def claim(self, owner: str, payment_id: str) -> None:
        if self.payment_id is None:
            self.emit("CheckoutKeyClaimed", {"owner": owner, "payment_id": payment_id})

    @applies("CheckoutKeyClaimed")
    def _on_claimed(self, data: dict) -> None:
        self.payment_id = data["payment_id"]
