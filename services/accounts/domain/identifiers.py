"""Account numbers, customer IDs and names as residents type them, made comparable.

Every service stores account numbers and customer IDs in the form
`normalize_account_number` gives: surrounding spaces and leading zeros
dropped, letters upper-cased. Names "as printed" compare through `name_key`,
which forgives what residents get wrong (case, repeated spaces, punctuation,
``&`` for ``AND``) and nothing else: it never matches a part of a name.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shared.errors import InvalidInput

MAX_ID_LENGTH = 20

_ID_RE = re.compile(r"^[A-Z0-9]+$")
# The bill prints "Account Number - Customer Number 28624 - 405583"; residents paste it.
_PAIR_RE = re.compile(r"^\s*([A-Za-z0-9]+)\s*[-\u2010-\u2015/|]\s*([A-Za-z0-9]+)\s*$")
_DROPPED_PUNCTUATION = re.compile(r"['\u2018\u2019`.]")
_OTHER_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalize_account_number(value: Any) -> str:
    """Drop surrounding spaces and leading zeros; upper-case letters ("0028624 " -> "28624")."""
    text = str(value if value is not None else "").strip().upper()
    if not text:
        return ""
    return text.lstrip("0") or "0"


normalize_customer_id = normalize_account_number
normalize_bill_number = normalize_account_number


def parse_identifier(field: str, value: Any, *, label: str) -> str:
    """A normalized account number or customer ID, or an error naming the field and rule."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{field}: {label} is required", {field: "is required"})
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"{field}: must be text", {field: "must be text"})
    text = normalize_account_number(value)
    if not _ID_RE.match(text):
        message = "may contain only letters and digits"
        raise InvalidInput(f"{field}: {label} {message}", {field: message})
    if len(text) > MAX_ID_LENGTH:
        message = f"must be at most {MAX_ID_LENGTH} characters"
        raise InvalidInput(f"{field}: {label} {message}", {field: message})
    return text


def is_identifier(value: Any) -> bool:
    try:
        parse_identifier("value", value, label="value")
    except InvalidInput:
        return False
    return True


def split_pasted_pair(account_number: Any, customer_id: Any) -> tuple[Any, Any]:
    """Accept "28624 - 405583" pasted into either field, as the bill prints it.

    The pair is taken in the bill's order (account, then customer) when the other
    field is empty or says the same thing; otherwise the fields are left as typed.
    """
    for raw, other in ((account_number, customer_id), (customer_id, account_number)):
        if not isinstance(raw, str):
            continue
        match = _PAIR_RE.match(raw)
        if match is None:
            continue
        account, customer = match.group(1), match.group(2)
        other_text = str(other).strip() if other is not None else ""
        if not other_text:
            return account, customer
        if raw is account_number and normalize_account_number(other_text) == (
            normalize_account_number(customer)
        ):
            return account, customer
        if raw is customer_id and normalize_account_number(other_text) == (
            normalize_account_number(account)
        ):
            return account, customer
    return account_number, customer_id


def name_key(name: str) -> str:
    """The form in which two names "as printed" are compared.

    Case, repeated or surrounding spaces, apostrophes and periods ("O'BRIEN",
    "ST. JOHN"), other punctuation as a separator ("123-A" = "123 A") and "&" =
    "AND" are forgiven. Nothing else is: the whole name must match.
    """
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = text.replace("&", " and ")
    text = _DROPPED_PUNCTUATION.sub("", text)
    text = _OTHER_PUNCTUATION.sub(" ", text)
    return " ".join(text.split())
