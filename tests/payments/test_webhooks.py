"""Webhooks: signed, deduplicated, order-proof; lost ones settled by polling.

This module runs payments on SQLite (the embedded default), with two webhook secrets
active as during a rotation.
"""

from __future__ import annotations

import json
import time

import pytest

from services.payments.signatures import sign
from shared.testing import wait_for

pytestmark = pytest.mark.integration

OLD, NEW = "whsec_rotating_old", "whsec_rotating_new"
RIG = {
    "db": "sqlite",
    "config": {"PROCESSOR_WEBHOOK_SECRETS": f"{OLD},{NEW}", "PROCESSOR_POLL_SECONDS": 2},
    "sandbox": ["--webhook-secret", OLD],
}


@pytest.fixture(autouse=True)
def normal_mode(rig):
    rig.sandbox.settings(webhook_mode="normal", webhook_secrets=[OLD])
    yield
    rig.sandbox.settings(webhook_mode="normal", webhook_secrets=[OLD])


def deliveries_of(rig, checkout):
    """The sandbox's webhook deliveries for this checkout's payment."""
    session_id = checkout["payment_url"].rsplit("/", 1)[1]
    _, session = rig.sandbox.api("GET", f"/v1/checkout/sessions/{session_id}")
    processor_id = (session.get("payment") or {}).get("id")
    return [d for d in rig.sandbox.deliveries() if processor_id and d["payment_id"] == processor_id]


def success_body(rig, checkout, event_id="evt_forged_1"):
    return json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "object": "payment",
                    "id": "py_forged",
                    "reference": checkout["payment_id"],
                    "amount": checkout["amount_total"],
                    "status": "succeeded",
                    "succeeded_at": None,
                    "card": {"brand": "visa", "last4": "4242"},
                }
            },
        },
        separators=(",", ":"),
    )


def test_a_forged_or_stale_webhook_is_refused_and_nothing_is_recorded(rig, owner):
    (bill,) = rig.issue("70.00")
    checkout = rig.checkout(owner, bill)
    body = success_body(rig, checkout)
    now = int(time.time())
    head = rig.head()
    attempts = {
        "wrong secret": sign(body.encode(), ["whsec_guessed"], now),
        "no signature": None,
        "stale": sign(body.encode(), [NEW], now - 301),
        "from the future": sign(body.encode(), [NEW], now + 301),
        "garbage": "t=abc,v1=zz",
        "tampered": sign(body.replace("70.00", "0.01").encode(), [NEW], now),
    }
    for what, signature in attempts.items():
        response = rig.post_webhook(body, signature)
        assert response.status_code == 400, what
        assert response.json()["error"] == "bad_signature", what
    assert rig.head() == head
    assert rig.payments.get_checkout(owner, checkout["checkout_id"])["status"] == "open"
    # Inside the 5-minute tolerance and signed with either active secret, it is accepted.
    benign = json.dumps(
        {
            "id": "evt_setup_1",
            "type": "setup.succeeded",
            "created": now,
            "data": {"object": {"object": "setup"}},
        }
    )
    for secret in (OLD, NEW):
        response = rig.post_webhook(benign, sign(benign.encode(), [secret], now - 200))
        assert response.status_code == 200, secret
    assert rig.head() == head


