"""The hard deadline: a checkout expires on time, and a success after it is refunded.

Sessions last 3 seconds here (600 in production) and the delayed test cards take 5.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.testing import wait_for
from tests.payments.standins import HostedPage

pytestmark = pytest.mark.integration

RIG = {"config": {"CHECKOUT_TTL_SECONDS": 3}, "sandbox": ["--delay-seconds", "5"]}


def test_a_success_after_the_session_expired_is_refunded_and_the_resident_told_why(rig, owner):
    (bill,) = rig.issue("91.25")
    checkout = rig.checkout(owner, bill, email="late@example.test")
    assert rig.pay(checkout, "4000000000001257")["status"] == "processing"
    rig.wait_status(owner, checkout["checkout_id"], "pending")
    expired = rig.wait_status(owner, checkout["checkout_id"], "expired", timeout=10)
    assert expired["seconds_left"] == 0
    # The bill is free again (and still in the cart) once the deadline has passed.
    assert not rig.payments.bill_status([bill])[0]["pending_web_payment"]

    # Then the processor reports the success: it is refunded in full, never posted.
    done = wait_for(
        lambda: (
            (c := rig.payments.get_checkout(owner, checkout["checkout_id"]))["late_payment"]
            and c["late_payment"]["status"] == "refunded"
            and c
        ),
        timeout=15,
        what="the late success to be refunded",
    )
    assert done["status"] == "expired"
    assert "refunded to your card" in done["message"]
    payment_id = checkout["payment_id"]
    assert rig.events("PaymentSucceeded", payment_id) == []
    (notice,) = rig.events("LatePaymentRefunded", payment_id)
    assert notice.data["email"] == "late@example.test"
    assert notice.data["amount"] == "91.25"
    assert "after the 10-minute checkout had expired" in notice.data["reason"]
    money = sorted((t["type"], t["amount"]) for t in rig.sandbox.transactions(payment_id))
    assert money == [("charge", "91.25"), ("refund", "91.25")]
    assert rig.posted(bill) == Decimal("91.25")
    assert rig.billing.bill_brief(bill)["postings"] == []
    assert rig.payments.get_cart(owner)["count"] == 1


def test_an_unpaid_session_expires_on_time_and_its_page_takes_no_card(rig, owner):
    (bill,) = rig.issue("12.00")
    checkout = rig.checkout(owner, bill)
    assert 0 < checkout["seconds_left"] <= 3
    page = HostedPage(checkout["payment_url"])
    assert "Time left: 0 minutes, and" in page.open().text
    rig.wait_status(owner, checkout["checkout_id"], "expired", timeout=10)
    late = page.http.post(
        checkout["payment_url"],
        data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123", "name": "Ana"},
        allow_redirects=False,
        timeout=10,
    )
    assert late.status_code == 410 and "Nothing was charged" in late.text
    assert rig.sandbox.transactions(checkout["payment_id"]) == []
    (closed,) = rig.events("CheckoutClosed", checkout["payment_id"])
    assert closed.data["outcome"] == "expired"
    assert (
        rig.events("PaymentExpired", checkout["payment_id"])[0].data["email"] == "ana@example.test"
    )
    # The resident starts again: a new session for the same bill is allowed now.
    again = rig.payments.start_checkout(owner, "after-expiry-1", rig.billing_info(), rig.return_url)
    assert again["status"] == "open"
