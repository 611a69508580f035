"""Value rules shared by the import and the residents' requests: addresses, dates, codes.

Each parser returns the clean value or raises `FieldError(field, message)`; the
caller decides whether that becomes an RPC error or a line of an import report.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP "
    "AA AE AP".split()
)
ACCOUNT_STATUSES = ("ACTIVE", "INACTIVE", "CLOSED")
SERVICE_STATUSES = ("ACTIVE", "INACTIVE", "CLOSED")
# Water meter sizes (inches) that billing prices its fixed charge by.
METER_SIZES = ("5/8", "5/8x3/4", "3/4", "1", "1-1/2", "2", "3", "4", "6", "8", "10", "12")
_METER_ALIASES = {
    "0.625": "5/8",
    ".625": "5/8",
    "0.75": "3/4",
    ".75": "3/4",
    "1.0": "1",
    "1.5": "1-1/2",
    "1 1/2": "1-1/2",
    "11/2": "1-1/2",
    "5/8 x 3/4": "5/8x3/4",
    "5/8 X 3/4": "5/8x3/4",
    "5/8X3/4": "5/8x3/4",
    "2.0": "2",
}
_ZIP_RE = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_CYCLE_RE = re.compile(r"^[A-Z0-9-]{1,10}$")
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class FieldError(ValueError):
    """One field broke one rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors = {field: message}


class FieldErrors(FieldError):
    """Several fields broke rules (all of them are reported at once)."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(field, message)
        self.errors = dict(errors)
        self.args = ("; ".join(f"{k}: {v}" for k, v in errors.items()),)

    def __str__(self) -> str:
        return self.args[0]


def text(field: str, value: Any, *, max_length: int, required: bool = True) -> str | None:
    """Trimmed text with inner runs of spaces kept as typed; None when optional and blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError(field, "is required")
        return None
    if not isinstance(value, str):
        raise FieldError(field, "must be text")
    clean = value.strip()
    if len(clean) > max_length:
        raise FieldError(field, f"must be at most {max_length} characters")
    if any(ord(ch) < 32 for ch in clean):
        raise FieldError(field, "must not contain control characters")
    return clean


def upper_text(field: str, value: Any, *, max_length: int, required: bool = True) -> str | None:
    clean = text(field, value, max_length=max_length, required=required)
    return " ".join(clean.upper().split()) if clean is not None else None


def state(field: str, value: Any) -> str:
    clean = (text(field, value, max_length=20) or "").upper().replace(".", "")
    if clean not in US_STATES:
        raise FieldError(field, "must be a two-letter US state or territory code")
    return clean


def zip_code(field: str, value: Any) -> str:
    clean = (text(field, value, max_length=20) or "").replace(" ", "")
    match = _ZIP_RE.match(clean)
    if match is None:
        raise FieldError(field, "must be a ZIP code: 5 digits, or ZIP+4 (94566-7320)")
    return f"{match.group(1)}-{match.group(2)}" if match.group(2) else match.group(1)


def email(field: str, value: Any, *, required: bool = False) -> str | None:
    clean = text(field, value, max_length=254, required=required)
    if clean is None:
        return None
    if not _EMAIL_RE.match(clean):
        raise FieldError(field, "must be an email address")
    local, _, domain = clean.rpartition("@")
    return f"{local}@{domain.lower()}"


def date(field: str, value: Any, *, required: bool = True) -> str | None:
    """An ISO 8601 date string; accepts YYYY-MM-DD and the bill's MM/DD/YYYY."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    clean = text(field, value, max_length=20, required=required)
    if clean is None:
        return None
    try:
        match = _US_DATE_RE.match(clean)
        if match:
            month, day, year = (int(g) for g in match.groups())
            return dt.date(year, month, day).isoformat()
        return dt.date.fromisoformat(clean).isoformat()
    except ValueError:
        raise FieldError(field, "must be a date (YYYY-MM-DD or MM/DD/YYYY)") from None


def choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    clean = (text(field, value, max_length=40) or "").upper()
    if clean not in choices:
        raise FieldError(field, f"must be one of {', '.join(choices)}")
    return clean


def cycle(field: str, value: Any) -> str:
    clean = (text(field, value, max_length=10) or "").upper()
    if not _CYCLE_RE.match(clean):
        raise FieldError(field, "must be a billing cycle code: letters, digits or '-', at most 10")
    return clean


def meter_size(field: str, value: Any) -> str | None:
    clean = text(field, value, max_length=20, required=False)
    if clean is None:
        return None
    size = clean.replace('"', "").replace("\u201d", "").strip()
    for suffix in (" inches", " inch", " in", "in"):
        if size.lower().endswith(suffix):
            size = size[: -len(suffix)].strip()
    size = _METER_ALIASES.get(size, size).lower()
    if size not in METER_SIZES:
        raise FieldError(field, f"must be a meter size in inches: {', '.join(METER_SIZES)}")
    return size


def mailing_address(
    values: dict[str, Any], fields: tuple[str, str, str, str, str]
) -> dict[str, str | None]:
    """A US mailing address from five named fields (line1, line2, city, state, zip)."""
    line1, line2, city, st, zp = fields
    parsers = {
        "line1": lambda: upper_text(line1, values.get(line1), max_length=100),
        "line2": lambda: upper_text(line2, values.get(line2), max_length=100, required=False),
        "city": lambda: upper_text(city, values.get(city), max_length=50),
        "state": lambda: state(st, values.get(st)),
        "zip": lambda: zip_code(zp, values.get(zp)),
    }
    address: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for key, parse in parsers.items():
        try:
            address[key] = parse()
        except FieldError as exc:
            errors[exc.field] = exc.message
    if errors:
        raise FieldErrors(errors)
    return address


def city_state_zip(address: dict[str, Any]) -> str:
    """ "PLEASANTON, CA 94566-7320", as bills print it."""
    return f"{address['city']}, {address['state']} {address['zip']}"


def one_line(address: dict[str, Any]) -> str:
    lines = [address["line1"], address.get("line2"), city_state_zip(address)]
    return ", ".join(part for part in lines if part)
