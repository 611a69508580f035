"""A resident's cart: the bills they mean to pay, each once, with the amount for each."""

from __future__ import annotations

from decimal import Decimal

from services.payments.domain.base import PaymentsAggregate
from services.payments.domain.errors import NotInCartError
from shared.aggregate import applies


class Cart(PaymentsAggregate):
    """Stream `cart-<owner>`; owner is `user:<id>` or `guest:<id>`, so a cart outlives sessions."""

    stream_type = "cart"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        # bill_number -> fixed amount, or None to pay whatever the balance due is.
        self.items: dict[str, Decimal | None] = {}

    def add(self, bill_number: str, amount: Decimal | None) -> None:
        """Put a bill in the cart, or change its amount; a bill is in a cart once."""
        if bill_number in self.items:
            if self.items[bill_number] != amount:
                self.emit(
                    "CartItemAmountChanged",
                    {"owner": self.id, "bill_number": bill_number, "amount": amount},
                )
            return
        self.emit("CartItemAdded", {"owner": self.id, "bill_number": bill_number, "amount": amount})

    def remove(self, bill_number: str) -> None:
        if bill_number not in self.items:
            raise NotInCartError(bill_number)
        self.emit(
            "CartItemRemoved", {"owner": self.id, "bill_number": bill_number, "reason": "removed"}
        )

    def paid(self, bill_number: str) -> None:
        """A payment covered this bill: it leaves the cart (if it is still there)."""
        if bill_number in self.items:
            self.emit(
                "CartItemRemoved", {"owner": self.id, "bill_number": bill_number, "reason": "paid"}
            )

    @applies("CartItemAdded", "CartItemAmountChanged")
    def _on_put(self, data: dict) -> None:
        amount = data.get("amount")
        self.items[data["bill_number"]] = Decimal(amount) if amount is not None else None

    @applies("CartItemRemoved")
    def _on_removed(self, data: dict) -> None:
        self.items.pop(data["bill_number"], None)
