"""The resident's journeys through the web portal, in a real browser against the real stack."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.helpers import (
    APPROVED_CARD,
    DECLINED_CARD,
    fill_billing,
    pay_at_processor,
    wait_for_result,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

DEMO_LOGIN = ("Demo.Resident", "harbor lantern morning 42")


def _link_from(message, path: str) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[\w\-.~%]+", body)
    assert match, f"no {path} link in the email:\n{body}"
    return match.group(0)


def _sign_in(v, login: str, password: str) -> None:
    v.go("/sign-in")
    v.page.get_by_label("User ID or email address").fill(login)
    v.page.get_by_label("Password", exact=True).fill(password)
    v.page.get_by_role("button", name="Sign in", exact=True).click()
    v.page.wait_for_url(re.compile(r"/$"))
    v.settle()


def _cart_count(v) -> str:
    return v.page.inner_text("#cart-count")


def _check_out(v, email: str) -> None:
    """From My Cart to the processor's page: Pay Bills, billing information, hand-off."""
    page = v.page
    page.get_by_role("link", name="Checkout").click()
    v.settle()
    v.step("pay bills")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/checkout")
    v.settle()
    fill_billing(v, email)
    v.step("billing information")
    page.get_by_role("button", name=re.compile("Continue to payment")).click()
    page.wait_for_url(re.compile(r"/checkout/[^/?]+$"))
    v.settle()
    assert re.search(r"\d+ minutes?, \d+ seconds?", page.inner_text("#time-left"))
    v.step("ten minute countdown")
    page.get_by_role("link", name="Continue to the secure payment page").click()


def test_resident_registers_links_and_pays_two_bills(visit, stack):
    v = visit
    page = v.page
    user_id = f"res{uuid.uuid4().hex[:8]}"
    email = f"{user_id}@example.org"
    password = "copper kettle sunrise 7"

    # Register.
    v.go("/register")
    v.step("register form")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Email address", exact=True).fill(email)
    page.get_by_label("Confirm email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Re-type password").fill(password)
    page.get_by_role("button", name="Register").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    v.step("registered")

    # Verify from the email the test SMTP server received.
    message = stack.wait_for_mail(email, "verify", timeout=30)
    v.page.goto(_link_from(message, "/verify-email"))
    v.settle()
    assert "Your email address is verified" in v.text()
    v.step("email verified")

    # Sign in.
    page.get_by_role("link", name="Sign in", exact=True).last.click()
    v.settle()
    page.get_by_label("User ID or email address").fill(user_id)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name=re.compile("Welcome")).wait_for()
    v.settle()
    v.step("home")

    # Link 28624 / 405583 in Account settings (a wrong pair first: the error sits by the fields).
    v.go("/settings/links/new")
    page.get_by_label("Account number").fill("28624")
    page.get_by_label("Customer number").fill("405584")
    page.get_by_role("button", name="Link account").click()
    page.locator(".error-summary").wait_for()
    assert page.get_by_label("Account number").input_value() == "28624", "typed values kept"
    v.step("link refused")
    page.get_by_label("Customer number").fill("405583")
    page.get_by_role("button", name="Link account").click()
    page.wait_for_url("**/settings/links")
    v.settle()
    assert "28624" in v.text()
    v.step("linked accounts")

    # Utility billing search with "Remember these values", then Manage Bills.
    v.go("/utility")
    page.get_by_label("Account number").fill("28624")
    page.get_by_label("Customer number").fill("405583")
    page.get_by_label("Remember these values").check()
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name="Search results").wait_for()
    assert "CITY OF PLEASANTON" in v.text()
    v.step("search results")
    v.go("/utility")
    assert page.get_by_label("Account number").input_value() == "28624", "values remembered"
    page.get_by_role("link", name=re.compile("Manage Bills for account 28624")).first.click()
    v.settle()
    v.step("manage bills")

    # Bill 98465 in detail, with its PDF.
    page.get_by_role("link", name=re.compile("98465")).first.click()
    v.settle()
    assert "127.11" in v.text() and "28624 - 405583" in v.text()
    pdf = page.request.get(stack.base_url + "/api/v1/bills/98465/pdf")
    assert pdf.ok and pdf.body()[:4] == b"%PDF"
    v.step("bill 98465")
    page.go_back()
    v.settle()

    # Both outstanding bills into the cart.
    boxes = page.locator("form.bills-form input[type=checkbox]:not([disabled])")
    assert boxes.count() == 2
    page.get_by_role("button", name="Add to Cart").click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '2'")
    v.step("added to cart")
    page.get_by_role("link", name=re.compile("My Cart")).click()
    v.settle()
    assert "98465" in v.text() and "98820" in v.text()
    v.step("my cart")

    _check_out(v, email)
    pay_at_processor(v, APPROVED_CARD)
    wait_for_result(v, "Confirmation number")
    assert "261.57" in v.text()
    v.step("receipt")
    assert _cart_count(v) == "0"

    # The balance is 0.00 once billing has posted the payment.
    v.go("/accounts/28624")
    for _ in range(30):
        if "Nothing is due" in v.text():
            break
        page.wait_for_timeout(1000)
        page.reload()
        v.settle()
    assert "Nothing is due" in v.text()
    v.go("/accounts/28624/summary")
    assert "$0.00" in v.text()
    v.step("balance zero")


