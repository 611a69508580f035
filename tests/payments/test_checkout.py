"""A resident pays bills: cart, checkout, the processor's hosted page, the receipt."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.testing import wait_for

pytestmark = pytest.mark.integration

RIG = {"config": {"CONVENIENCE_FEE": "2.5%"}}


def test_resident_pays_two_bills_in_one_checkout(rig, owner):
    first, second = rig.issue("134.46", "127.11")
    rig.payments.add_to_cart(owner, first)
    cart = rig.payments.add_to_cart(owner, second)
    assert cart["count"] == 2
    assert [i["amount"] for i in cart["items"]] == ["134.46", "127.11"]
    assert cart["subtotal"] == "261.57"
    assert cart["convenience_fee"] == "6.54"  # 2.5% of 261.57, shown before paying
    assert cart["total"] == "268.11"

    checkout = rig.payments.start_checkout(
        owner, "key-two-bills-1", rig.billing_info(), rig.return_url
    )
    assert checkout["status"] == "open"
    assert 590 <= checkout["seconds_left"] <= 600
    assert checkout["amount_total"] == "268.11"
    assert checkout["payment_url"].startswith(rig.sandbox.url + "/pay/")
    pending = {
        b["bill_number"]: b["pending_web_payment"]
        for b in rig.payments.bill_status([first, second])
    }
    assert pending == {first: True, second: True}

    outcome = rig.pay(checkout)
    assert outcome["status"] == "succeeded"
    paid = rig.wait_status(owner, checkout["checkout_id"], "paid")
    receipt = paid["receipt"]
    assert receipt["confirmation_number"].startswith("MP-")
    assert receipt["amount_total"] == "268.11"
    assert receipt["card_last4"] == "4242"
    assert [i["bill_number"] for i in receipt["items"]] == [first, second]

    # One charge at the processor, one PaymentSucceeded, posted once by billing.
    assert [t["amount"] for t in rig.sandbox.transactions(checkout["payment_id"])] == ["268.11"]
    (succeeded,) = rig.events("PaymentSucceeded", checkout["payment_id"])
    assert [(a["bill_number"], a["amount"]) for a in succeeded.data["allocations"]] == [
        (first, "134.46"),
        (second, "127.11"),
    ]
    wait_for(
        lambda: rig.posted(first) == Decimal("0.00") and rig.posted(second) == 0, what="posting"
    )
    assert len(rig.billing.bill_brief(first)["postings"]) == 1

    assert rig.payments.get_cart(owner)["count"] == 0
    history = rig.payments.payment_history(owner.split(":", 1)[1])
    assert history[0]["confirmation_number"] == receipt["confirmation_number"]
    statuses = {b["bill_number"]: b for b in rig.payments.bill_status([first, second])}
    assert not statuses[first]["pending_web_payment"]
    assert statuses[first]["payable_balance"] == "0.00"


CARDS = [
    ("4242424242424242", "succeeded", "paid", None),
    ("5555555555554444", "succeeded", "paid", None),
    ("4000000000000002", "failed", "failed", "Your card was declined by your bank."),
    ("4000000000009995", "failed", "failed", "Your card was declined for insufficient funds."),
    ("4000000000000119", "failed", "failed", "The card processor had an error"),
    ("4000000000001257", "processing", "paid", None),
    ("4000000000001265", "processing", "failed", "Your card was declined by your bank."),
]


@pytest.mark.parametrize(("card", "redirect_status", "final", "reason"), CARDS)
def test_every_test_card_through_the_hosted_page(rig, owner, card, redirect_status, final, reason):
    (bill,) = rig.issue("50.00")
    checkout = rig.checkout(owner, bill)
    outcome = rig.pay(checkout, card)
    # Back to the portal's return URL, with the checkout it was for.
    assert outcome == {
        "c": "1",
        "checkout_id": checkout["checkout_id"],
        "session_id": outcome["session_id"],
        "status": redirect_status,
    }
    if redirect_status == "processing":
        # The delayed cards: the processor says "processing" first, the result comes later.
        seen = rig.wait_status(owner, checkout["checkout_id"], "pending", final)
        assert seen["payment_url"] is None  # the page is done with; no second card
    done = rig.wait_status(owner, checkout["checkout_id"], "paid", "failed")
    assert done["status"] == final
    payment_id = checkout["payment_id"]
    charges = rig.sandbox.transactions(payment_id)
    if final == "paid":
        assert len(charges) == 1
        assert len(rig.events("PaymentSucceeded", payment_id)) == 1
        assert rig.payments.get_cart(owner)["count"] == 0
    else:
        assert charges == []
        assert rig.events("PaymentSucceeded", payment_id) == []
        (failed,) = rig.events("PaymentFailed", payment_id)
        assert reason in failed.data["reason"] and failed.data["email"] == "ana@example.test"
        assert reason in done["message"]
        # Nothing was charged; the bill stays in the cart and is free for another try.
        cart = rig.payments.get_cart(owner)
        assert cart["count"] == 1 and not cart["items"][0]["pending_web_payment"]
        again = rig.payments.start_checkout(
            owner, "retry-" + payment_id, rig.billing_info(), rig.return_url
        )
        assert again["status"] == "open" and again["checkout_id"] != checkout["checkout_id"]


def test_double_submit_and_back_button_give_one_session_and_one_charge(rig, owner, amqp_uri):
    import eventlet

    from shared.rpc import rpc_client

    (bill,) = rig.issue("127.11")
    rig.payments.add_to_cart(owner, bill)

    def submit(_):
        with rpc_client(amqp_uri) as cluster:
            return cluster.payments.start_checkout(
                owner, "double-key-1", rig.billing_info(), rig.return_url
            )

    sessions = list(eventlet.GreenPool(4).imap(submit, range(4)))
    assert len({s["checkout_id"] for s in sessions}) == 1
    assert len({s["payment_url"] for s in sessions}) == 1
    checkout = sessions[0]

    page = rig.pay(checkout)
    assert page["status"] == "succeeded"
    # The resident clicks Pay again, and again through the back button: no second charge.
    from tests.payments.standins import HostedPage

    again = HostedPage(checkout["payment_url"])
    resent = again.http.post(
        checkout["payment_url"],
        data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123", "name": "Ana"},
        allow_redirects=False,
        timeout=10,
    )
    assert resent.status_code == 303 and HostedPage.outcome(resent)["status"] == "succeeded"
    rig.wait_status(owner, checkout["checkout_id"], "paid")
    back = rig.payments.start_checkout(owner, "double-key-1", rig.billing_info(), rig.return_url)
    assert back["checkout_id"] == checkout["checkout_id"] and back["status"] == "paid"

    assert len(rig.sandbox.transactions(checkout["payment_id"])) == 1
    assert len(rig.events("PaymentCreated", checkout["payment_id"])) == 1
    assert len(rig.events("PaymentSucceeded", checkout["payment_id"])) == 1
    wait_for(lambda: rig.posted(bill) == 0, what="billing to post the payment")
    assert len(rig.billing.bill_brief(bill)["postings"]) == 1


def test_two_browsers_paying_the_same_bill_at_once(rig, amqp_uri):
    import eventlet

    from shared.errors import Conflict
    from shared.rpc import rpc_client

    (bill,) = rig.issue("88.20")
    owners = ["user:spouse-a-1", "user:spouse-b-1"]
    for o in owners:
        rig.payments.add_to_cart(o, bill)

    def browser(o):
        with rpc_client(amqp_uri) as cluster:
            try:
                return cluster.payments.start_checkout(
                    o, f"key-{o}", rig.billing_info(), rig.return_url
                )
            except Conflict as exc:
                return exc

    results = list(eventlet.GreenPool(2).imap(browser, owners))
    opened = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(opened) == 1 and len(refused) == 1
    assert refused[0].code == "bill_in_checkout"
    assert f"Bill {bill} is already being paid in another checkout" in refused[0].detail
    assert "checkout_id" not in refused[0].extra  # another resident's checkout stays private

    winner = opened[0]
    loser = owners[1] if winner["owner"] == owners[0] else owners[0]
    assert rig.pay(winner)["status"] == "succeeded"
    rig.wait_status(winner["owner"], winner["checkout_id"], "paid")
    # The other browser now learns the bill is paid instead of paying it twice.
    with pytest.raises(Exception) as excinfo:
        rig.payments.start_checkout(loser, f"key-{loser}-2", rig.billing_info(), rig.return_url)
    assert excinfo.value.code == "cart_invalid"
    assert "no balance due" in excinfo.value.detail

    charges = [t for t in rig.sandbox.transactions() if t["reference"] == winner["payment_id"]]
    assert len(charges) == 1
    assert len(rig.events("PaymentSucceeded")) == len(
        {e.data["payment_id"] for e in rig.events("PaymentSucceeded")}
    )
    wait_for(lambda: rig.posted(bill) == 0, what="billing to post the payment")
    assert len(rig.billing.bill_brief(bill)["postings"]) == 1


def test_a_second_session_for_a_bill_in_checkout_is_refused_and_cancel_frees_it(rig, owner):
    from shared.errors import Conflict

    (bill,) = rig.issue("40.00")
    first = rig.checkout(owner, bill, key="first-session-1")
    with pytest.raises(Conflict) as excinfo:
        rig.payments.start_checkout(owner, "second-session-1", rig.billing_info(), rig.return_url)
    assert excinfo.value.code == "bill_in_checkout"
    assert excinfo.value.extra["checkout_id"] == first["checkout_id"]  # the owner is told which
    assert "Finish or cancel that payment first" in excinfo.value.detail

    canceled = rig.payments.cancel_checkout(owner, first["checkout_id"])
    assert canceled["status"] == "canceled"
    page = rig.sandbox.http.get(first["payment_url"], timeout=10)
    assert page.status_code == 410 and "Nothing was charged" in page.text
    assert not rig.payments.bill_status([bill])[0]["pending_web_payment"]
    second = rig.payments.start_checkout(
        owner, "second-session-1", rig.billing_info(), rig.return_url
    )
    assert second["status"] == "open"
    assert [e.data["outcome"] for e in rig.events("CheckoutClosed", first["payment_id"])] == [
        "canceled"
    ]


def test_cart_amounts_default_to_the_balance_and_follow_the_rules(rig, owner):
    from shared.errors import InvalidInput, NotFound

    bill, other = rig.issue("127.11", "0.50")
    cart = rig.payments.add_to_cart(owner, bill)
    assert cart["items"][0]["amount"] == "127.11" and cart["items"][0]["pays_balance"]
    # Added twice: still once in the cart.
    assert rig.payments.add_to_cart(owner, bill)["count"] == 1
    cart = rig.payments.add_to_cart(owner, bill, "27.11")
    assert cart["count"] == 1 and cart["items"][0]["amount"] == "27.11"
    with pytest.raises(InvalidInput) as low:
        rig.payments.add_to_cart(owner, bill, "0.99")
    assert low.value.errors == {"amount": "must be at least $1.00"}
    with pytest.raises(InvalidInput) as high:
        rig.payments.add_to_cart(owner, bill, "127.12")
    assert high.value.errors == {"amount": "must not be more than the balance due ($127.11)"}
    with pytest.raises(InvalidInput) as bad:
        rig.payments.add_to_cart(owner, bill, "12.345")
    assert bad.value.errors["amount"].startswith("must be an amount in dollars and cents")
    # A balance under the minimum can still be paid off in full.
    cart = rig.payments.add_to_cart(owner, other)
    assert cart["count"] == 2 and cart["subtotal"] == "27.61"
    with pytest.raises(NotFound):
        rig.payments.add_to_cart(owner, "99999999999")
    cart = rig.payments.remove_from_cart(owner, other)
    assert cart["count"] == 1
    with pytest.raises(NotFound):
        rig.payments.remove_from_cart(owner, other)
    # The cart belongs to the user, not to a session: after signing out it is still there.
    from shared.rpc import rpc_client

    with rpc_client(rig.amqp_uri) as fresh:
        assert fresh.payments.get_cart(owner)["items"][0]["amount"] == "27.11"

    checkout = rig.payments.start_checkout(owner, "partial-1", rig.billing_info(), rig.return_url)
    assert checkout["subtotal"] == "27.11" and checkout["convenience_fee"] == "0.68"
    rig.pay(checkout)
    rig.wait_status(owner, checkout["checkout_id"], "paid")
    wait_for(lambda: rig.posted(bill) == Decimal("100.00"), what="billing to post the part payment")
    wait_for(
        lambda: rig.payments.bill_status([bill])[0]["payable_balance"] == "100.00",
        what="payments to hear the new balance",
    )


def test_billing_information_is_checked_field_by_field(rig, owner):
    from shared.errors import InvalidInput

    (bill,) = rig.issue("10.00")
    rig.payments.add_to_cart(owner, bill)
    head = rig.head()
    with pytest.raises(InvalidInput) as excinfo:
        rig.payments.start_checkout(
            owner,
            "bad-billing-1",
            rig.billing_info(state="Calif", zip="9456", email="not-an-email", name=""),
            rig.return_url,
        )
    errors = excinfo.value.errors
    assert set(errors) == {"billing.state", "billing.zip", "billing.email", "billing.name"}
    with pytest.raises(InvalidInput) as empty:
        rig.payments.start_checkout(
            "guest:nobody-1", "empty-cart-1", rig.billing_info(), rig.return_url
        )
    assert empty.value.code == "cart_empty"
    assert rig.head() == head  # nothing half-written


def test_guest_quick_pay_sends_the_receipt_to_the_email_given(rig):
    from shared.errors import NotFound

    guest = "guest:qp-7f3a9"
    (bill,) = rig.issue("61.00")
    checkout = rig.checkout(guest, bill, email="renter@example.test")
    rig.pay(checkout, "5555555555554444")
    paid = rig.wait_status(guest, checkout["checkout_id"], "paid")
    assert paid["receipt"]["email"] == "renter@example.test"
    assert paid["receipt"]["card_brand"] == "mastercard"
    (succeeded,) = rig.events("PaymentSucceeded", checkout["payment_id"])
    assert succeeded.data["email"] == "renter@example.test" and succeeded.data["user_id"] is None
    with pytest.raises(NotFound):
        rig.payments.get_checkout("guest:someone-else", checkout["checkout_id"])
