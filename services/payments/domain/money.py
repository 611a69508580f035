"""Money rules: exact amounts, the convenience fee and what a resident may pay on a bill."""

from __future__ import annotations

import dataclasses
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from services.payments.domain.errors import (
    AmountAboveBalanceError,
    AmountBelowMinimumError,
    AmountFormatError,
    NothingDueError,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_AMOUNT = re.compile(r"^\s*\$?\s*(\d{1,9}(?:,\d{3})*|\d+)(?:\.(\d{1,2}))?\s*$")


def money(value: Decimal | str | int) -> Decimal:
    """An exact amount in dollars and cents (floats are refused: they are not exact)."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Decimal | str | int | None) -> str | None:
    return None if value is None else f"{money(value):.2f}"


def parse_amount(field: str, value: object) -> Decimal:
    """Read an amount a person typed ("127.11", "$1,027.50"); a clear error names the field."""
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise AmountFormatError(field)
    match = _AMOUNT.match(text)
    if match is None:
        raise AmountFormatError(field)
    whole = match.group(1).replace(",", "")
    cents = (match.group(2) or "0").ljust(2, "0")
    try:
        return money(f"{whole}.{cents}")
    except InvalidOperation:  # pragma: no cover - the pattern already rules this out
        raise AmountFormatError(field) from None


@dataclasses.dataclass(frozen=True)
class FeePolicy:
    """A convenience fee: a flat amount, a percentage of the subtotal, or both ("0.30+2.9%")."""

    flat: Decimal = ZERO
    percent: Decimal = Decimal("0")

    @classmethod
    def parse(cls, text: str | None) -> FeePolicy:
        text = (text or "").strip()
        if not text or text in ("0", "none"):
            return cls()
        flat, percent = ZERO, Decimal("0")
        for part in text.replace(" ", "").split("+"):
            try:
                if part.endswith("%"):
                    percent = Decimal(part[:-1])
                else:
                    flat = money(part.lstrip("$"))
            except (InvalidOperation, ValueError):
                raise ValueError(
                    f"CONVENIENCE_FEE {text!r} must look like 1.50, 2.5% or 0.30+2.9%"
                ) from None
        if flat < 0 or percent < 0 or percent >= 100:
            raise ValueError(f"CONVENIENCE_FEE {text!r} is out of range")
        return cls(flat, percent)

    def fee(self, subtotal: Decimal) -> Decimal:
        if subtotal <= 0:
            return ZERO
        return money(self.flat + subtotal * self.percent / Decimal(100))

    def describe(self) -> str:
        parts = []
        if self.flat:
            parts.append(f"${self.flat:.2f}")
        if self.percent:
            parts.append(f"{self.percent.normalize():f}%")
        return " + ".join(parts) if parts else "none"


@dataclasses.dataclass(frozen=True)
class AmountRules:
    """What a resident may pay on one bill."""

    min_payment: Decimal = Decimal("1.00")
    allow_prepayment: bool = False
    max_payment: Decimal = Decimal("10000.00")

    def check(self, field: str, amount: Decimal, balance_due: Decimal) -> Decimal:
        """Return the amount if it may be paid on a bill with this balance; else a clear error."""
        amount = money(amount)
        balance_due = money(balance_due)
        if balance_due <= 0 and not self.allow_prepayment:
            raise NothingDueError(field)
        # A balance smaller than the minimum may still be paid off in full.
        floor = min(self.min_payment, balance_due) if balance_due > 0 else self.min_payment
        if amount <= 0 or amount < floor:
            raise AmountBelowMinimumError(field, floor)
        if amount > balance_due and not self.allow_prepayment:
            raise AmountAboveBalanceError(field, balance_due)
        if amount > max(self.max_payment, balance_due):
            raise AmountAboveBalanceError(field, max(self.max_payment, balance_due), cap=True)
        return amount