def test_resident_views_and_pays_a_general_billing_invoice(visit, stack):
    v = visit
    page = v.page
    _sign_in(v, *DEMO_LOGIN)
    v.go("/general")
    page.get_by_label("Customer ID").fill("12345")
    page.get_by_label("Bill (invoice) number").fill("63295")
    v.step("general billing search")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/customers/12345")
    v.settle()
    text = v.text()
    assert "CLAIMS" in text and "63295" in text and "63296" in text and "$500.00" in text
    v.step("manage bills")
    page.get_by_role("link", name="Customer information").click()
    v.settle()
    assert "EXAMPLE CUSTOMER" in v.text() and "123 MAIN ST" in v.text()
    v.step("customer information")
    v.go("/bills/63295")
    assert "250.00" in v.text()
    v.step("invoice details")
    page.get_by_role("button", name="Add to Cart").click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent !== '0'")
    v.go("/cart")
    _check_out(v, "demo.resident@example.org")
    pay_at_processor(v, APPROVED_CARD)
    wait_for_result(v, "Confirmation number")
    v.step("receipt")
    v.go("/customers/12345")
    for _ in range(30):
        if "$250.00" in page.inner_text("tfoot"):
            break
        page.wait_for_timeout(1000)
        page.reload()
        v.settle()
    assert "$250.00" in page.inner_text("tfoot"), "one invoice of 250.00 left to pay"


def test_guest_pays_part_of_a_bill_with_quick_pay_on_a_phone(visit, new_account, browser):
    v = visit
    page = v.page
    page.set_viewport_size({"width": 360, "height": 740})
    account = new_account(("80.25",))
    (bill,) = account.bills

    v.go("/quick-pay")
    v.step("quick pay form")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, "fits 360 px"
    page.get_by_label("Account number").fill(account.account_number)
    page.get_by_label("Customer number").fill("1")
    page.get_by_role("button", name="Find my bills").click()
    page.locator(".error-summary").wait_for()
    assert page.get_by_label("Account number").input_value() == account.account_number
    described = page.get_by_label("Customer number").get_attribute("aria-describedby") or ""
    assert "error" in described
    v.step("quick pay no match")
    page.get_by_label("Customer number").fill(account.customer_id)
    page.get_by_role("button", name="Find my bills").click()
    page.get_by_role("heading", name=f"Account {account.account_number}").wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, "fits 360 px"
    v.step("quick pay bills")
    page.get_by_role("button", name="Add to Cart").click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '1'")
    v.go("/cart")
    page.get_by_role("link", name="Checkout").click()
    v.settle()
    # Pay part of it: the subtotal follows the amount typed.
    page.get_by_label(f"Payment amount for bill {bill}").fill("30.00")
    page.get_by_role("button", name="Calculate subtotal").click()
    page.wait_for_function(
        "() => document.querySelector('#subtotal').textContent.includes('30.00')"
    )
    v.step("pay bills partial")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/checkout")
    v.settle()
    fill_billing(v, "guest@example.org")
    page.get_by_role("button", name=re.compile("Continue to payment")).click()
    page.wait_for_url(re.compile(r"/checkout/[^/?]+$"))
    v.settle()
    page.get_by_role("link", name="Continue to the secure payment page").click()
    pay_at_processor(v, APPROVED_CARD)
    wait_for_result(v, "Confirmation number")
    assert "$30.00" in v.text()
    v.step("quick pay receipt")


def test_declined_card_leaves_the_bills_in_the_cart(visit, new_account):
    v = visit
    page = v.page
    account = new_account(("42.10", "17.90"))
    v.go("/quick-pay")
    page.get_by_label("Account number").fill(account.account_number)
    page.get_by_label("Customer number").fill(account.customer_id)
    page.get_by_role("button", name="Find my bills").click()
    page.get_by_role("button", name="Add to Cart").click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '2'")
    v.go("/cart")
    _check_out(v, "declined@example.org")
    pay_at_processor(v, DECLINED_CARD)
    wait_for_result(v, "declined")
    assert "Nothing was charged" in v.text() or "declined" in v.text()
    v.step("declined")
    assert _cart_count(v) == "2", "the bills stay in the cart"
    page.get_by_role("link", name="Try again").click()
    v.settle()
    assert "$60.00" in page.inner_text("#subtotal")


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


def test_checkout_expires_after_its_time_and_frees_the_bills(visit, new_account, short_checkouts):
    v = visit
    page = v.page
    account = new_account(("55.55",))
    v.go("/quick-pay")
    page.get_by_label("Account number").fill(account.account_number)
    page.get_by_label("Customer number").fill(account.customer_id)
    page.get_by_role("button", name="Find my bills").click()
    page.get_by_role("button", name="Add to Cart").click()
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '1'")
    v.go("/cart")
    page.get_by_role("link", name="Checkout").click()
    v.settle()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/checkout")
    v.settle()
    fill_billing(v, "late@example.org")
    page.get_by_role("button", name=re.compile("Continue to payment")).click()
    page.wait_for_url(re.compile(r"/checkout/[^/?]+$"))
    v.settle()
    v.step("countdown running")
    # The page counts down by itself and goes to the result when the time is up.
    page.wait_for_url("**/checkout/return**", timeout=(short_checkouts + 20) * 1000)
    v.settle()
    wait_for_result(v, "ran out")
    v.step("expired")
    assert _cart_count(v) == "1", "the bill stays in the cart"
