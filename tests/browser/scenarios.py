"""The resident's journeys, run by Playwright in a process of their own.

The pytest process has eventlet's monkey-patching (the root conftest), under which
Playwright's sync API stalls; each test therefore runs one scenario here, in a plain
Python process: ``python -m tests.browser.scenarios NAME CONFIG.json``. A scenario
fails by raising; the test that started it shows its output.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
PROBLEM_RECORDER = """
window.__problems = [];
addEventListener("securitypolicyviolation", (e) =>
  __problems.push(`CSP: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`));
addEventListener("error", (e) => __problems.push(`page error: ${e.message}`));
addEventListener("unhandledrejection", (e) =>
  __problems.push(`unhandled rejection: ${(e.reason && e.reason.message) || e.reason}`));
"""


@dataclass
class Visit:
    """One resident's browser: steps with screenshots and axe checks."""

    page: Any
    base_url: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    steps: int = 0
    checked: set[str] = field(default_factory=set)

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)
        self.settle()

    def settle(self) -> None:
        """Wait until the single-page app has rendered (no loading placeholder left)."""
        self.page.wait_for_load_state("domcontentloaded")
        self.page.wait_for_function(
            "() => document.querySelector('#page h1') && !document.querySelector('#page .loading')",
            timeout=20_000,
        )

    def step(self, name: str, *, axe: bool = True) -> None:
        """Screenshot this moment; check the page with axe-core and for page errors."""
        self.collect_problems()
        self.steps += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.page.screenshot(path=str(self.folder / f"{self.steps:02d}-{slug}.png"), full_page=True)
        if axe:
            self.check_accessibility(name)
        width = self.page.viewport_size["width"]
        if width <= 400 and self.page.url.startswith(self.base_url):
            scroll = self.page.evaluate("() => document.documentElement.scrollWidth")
            assert scroll <= width, f"step {name!r}: the page is {scroll}px wide at {width}px"

    def check_accessibility(self, name: str) -> None:
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            # evaluate() is not subject to the page's CSP, unlike an injected <script>.
            self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        result = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        bad = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
        if bad:
            lines = [
                f"{v['impact']} {v['id']}: {v['help']} -> "
                + "; ".join(", ".join(n["target"]) for n in v["nodes"][:5])
                for v in bad
            ]
            raise AssertionError(
                f"axe-core found serious/critical violations at step {name!r} "
                f"({self.page.url}):\n" + "\n".join(lines)
            )

    def collect_problems(self) -> None:
        found = self.page.evaluate("() => (window.__problems || []).splice(0)")
        self.problems.extend(f"{self.page.url}: {p}" for p in found)

    def text(self) -> str:
        return self.page.inner_text("main")


@dataclass
class Account:
    account_number: str
    customer_id: str
    customer_name: str
    bills: dict[str, str]