def test_webhooks_signed_with_the_new_secret_during_rotation_are_accepted(rig, owner):
    rig.sandbox.settings(webhook_secrets=[NEW])
    (bill,) = rig.issue("20.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    rig.wait_status(owner, checkout["checkout_id"], "paid")


def test_unacknowledged_webhooks_are_retried_with_backoff_until_acknowledged(rig, owner):
    # The processor signs with a secret we do not have: every delivery is refused (400).
    rig.sandbox.settings(webhook_secrets=["whsec_retired"])
    (bill,) = rig.issue("21.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    wait_for(
        lambda: any(
            d["attempts"] >= 2 and d["last_code"] == 400 for d in deliveries_of(rig, checkout)
        ),
        what="the sandbox to retry the refused webhook",
    )
    assert rig.payments.get_checkout(owner, checkout["checkout_id"])["status"] == "open"
    rig.sandbox.settings(webhook_secrets=[OLD])  # configuration fixed: the next retry lands
    rig.wait_status(owner, checkout["checkout_id"], "paid")
    deliveries = deliveries_of(rig, checkout)
    assert all(d["status"] == "delivered" for d in deliveries)
    # The first was refused and retried; the ones after it waited their turn (in order).
    assert max(d["attempts"] for d in deliveries) >= 3
    assert len(rig.events("PaymentSucceeded", checkout["payment_id"])) == 1


def test_duplicate_webhooks_give_one_payment_and_one_posting(rig, owner):
    rig.sandbox.settings(webhook_mode="duplicate")
    (bill,) = rig.issue("33.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    rig.wait_status(owner, checkout["checkout_id"], "paid")
    wait_for(
        lambda: len([d for d in deliveries_of(rig, checkout) if d["status"] == "delivered"]) == 4,
        what="both copies of both webhooks to be acknowledged",
    )
    succeeded = [d for d in deliveries_of(rig, checkout) if d["type"] == "payment.succeeded"]
    assert len(succeeded) == 2 and succeeded[0]["event_id"] == succeeded[1]["event_id"]
    assert len(rig.sandbox.transactions(checkout["payment_id"])) == 1
    assert len(rig.events("PaymentSucceeded", checkout["payment_id"])) == 1
    assert len(rig.events("PaymentPending", checkout["payment_id"])) == 1
    wait_for(lambda: rig.posted(bill) == 0, what="billing to post the payment")
    assert len(rig.billing.bill_brief(bill)["postings"]) == 1


@pytest.mark.parametrize("card", ["4242424242424242", "4000000000001257"])
def test_out_of_order_webhooks_are_harmless(rig, owner, card):
    rig.sandbox.settings(webhook_mode="out_of_order")
    (bill,) = rig.issue("44.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout, card)
    rig.wait_status(owner, checkout["checkout_id"], "paid")
    wait_for(
        lambda: len([d for d in deliveries_of(rig, checkout) if d["status"] == "delivered"]) == 2,
        what="both webhooks to be acknowledged",
    )
    by_type = {d["type"]: d for d in deliveries_of(rig, checkout)}
    assert (
        by_type["payment.succeeded"]["delivered_at"] < by_type["payment.processing"]["delivered_at"]
    )
    # "processing" came after "succeeded": the state machine ignored it.
    assert [
        e.type
        for e in rig.events(payment_id=checkout["payment_id"])
        if e.type.startswith("Payment")
    ] == [
        "PaymentCreated",
        "PaymentSessionCreated",
        "PaymentSucceeded",
    ]
    assert len(rig.sandbox.transactions(checkout["payment_id"])) == 1
    wait_for(lambda: rig.posted(bill) == 0, what="billing to post the payment")
    assert len(rig.billing.bill_brief(bill)["postings"]) == 1


def test_lost_webhooks_are_settled_by_polling_the_processor(rig, owner):
    rig.sandbox.settings(webhook_mode="drop")
    (bill,) = rig.issue("55.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    paid = rig.wait_status(owner, checkout["checkout_id"], "paid", timeout=20)
    assert paid["receipt"]["card_last4"] == "4242"
    assert all(d["status"] == "dropped" for d in deliveries_of(rig, checkout))
    assert len(rig.events("PaymentSucceeded", checkout["payment_id"])) == 1


def test_a_refund_reported_before_its_payment_is_applied_after_it(rig, owner):
    rig.sandbox.settings(webhook_mode="drop")
    (bill,) = rig.issue("66.00")
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    (charge,) = rig.sandbox.transactions(checkout["payment_id"])
    rig.sandbox.settings(webhook_mode="normal")
    # Refunded at the processor's dashboard: its webhook is the first we hear of the payment.
    status, refund = rig.sandbox.api(
        "POST",
        f"/v1/payments/{charge['payment_id']}/refunds",
        {"amount": "16.00", "reason": "duplicate"},
    )
    assert status == 200
    final = wait_for(
        lambda: (
            (c := rig.payments.get_checkout(owner, checkout["checkout_id"]))["payment_status"]
            == "partially_refunded"
            and c
        ),
        what="the refund to be applied",
    )
    assert final["refunded"] == "16.00"
    kinds = [
        e.type
        for e in rig.events(payment_id=checkout["payment_id"])
        if e.type in ("PaymentSucceeded", "PaymentRefunded")
    ]
    assert kinds == ["PaymentSucceeded", "PaymentRefunded"]
    (refunded,) = rig.events("PaymentRefunded", checkout["payment_id"])
    assert refunded.data["refund_id"] == refund["id"]
    assert [(a["bill_number"], a["amount"]) for a in refunded.data["allocations"]] == [
        (bill, "16.00")
    ]
