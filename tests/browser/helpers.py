"""Steps several browser tests share: the billing form, the processor's page, the result."""

from __future__ import annotations

from typing import Any

APPROVED_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def pay_at_processor(v: Any, card: str, name: str = "Pat Resident") -> None:
    """On the sandbox's hosted page: fill the card form and pay."""
    page = v.page
    page.wait_for_selector("#card_number")
    v.step("processor page", axe=False)
    page.fill("#name", name)
    page.fill("#card_number", card)
    page.fill("#expiry", "12/34")
    page.fill("#cvc", "123")
    page.click("button[type=submit]")
    page.wait_for_url("**/checkout/return**")
    v.settle()


def fill_billing(v: Any, email: str) -> None:
    page = v.page
    page.get_by_label("Name on card").fill("Pat Resident")
    page.get_by_label("Address", exact=True).fill("123 Main Street")
    page.get_by_label("City").fill("Pleasanton")
    page.get_by_label("State").fill("CA")
    page.get_by_label("ZIP code").fill("94566")
    page.get_by_label("Email for the receipt").fill(email)


def wait_for_result(v: Any, text: str, timeout: float = 45_000) -> None:
    v.page.wait_for_function(
        "(t) => (document.querySelector('#result')?.innerText || '').includes(t)",
        arg=text,
        timeout=timeout,
    )
