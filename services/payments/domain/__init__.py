"""The payments domain: aggregates, events and rules. Plain Python, no I/O."""

from services.payments.domain import events  # noqa: F401 - registers the event schemas
from services.payments.domain.autopay import Autopay
from services.payments.domain.cart import Cart
from services.payments.domain.guards import BillHold, CheckoutKey
from services.payments.domain.money import AmountRules, FeePolicy, money, money_str
from services.payments.domain.payment import Payment, ProcessorUpdate

__all__ = [
    "AmountRules",
    "Autopay",
    "BillHold",
    "Cart",
    "CheckoutKey",
    "FeePolicy",
    "Payment",
    "ProcessorUpdate",
    "money",
    "money_str",
]