def wait_for_mail(cfg: dict, address: str, subject: str, timeout: float = 30.0) -> Any:
    """The first message to `address` about `subject` the test SMTP server received."""
    folder = Path(cfg["smtp_dir"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml"), key=lambda p: int(p.stem)):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            to, title = str(message["To"]).lower(), str(message["Subject"]).lower()
            if address.lower() in to and subject.lower() in title:
                return message
        time.sleep(0.3)
    raise AssertionError(f"no email to {address} about {subject!r} in {timeout:g}s")


APPROVED_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def pay_at_processor(v: Visit, card: str, name: str = "Pat Resident") -> None:
    """On the sandbox's hosted page: fill the card form and pay."""
    page = v.page
    page.wait_for_selector("#card_number")
    v.step("processor page")
    page.fill("#name", name)
    page.fill("#card_number", card)
    page.fill("#expiry", "12/34")
    page.fill("#cvc", "123")
    page.click("button[type=submit]")
    page.wait_for_url("**/checkout/return**")
    v.settle()


def fill_billing(v: Visit, email: str) -> None:
    page = v.page
    for name, value in (
        ("name", "Pat Resident"),
        ("address", "123 Main Street"),
        ("city", "Pleasanton"),
        ("state", "CA"),
        ("zip", "94566"),
        ("email", email),
    ):
        page.fill(f"form [name={name}]", value)


def wait_for_result(v: Visit, text: str, timeout: float = 45_000) -> None:
    v.page.wait_for_function(
        "(t) => (document.querySelector('#result')?.innerText || '').includes(t)",
        arg=text,
        timeout=timeout,
    )


DEMO_LOGIN = ("Demo.Resident", "harbor lantern morning 42")


def _link_from(message, path: str) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[\w\-.~%]+", body)
    assert match, f"no {path} link in the email:\n{body}"
    return match.group(0)


def _sign_in(v, login: str, password: str) -> None:
    v.go("/sign-in")
    v.page.fill("[name=login]", login)
    v.page.fill("[name=password]", password)
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


def resident_journey(v: Visit, cfg: dict) -> None:
    page = v.page
    user_id = f"res{uuid.uuid4().hex[:8]}"
    email = f"{user_id}@example.org"
    password = "copper kettle sunrise 7"

    # Register.
    v.go("/register")
    v.step("register form")
    page.fill("[name=user_id]", user_id)
    page.fill("[name=email]", email)
    page.fill("[name=email_confirm]", email)
    page.fill("[name=password]", password)
    page.fill("[name=password_confirm]", password)
    page.get_by_role("button", name="Register").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    v.step("registered")

    # Verify from the email the test SMTP server received.
    message = wait_for_mail(cfg, email, "verify")
    v.page.goto(_link_from(message, "/verify-email"))
    v.settle()
    assert "Your email address is verified" in v.text()
    v.step("email verified")

    # Sign in.
    page.get_by_role("link", name="Sign in", exact=True).last.click()
    v.settle()
    page.fill("[name=login]", user_id)
    page.fill("[name=password]", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", level=1, name=re.compile("Welcome")).wait_for()
    v.settle()
    v.step("home")

    # Link 28624 / 405583 in Account settings (a wrong pair first: the error sits by the fields).
    v.go("/settings/links/new")
    page.fill("[name=account_number]", "28624")
    page.fill("[name=customer_id]", "405584")
    page.get_by_role("button", name="Link account").click()
    page.locator(".error-summary").wait_for()
    assert page.input_value("[name=account_number]") == "28624", "typed values kept"
    v.step("link refused")
    page.fill("[name=customer_id]", "405583")
    page.get_by_role("button", name="Link account").click()
    page.wait_for_url("**/settings/links")
    v.settle()
    assert "28624" in v.text()
    v.step("linked accounts")

    # Utility billing search with "Remember these values", then Manage Bills.
    v.go("/utility")
    page.fill("[name=account_number]", "28624")
    page.fill("[name=customer_id]", "405583")
    page.check("[name=remember]")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name="Search results").wait_for()
    assert "CITY OF PLEASANTON" in v.text()
    v.step("search results")
    v.go("/utility")
    assert page.input_value("[name=account_number]") == "28624", "values remembered"
    page.get_by_role("link", name=re.compile("Manage Bills for account 28624")).first.click()
    v.settle()
    v.step("manage bills")

    # Bill 98465 in detail, with its PDF.
    page.get_by_role("link", name=re.compile("98465")).first.click()
    v.settle()
    assert "127.11" in v.text() and "28624 - 405583" in v.text()
    pdf = page.request.get(cfg["base_url"] + "/api/v1/bills/98465/pdf")
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
    page.click("a.cart-link")
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

    # The rest of the account's pages, each checked with axe-core.
    v.go("/accounts/28624/consumption")
    assert page.locator("svg.chart").count() >= 1 and "Usage" in v.text()
    v.step("consumption history")
    v.go("/accounts/28624/preferences")
    page.check("input[name=paperless][value=true]")
    page.get_by_role("button", name="Save preferences").click()
    page.locator("#page-status .notice-success").wait_for()
    v.step("preferences saved")
    v.go("/accounts/28624/address")
    assert "123 MAIN STREET" in v.text()
    v.step("change of address")
    page.fill("[name=address_line1]", "456 Oak Avenue")
    page.fill("[name=city]", "Pleasanton")
    page.fill("[name=state]", "CA")
    page.fill("[name=zip]", "94566")
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("heading", name="Request waiting for review").wait_for()
    assert "456 OAK AVENUE" in v.text().upper()
    v.step("address change requested")
    page.get_by_role("button", name="Cancel this request").click()
    page.get_by_role("heading", name="New mailing address").wait_for()
    v.go("/accounts/28624/autopay")
    assert "Automatic payments are off" in v.text()
    v.step("automatic payments")
    page.get_by_role("button", name="Sign up for automatic payments").click()
    page.wait_for_selector("#card_number")
    page.fill("#name", "Pat Resident")
    page.fill("#card_number", APPROVED_CARD)
    page.fill("#expiry", "12/34")
    page.fill("#cvc", "123")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/28624/autopay**")
    v.settle()
    page.get_by_role("heading", name="Automatic payments are on").wait_for()
    assert "ending 4242" in v.text()
    v.step("automatic payments on")
    v.go("/payments")
    assert "MP-" in v.text()
    v.step("payment history")
    v.go("/settings")
    assert "28624" in v.text() and "This device" in v.text()
    v.step("account settings")
    page.fill("[name=current_password]", "not my password 1")
    page.fill("[name=new_password]", "brand new phrase 22")
    page.fill("[name=password_confirm]", "brand new phrase 22")
    page.get_by_role("button", name="Change password").click()
    page.locator("#f-current-password-error:not([hidden])").wait_for()
    described = page.get_attribute("[name=current_password]", "aria-describedby") or ""
    assert "f-current-password-error" in described
    assert page.input_value("[name=new_password]") == "brand new phrase 22", "typed values kept"
    v.step("wrong current password")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in?signed_out=1")
    v.settle()
    v.step("signed out")
    v.go("/forgot-password")
    page.fill("[name=email]", email)
    page.get_by_role("button", name="Send reset link").click()
    page.locator(".notice-success").first.wait_for()
    v.step("forgot password")
    reset = _link_from(wait_for_mail(cfg, email, "reset your"), "/reset-password")
    page.goto(reset)
    v.settle()
    page.fill("[name=new_password]", "quiet harbor lanterns 9")
    page.fill("[name=password_confirm]", "quiet harbor lanterns 9")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/sign-in?reset=1")
    v.settle()
    v.step("password reset")


def general_invoice(v: Visit, cfg: dict) -> None:
    page = v.page
    _sign_in(v, *DEMO_LOGIN)
    v.go("/general")
    page.fill("[name=customer_id]", "12345")
    page.fill("[name=bill_number]", "63295")
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


def quick_pay_on_a_phone(v: Visit, cfg: dict) -> None:
    page = v.page
    page.set_viewport_size({"width": 360, "height": 740})
    account = Account(**cfg["account"])
    (bill,) = account.bills

    v.go("/quick-pay")
    v.step("quick pay form")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, "fits 360 px"
    page.fill("[name=account_number]", account.account_number)
    page.fill("[name=customer_id]", "1")
    page.get_by_role("button", name="Find my bills").click()
    page.locator(".error-summary").wait_for()
    assert page.input_value("[name=account_number]") == account.account_number
    described = page.get_attribute("[name=customer_id]", "aria-describedby") or ""
    assert "error" in described
    v.step("quick pay no match")
    page.fill("[name=customer_id]", account.customer_id)
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
    page.fill(f"#amount-{bill}", "30.00")
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


def declined_card(v: Visit, cfg: dict) -> None:
    page = v.page
    account = Account(**cfg["account"])
    v.go("/quick-pay")
    page.fill("[name=account_number]", account.account_number)
    page.fill("[name=customer_id]", account.customer_id)
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


def expired_checkout(v: Visit, cfg: dict) -> None:
    page = v.page
    account = Account(**cfg["account"])
    v.go("/quick-pay")
    page.fill("[name=account_number]", account.account_number)
    page.fill("[name=customer_id]", account.customer_id)
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
    page.wait_for_url("**/checkout/return**", timeout=(cfg["ttl"] + 20) * 1000)
    v.settle()
    wait_for_result(v, "ran out")
    v.step("expired")
    assert _cart_count(v) == "1", "the bill stays in the cart"


def external_sign_in(v: Visit, cfg: dict) -> None:
    page = v.page
    address = f"ext{uuid.uuid4().hex[:8]}@example.org"
    v.go("/")
    assert "Welcome to Citizen Self Service" in v.text() and "Announcements" in v.text()
    v.step("home signed out")
    # Keyboard only: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == "Sign in", f"the first control in main is the hero's Sign in, not {focused!r}"
    page.keyboard.press("Enter")
    page.wait_for_url("**/sign-in")
    v.settle()
    v.go("/sign-in")
    v.step("sign in with providers")
    page.get_by_role("button", name="Sign in with Mock ID").click()
    page.wait_for_selector("input[name=sub]")
    page.fill("input[name=sub]", address)
    page.click("button")
    page.wait_for_url(re.compile(r"/$"), timeout=20_000)
    page.get_by_role("heading", level=1, name=re.compile("Welcome")).wait_for()
    v.settle()
    v.step("signed in with provider")
    v.go("/settings")
    assert address in v.text() and "Signs in with" in v.text()
    v.step("settings of an external user")

    # Pages reached from emails and links, with bad tokens: clear messages, no errors.
    for path, expected in (
        ("/verify-email?token=not-a-token", "Links work once"),
        ("/unlock?token=not-a-token", "Ask for a new unlock link"),
        ("/unlock", "Send unlock link"),
        ("/forgot-user-id", "Email my user ID"),
        ("/help/bill", "Account Number - Customer Number"),
        ("/no/such/page", "Page not found"),
    ):
        v.go(path)
        assert expected in v.text(), f"{path}: {expected!r} not shown"
        v.step(path.strip("/").split("?")[0].replace("/", "-") or "home")


def identity_down(v: Visit, cfg: dict) -> None:
    page = v.page
    account = Account(**cfg["account"])
    v.go("/")
    assert "Announcements" in v.text()
    v.step("home while sign-in is down")
    v.go("/sign-in")
    page.fill("[name=login]", "Demo.Resident")
    page.fill("[name=password]", "harbor lantern morning 42")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.locator(".error-summary").wait_for(timeout=30_000)
    assert "unavailable" in page.inner_text(".error-summary").lower()
    assert page.input_value("[name=login]") == "Demo.Resident", "typed values kept"
    v.step("sign in while identity is down")
    v.go("/quick-pay")
    page.fill("[name=account_number]", account.account_number)
    page.fill("[name=customer_id]", account.customer_id)
    page.get_by_role("button", name="Find my bills").click()
    page.get_by_role("heading", name=f"Account {account.account_number}").wait_for()
    v.step("quick pay while sign-in is down")


def re_registration(v: Visit, cfg: dict) -> None:
    """The old portal's CITYCSC registers again with the same address: 28624 comes back."""
    page = v.page
    user_id = f"back{uuid.uuid4().hex[:8]}"
    address = "former.resident@example.org"
    password = "maple window river 31"
    v.go("/register")
    page.fill("[name=user_id]", user_id)
    page.fill("[name=email]", address)
    page.fill("[name=email_confirm]", address)
    page.fill("[name=password]", password)
    page.fill("[name=password_confirm]", password)
    page.get_by_role("button", name="Register").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    page.goto(_link_from(wait_for_mail(cfg, address, "verify"), "/verify-email"))
    v.settle()
    assert "linked these accounts again: 28624" in v.text()
    v.step("earlier registration found")
    _sign_in(v, user_id, password)
    assert "Account 28624" in v.text()
    v.step("home with the restored account")


SCENARIOS = {
    "resident_journey": resident_journey,
    "general_invoice": general_invoice,
    "quick_pay_on_a_phone": quick_pay_on_a_phone,
    "declined_card": declined_card,
    "expired_checkout": expired_checkout,
    "external_sign_in": external_sign_in,
    "identity_down": identity_down,
    "re_registration": re_registration,
}


def main(argv: list[str]) -> int:
    name, config = argv
    cfg = json.loads(Path(config).read_text())
    folder = Path(cfg["folder"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.set_default_timeout(15_000)
        context.add_init_script(PROBLEM_RECORDER)
        page = context.new_page()
        v = Visit(page=page, base_url=cfg["base_url"], folder=folder)
        try:
            SCENARIOS[name](v, cfg)
            v.collect_problems()
            if v.problems:
                raise AssertionError("the browser reported problems:\n" + "\n".join(v.problems))
        except BaseException:
            page.screenshot(path=str(folder / "zz-failure.png"), full_page=True)
            print(f"failed at {page.url}; screenshots in {folder}", file=sys.stderr)
            raise
        finally:
            browser.close()
    print(f"{name}: {v.steps} steps, screenshots in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
