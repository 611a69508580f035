"""My Cart, checkout, the processor's page and webhooks, quick pay, payment history."""

from __future__ import annotations

import uuid

from shared.testing import wait_for
from tests.gateway.conftest import Client, problem
from tests.payments.standins import HostedPage

BILLING = {
    "name": "Ana Resident",
    "address": "1 Main St",
    "city": "Pleasanton",
    "state": "CA",
    "zip": "94566",
    "email": "ana@example.org",
}


def _key() -> str:
    return f"test-{uuid.uuid4().hex}"


def _bills(client, account: str) -> dict[str, dict]:
    response = client.get(f"/api/v1/accounts/{account}/bills?status=all")
    assert response.status_code == 200, response.text
    return {b["bill_number"]: b for b in response.json()["bills"]}


def _wait_checkout(client, checkout_id: str, *statuses: str) -> dict:
    return wait_for(
        lambda: (
            (c := client.get(f"/api/v1/checkouts/{checkout_id}").json())["status"] in statuses and c
        ),
        timeout=30,
        what=f"checkout {checkout_id} to be {'/'.join(statuses)}",
    )


def test_resident_pays_two_bills_and_the_balance_is_zero(stack, make_resident):
    first, second = stack.issue_bills("49876", "40.00", "25.50")
    resident = make_resident(link=("49876", "487083"))
    before = wait_for(
        lambda: {first, second} <= set(b := _bills(resident, "49876")) and b,
        timeout=20,
        what="the imported bills",
    )
    assert before[first]["balance_due"] == "40.00"

    for bill in (first, second):
        added = resident.post("/api/v1/cart/items", {"bill_number": bill})
        assert added.status_code == 201, added.text
    cart = resident.get("/api/v1/cart").json()
    assert cart["count"] == 2 and cart["subtotal"] == "65.50"

    key = _key()
    response = resident.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    checkout = response.json()
    assert {"checkout_id", "expires_at", "amount_total", "payment_url"} <= set(checkout)
    assert checkout["amount_total"] == "65.50"
    same = resident.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": key}
    )
    assert same.json()["checkout_id"] == checkout["checkout_id"]

    # Billing flags the bills while the payment is open; the cached read follows.
    wait_for(
        lambda: _bills(resident, "49876")[first]["pending_web_payment"],
        timeout=15,
        what="the pending web payment flag",
    )

    page = HostedPage(checkout["payment_url"]).submit("4242424242424242")
    assert page.status_code == 303
    assert page.headers["Location"].startswith(f"{stack.base_url}/checkout/return")

    paid = _wait_checkout(resident, checkout["checkout_id"], "paid")
    assert paid["receipt"]["confirmation_number"]
    after = wait_for(
        lambda: (
            (b := _bills(resident, "49876"))[first]["balance_due"] == "0.00"
            and b[second]["balance_due"] == "0.00"
            and b
        ),
        timeout=20,
        what="the paid balances (cache invalidated by billing's events)",
    )
    assert not after[first]["pending_web_payment"]
    outstanding = resident.get("/api/v1/accounts/49876/bills").json()
    assert {first, second}.isdisjoint(b["bill_number"] for b in outstanding["bills"])
    history = resident.get("/api/v1/me/payments").json()["payments"]
    assert history[0]["confirmation_number"] == paid["receipt"]["confirmation_number"]
    assert resident.get("/api/v1/cart").json()["count"] == 0


def test_a_declined_card_leaves_the_bill_open(stack, make_resident):
    (bill,) = stack.issue_bills("36761", "12.00")
    resident = make_resident(link=("36761", "420499"))
    wait_for(lambda: bill in _bills(resident, "36761"), timeout=20, what="the bill")
    assert resident.post("/api/v1/cart/items", {"bill_number": bill}).status_code == 201
    checkout = resident.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": _key()}
    ).json()
    HostedPage(checkout["payment_url"]).submit("4000000000000002")
    failed = _wait_checkout(resident, checkout["checkout_id"], "failed")
    assert failed["status"] == "failed"
    still = wait_for(
        lambda: (b := _bills(resident, "36761")[bill]) and not b["pending_web_payment"] and b,
        timeout=20,
        what="the pending flag to clear",
    )
    assert still["balance_due"] == "12.00"


