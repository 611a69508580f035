"""Value rules of billing: identifiers, exact money, dates, meter sizes. No I/O."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
GALLONS_PER_CCF = 748


def normalize_number(value: object) -> str:
    """Account numbers, customer IDs and bill numbers: spaces and leading zeros dropped."""
    text = str(value if value is not None else "").strip()
    if text.isdigit():
        return text.lstrip("0") or "0"
    return text


def parse_money(value: object) -> Decimal:
    """A decimal amount with at most two places; never a float."""
    if isinstance(value, float):
        raise ValueError("must be a decimal string, not a float")
    text = str(value).strip().replace(",", "")
    if text.startswith("$"):
        text = text[1:]
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{value!r} has more than two decimal places")
    return amount.quantize(CENT)


def parse_decimal(value: object) -> Decimal:
    """Any exact decimal (rates, readings, usage)."""
    if isinstance(value, float):
        raise ValueError("must be a decimal string, not a float")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def round_money(value: Decimal) -> Decimal:
    """Round half up to the cent (the way the city's ledger rounds)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Decimal) -> str:
    return str(round_money(Decimal(value)) + 0)


def units_str(value: Decimal) -> str:
    """Usage and readings without trailing zeros: 10, 10.5."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value.normalize())


def parse_date(value: object) -> dt.date:
    """ISO 8601 (YYYY-MM-DD) only: 01/02/2017 means different days in different places."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def gallons(units: Decimal, per_unit: int = GALLONS_PER_CCF) -> Decimal:
    return Decimal(units) * per_unit


_SIZE_RE = re.compile(r"^(?:(\d+)[\s-]+)?(\d+(?:\.\d+)?)(?:/(\d+))?$")


def meter_size_key(value: object) -> Fraction:
    """5/8", 1", 1-1/2", 1 1/2, 1.5 in: the same meter size whatever the spelling."""
    text = str(value or "").strip().lower()
    for suffix in ('"', "inches", "inch", "in", "''"):
        if text.endswith(suffix):
            text = text[: -len(suffix)].strip()
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f'{value!r} is not a meter size (e.g. 5/8", 1", 1-1/2")')
    whole, number, denominator = match.groups()
    size = Fraction(number) / int(denominator) if denominator else Fraction(number)
    if whole:
        size += int(whole)
    if size <= 0:
        raise ValueError(f"{value!r} is not a meter size")
    return size


def bill_year(statement_date: dt.date, fiscal_year_start_month: int) -> int:
    """The year a bill belongs to: fiscal years are named for the year they end in."""
    if fiscal_year_start_month <= 1:
        return statement_date.year
    return statement_date.year + (1 if statement_date.month >= fiscal_year_start_month else 0)
