"""The resident's journeys through the web portal, in a real browser against the real stack.

Each test prepares what the journey needs here (its own account, a shorter checkout)
and runs the journey itself in ``tests/browser/scenarios.py``.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def test_resident_registers_links_and_pays_two_bills(scenario):
    """Register, verify by email, sign in, link 28624/405583, pay 98465 and 98820: 0.00 due."""
    scenario("resident_journey")


def test_resident_views_and_pays_a_general_billing_invoice(scenario):
    """Customer 12345 + bill 63295: Manage Bills, Customer Information, pay one invoice."""
    scenario("general_invoice")


def test_former_resident_registers_again_and_gets_the_old_account_back(scenario):
    """The old portal's user with this address: verifying it links account 28624 again."""
    scenario("re_registration")


def test_resident_signs_in_with_an_external_provider(scenario):
    """Sign in with the test OpenID Connect provider: a new user, no local password."""
    scenario("external_sign_in")


def test_guest_pays_part_of_a_bill_with_quick_pay_on_a_phone(scenario, new_account):
    """At 360 px: quick pay, a wrong customer number first, then 30.00 of 80.25."""
    scenario("quick_pay_on_a_phone", account=new_account(("80.25",)))


def test_declined_card_leaves_the_bills_in_the_cart(scenario, new_account):
    """A declined card: the message, nothing charged, both bills still in the cart."""
    scenario("declined_card", account=new_account(("42.10", "17.90")))


@pytest.fixture
def short_checkouts(stack):
    """Payments restarted with 15-second checkouts for one test, then as before."""
    process = stack.processes["payments"]
    original = process.env

    def restart(env):
        stack.stop_service("payments")
        process.env = env
        stack.start_service("payments")
        stack.wait_healthy(60)

    restart({**original, "CHECKOUT_TTL_SECONDS": "15"})
    try:
        yield 15
    finally:
        restart(original)


def test_checkout_expires_after_its_time_and_frees_the_bills(
    scenario, new_account, short_checkouts
):
    """The countdown runs out: the page says so and the bill stays in the cart."""
    scenario("expired_checkout", account=new_account(("55.55",)), ttl=short_checkouts)


@pytest.fixture
def identity_stopped(stack):
    """The identity service stopped for one test, then started again."""
    stack.stop_service("identity")
    try:
        yield
    finally:
        stack.start_service("identity")
        stack.wait_healthy(60)


def test_public_pages_and_quick_pay_work_while_sign_in_is_down(
    scenario, new_account, identity_stopped
):
    """Identity down: the home page says sign-in is unavailable; quick pay still works."""
    scenario("identity_down", account=new_account(("12.34",)))