def test_cart_and_checkout_errors(stack, make_resident):
    (bill,) = stack.issue_bills("77265", "9.99")
    resident = make_resident(link=("77265", "490940"))
    wait_for(lambda: bill in _bills(resident, "77265"), timeout=20, what="the bill")
    empty = resident.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": _key()}
    )
    problem(empty, 422)
    not_mine = resident.post("/api/v1/cart/items", {"bill_number": "98465"})
    problem(not_mine, 404)
    problem(resident.post("/api/v1/cart/items", {"bill_number": bill, "amount": "abc"}), 422)
    assert (
        resident.post("/api/v1/cart/items", {"bill_number": bill, "amount": "5.00"}).status_code
        == 201
    )
    no_key = resident.post("/api/v1/checkouts", {"billing": BILLING})
    assert "Idempotency-Key" in problem(no_key, 422)["errors"]
    missing = resident.post(
        "/api/v1/checkouts", {"billing": {"name": "A"}}, headers={"Idempotency-Key": _key()}
    )
    assert "billing.address" in problem(missing, 422)["errors"]
    removed = resident.delete(f"/api/v1/cart/items/{bill}")
    assert removed.status_code == 200 and removed.json()["count"] == 0
    problem(resident.get("/api/v1/checkouts/no-such-checkout"), 404)


