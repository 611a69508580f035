"""The payments service's named errors: each is one of the kernel's kinds with a precise code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from shared.errors import Conflict, InvalidInput, NotFound, Unavailable


class AmountFormatError(InvalidInput):
    def __init__(self, field: str) -> None:
        message = "must be an amount in dollars and cents, like 127.11"
        super().__init__(f"{field}: {message}", {field: message}, code="amount_format")


class AmountBelowMinimumError(InvalidInput):
    def __init__(self, field: str, floor: Decimal) -> None:
        message = f"must be at least ${floor:.2f}"
        super().__init__(f"{field}: {message}", {field: message}, code="amount_below_minimum")


class AmountAboveBalanceError(InvalidInput):
    def __init__(self, field: str, limit: Decimal, cap: bool = False) -> None:
        if cap:
            message = f"must be at most ${limit:.2f} in one payment"
        else:
            message = f"must not be more than the balance due (${limit:.2f})"
        super().__init__(f"{field}: {message}", {field: message}, code="amount_above_balance")


class NothingDueError(InvalidInput):
    def __init__(self, field: str) -> None:
        message = "this bill has no balance due"
        super().__init__(f"{field}: {message}", {field: message}, code="nothing_due")


class BillNotFoundError(NotFound):
    def __init__(self, bill_number: str) -> None:
        super().__init__(
            f"Bill {bill_number} was not found.",
            {"bill_number": "no such bill"},
            code="bill_not_found",
        )


class NotInCartError(NotFound):
    def __init__(self, bill_number: str) -> None:
        super().__init__(
            f"Bill {bill_number} is not in the cart.",
            {"bill_number": "not in the cart"},
            code="not_in_cart",
        )


class EmptyCartError(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "The cart is empty: add a bill before checking out.",
            {"items": "the cart is empty"},
            code="cart_empty",
        )


class BillInCheckoutError(Conflict):
    """Another open payment session already covers this bill."""

    def __init__(
        self, bill_number: str, expires_at: dt.datetime | None, checkout_id: str | None
    ) -> None:
        ends = f" It ends by {expires_at:%H:%M} UTC at the latest." if expires_at else ""
        super().__init__(
            f"Bill {bill_number} is already being paid in another checkout.{ends} "
            "Finish or cancel that payment first; nothing has been charged twice.",
            {"bill_number": "a payment for this bill is already in progress"},
            code="bill_in_checkout",
            # Over RPC, extra values travel as strings (None would arrive as "None"), so a
            # missing value is left out. Only that checkout's owner learns which one it is.
            extra={
                k: v
                for k, v in {
                    "bill_number": bill_number,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                    "checkout_id": checkout_id,
                }.items()
                if v is not None
            },
        )


class CheckoutNotFoundError(NotFound):
    def __init__(self, checkout_id: str) -> None:
        super().__init__(f"Checkout {checkout_id} was not found.", code="checkout_not_found")


class PaymentNotFoundError(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"Payment {ref} was not found.", code="payment_not_found")


class CheckoutClosedError(Conflict):
    def __init__(self, checkout_id: str, status: str) -> None:
        super().__init__(
            f"Checkout {checkout_id} is already {status}.",
            code="checkout_closed",
            extra={"status": status},
        )


class PaymentProcessingError(Conflict):
    def __init__(self, payment_id: str) -> None:
        super().__init__(
            f"Payment {payment_id} is being processed by the card processor; "
            "wait for its result before changing it.",
            code="payment_processing",
        )


class BadSignatureError(InvalidInput):
    def __init__(self, why: str) -> None:
        super().__init__(f"Webhook refused: {why}.", {"signature": why}, code="bad_signature")


class MalformedWebhookError(InvalidInput):
    def __init__(self, why: str) -> None:
        super().__init__(f"Webhook refused: {why}.", {"body": why}, code="malformed_webhook")


class RefundNotAllowedError(Conflict):
    def __init__(self, payment_id: str, status: str) -> None:
        super().__init__(
            f"Payment {payment_id} is {status}: only a succeeded payment can be refunded.",
            code="refund_not_allowed",
            extra={"status": status},
        )


class RefundTooLargeError(InvalidInput):
    def __init__(self, refundable: Decimal) -> None:
        message = f"must not be more than the refundable ${refundable:.2f}"
        super().__init__(f"amount: {message}", {"amount": message}, code="refund_too_large")


class AlreadySettledError(Conflict):
    def __init__(self, payment_id: str) -> None:
        super().__init__(
            f"Payment {payment_id} has already been settled by the processor and cannot be "
            "voided; refund it instead.",
            code="already_settled",
        )


class ProcessorUnavailableError(Unavailable):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "The card processor is not answering; nothing was charged. Try again in a few minutes."
            + (f" ({detail})" if detail else ""),
            code="processor_unavailable",
        )


class CardTokenError(InvalidInput):
    def __init__(self, message: str, code: str = "card_token_invalid") -> None:
        super().__init__(f"card_token: {message}", {"card_token": message}, code=code)


class AutopayNotEnrolledError(NotFound):
    def __init__(self, account_number: str) -> None:
        super().__init__(
            f"Account {account_number} is not enrolled in automatic payments.",
            code="autopay_not_enrolled",
        )
