"""The sandbox's test cards and the checks its hosted form makes on what a resident typed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re


@dataclasses.dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    outcome: str  # approved | declined | insufficient_funds | processing_error
    delayed: bool
    label: str


TEST_CARDS = [
    TestCard("4242424242424242", "visa", "approved", False, "Approved"),
    TestCard("5555555555554444", "mastercard", "approved", False, "Approved (Mastercard)"),
    TestCard("4000000000000002", "visa", "declined", False, "Declined (card_declined)"),
    TestCard("4000000000009995", "visa", "insufficient_funds", False, "Insufficient funds"),
    TestCard("4000000000000119", "visa", "processing_error", False, "Processing error"),
    TestCard("4000000000001257", "visa", "approved", True, "Delayed result, then approved"),
    TestCard("4000000000001265", "visa", "declined", True, "Delayed result, then declined"),
]
BY_NUMBER = {card.number: card for card in TEST_CARDS}

FAILURES = {
    "declined": ("card_declined", "The card was declined."),
    "insufficient_funds": ("insufficient_funds", "The card has insufficient funds."),
    "processing_error": ("processing_error", "An error occurred while processing the card."),
    "expired_card": ("expired_card", "The card has expired."),
}


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclasses.dataclass(frozen=True)
class CardEntry:
    card: TestCard
    exp_month: int
    exp_year: int
    name: str

    @property
    def last4(self) -> str:
        return self.card.number[-4:]


def read_card_form(form: dict[str, str], today: dt.date) -> tuple[CardEntry | None, dict[str, str]]:
    """The card a resident typed, or the problems to show next to each field."""
    errors: dict[str, str] = {}
    name = (form.get("name") or "").strip()
    if not name:
        errors["name"] = "Enter the name on the card."
    elif len(name) > 100:
        errors["name"] = "The name must be 100 characters or fewer."
    number = re.sub(r"[\s-]", "", form.get("card_number") or "")
    card = None
    if not number:
        errors["card_number"] = "Enter the card number."
    elif not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_valid(number):
        errors["card_number"] = "Enter a valid card number."
    else:
        card = BY_NUMBER.get(number)
        if card is None:
            errors["card_number"] = (
                "This is a sandbox: only its test cards are accepted (see the list below)."
            )
    month = year = 0
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", form.get("expiry") or "")
    if not match:
        errors["expiry"] = "Enter the expiry date as MM/YY."
    else:
        month, year = int(match.group(1)), int(match.group(2))
        year = year + 2000 if year < 100 else year
        if not 1 <= month <= 12:
            errors["expiry"] = "The expiry month must be 01 to 12."
        elif (year, month) < (today.year, today.month):
            errors["expiry"] = "This card has expired."
    cvc = (form.get("cvc") or "").strip()
    if not re.fullmatch(r"\d{3,4}", cvc):
        errors["cvc"] = "Enter the 3 or 4 digit security code."
    if errors or card is None:
        return None, errors
    return CardEntry(card, month, year, name), {}