def test_checkout_can_be_cancelled(stack, make_resident):
    (bill,) = stack.issue_bills("55956", "20.00")
    resident = make_resident(link=("55956", "493233"))
    wait_for(lambda: bill in _bills(resident, "55956"), timeout=20, what="the bill")
    resident.post("/api/v1/cart/items", {"bill_number": bill})
    checkout = resident.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": _key()}
    ).json()
    cancelled = resident.post(f"/api/v1/checkouts/{checkout['checkout_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "canceled"


def test_quick_pay_as_a_guest(stack):
    (bill,) = stack.issue_bills("45469", "33.33")
    guest = Client(stack.base_url)
    assert guest.get("/api/v1/cart").json()["count"] == 0
    problem(guest.post("/api/v1/cart/items", {"bill_number": bill}), 401)
    wrong = guest.post("/api/v1/quick-pay/lookups", {"account_number": "45469", "customer_id": "1"})
    assert problem(wrong, 422)["code"] == "no_account_match"
    found = wait_for(
        lambda: (
            (
                r := guest.post(
                    "/api/v1/quick-pay/lookups",
                    {"account_number": "45469", "customer_id": "448598"},
                ).json()
            )
            and bill in {b["bill_number"] for b in r.get("bills", [])}
            and r
        ),
        timeout=20,
        what="the imported bill in quick pay",
    )
    assert found["total_due"] == "33.33"
    assert guest.http.cookies.get("mp_guest")
    guest.csrf = None
    without = guest.post("/api/v1/cart/items", {"bill_number": bill})
    assert problem(without, 403)["code"] == "csrf_failed"
    guest.csrf = guest.http.cookies.get("mp_csrf")
    added = guest.post("/api/v1/cart/items", {"bill_number": bill})
    assert added.status_code == 201, added.text
    assert guest.get("/api/v1/cart").json()["count"] == 1
    problem(guest.post("/api/v1/cart/items", {"bill_number": "98465"}), 401)
    problem(guest.get("/api/v1/me"), 401)
    checkout = guest.post(
        "/api/v1/checkouts", {"billing": BILLING}, headers={"Idempotency-Key": _key()}
    )
    assert checkout.status_code == 201, checkout.text
    # An API client carries the guest token in a header instead of the cookie.
    api = Client(stack.base_url)
    seen = api.get(
        f"/api/v1/checkouts/{checkout.json()['checkout_id']}",
        headers={"X-Guest-Token": found["guest_token"]},
    )
    assert seen.status_code == 200 and seen.json()["status"] == "open"
    assert api.get(f"/api/v1/checkouts/{checkout.json()['checkout_id']}").status_code == 401


def test_quick_pay_is_throttled_per_address(client):
    for _ in range(30):
        assert client.post("/api/v1/quick-pay/lookups", {}).status_code == 422
    problem(client.post("/api/v1/quick-pay/lookups", {}), 429)


def test_webhooks_with_bad_signatures_are_400(client):
    body = '{"id": "evt_x", "type": "payment.succeeded", "created": 1, "data": {}}'
    unsigned = client.post("/api/v1/webhooks/processor", data=body)
    assert problem(unsigned, 400)["code"] == "bad_signature"
    forged = client.post(
        "/api/v1/webhooks/processor", data=body, headers={"Processor-Signature": "t=1,v1=abc"}
    )
    problem(forged, 400)
    huge = client.post("/api/v1/webhooks/processor", data="x" * 300_000)
    problem(huge, 413)


def test_autopay_enrolled_with_a_card_saved_on_the_processor_page(stack, make_resident):
    resident = make_resident(link=("55956", "493233"))
    setup = resident.post("/api/v1/accounts/55956/autopay/card-setups").json()
    saved = HostedPage(setup["setup_url"]).submit("4242424242424242")
    assert saved.status_code == 303
    back = HostedPage.outcome(saved)
    assert saved.headers["Location"].startswith(f"{stack.base_url}/accounts/55956/autopay")
    problem(resident.put("/api/v1/accounts/55956/autopay", {"card_token": "tok_forged"}), 422)
    enrolled = resident.put("/api/v1/accounts/55956/autopay", {"card_token": back["card_token"]})
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["status"] == "active"
    assert enrolled.json()["card"]["last4"] == "4242"
    cancelled = resident.delete("/api/v1/accounts/55956/autopay")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_signed_in_resident_can_quick_pay_another_account(stack, make_resident):
    (bill,) = stack.issue_bills("45469", "7.00")
    resident = make_resident(link=("28624", "405583"))
    found = wait_for(
        lambda: (
            (
                r := resident.post(
                    "/api/v1/quick-pay/lookups",
                    {"account_number": "45469", "customer_id": "448598"},
                ).json()
            )
            and bill in {b["bill_number"] for b in r.get("bills", [])}
            and r
        ),
        timeout=20,
        what="the imported bill in quick pay",
    )
    assert resident.http.cookies.get("mp_guest") and found["guest_token"]
    # The session's CSRF token is the one that counts while signed in.
    added = resident.post("/api/v1/cart/items", {"bill_number": bill})
    assert added.status_code == 201, added.text
    assert added.json()["owner"] == f"user:{resident.user_id}"
    assert resident.delete("/api/v1/sessions/current").status_code == 204
    assert not resident.http.cookies.get("mp_guest")


def test_signing_in_takes_over_the_quick_pay_cart(stack, make_resident):
    from tests.gateway.conftest import PASSWORD

    (bill,) = stack.issue_bills("77265", "3.50")
    resident = make_resident()
    browser = Client(stack.base_url)
    wait_for(
        lambda: (
            bill
            in {
                b["bill_number"]
                for b in browser.post(
                    "/api/v1/quick-pay/lookups",
                    {"account_number": "77265", "customer_id": "490940"},
                )
                .json()
                .get("bills", [])
            }
        ),
        timeout=20,
        what="the imported bill in quick pay",
    )
    browser.csrf = browser.http.cookies.get("mp_csrf")
    assert browser.post("/api/v1/cart/items", {"bill_number": bill}).status_code == 201
    signed_in = browser.post("/api/v1/sessions", {"login": resident.user_id, "password": PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    browser.csrf = signed_in.json()["csrf_token"]
    cart = browser.get("/api/v1/cart").json()
    assert [i["bill_number"] for i in cart["items"]] == [bill]
    assert cart["owner"] == f"user:{resident.user_id}"
