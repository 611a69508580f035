"""Automatic payments: a saved card charged before each new bill's due date, on one replica."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from shared.testing import wait_for
from tests.payments.conftest import wait
from tests.payments.standins import HostedPage

pytestmark = pytest.mark.integration

RIG = {"config": {"AUTOPAY_INTERVAL": 0.3, "AUTOPAY_DAYS_BEFORE": 5}}
TODAY = dt.datetime.now(dt.UTC).date()


def save_card(rig, owner, account, card="4242424242424242", expiry="12/34"):
    """The resident saves a card on the processor's hosted setup page; we get its token."""
    setup = rig.payments.start_card_setup(
        owner, account, "https://portal.example.test/autopay/return"
    )
    response = HostedPage(setup["setup_url"]).submit(card, expiry=expiry)
    assert response.status_code == 303
    outcome = HostedPage.outcome(response)
    assert outcome["status"] == "succeeded"
    return outcome["card_token"]


def enroll(rig, card="4242424242424242", expiry="12/34"):
    user = f"ana{random.randint(0, 10**9)}"
    account = str(random.randint(1_000_000, 9_000_000))
    token = save_card(rig, f"user:{user}", account, card, expiry)
    view = rig.payments.enroll_autopay(user, account, token, f"{user}@example.test")
    assert view["status"] == "active"
    return user, account, token


def charges(rig, account):
    return {c["bill_number"]: c for c in rig.payments.autopay(account)["charges"]}


def test_an_enrolled_account_is_charged_n_days_before_the_due_date(rig):
    user, account, _ = enroll(rig)
    view = rig.payments.autopay(account)
    assert view["card"]["last4"] == "4242" and view["days_before"] == 5
    due_soon, due_later = (
        rig.issue("75.10", account=account, due_date=TODAY + dt.timedelta(days=5))[0],
        None,
    )
    (due_later,) = rig.issue("80.00", account=account, due_date=TODAY + dt.timedelta(days=30))

    paid = wait_for(
        lambda: (
            charges(rig, account).get(due_soon, {}).get("status") == "paid"
            and charges(rig, account)
        ),
        what="the automatic payment to be charged",
    )
    assert paid[due_later]["status"] == "scheduled"
    assert paid[due_later]["charge_date"] == (TODAY + dt.timedelta(days=25)).isoformat()
    notices = {
        e.data["bill_number"]: e.data
        for e in rig.events("AutopayScheduled")
        if e.data["account_number"] == account
    }
    assert notices[due_soon]["charge_date"] == TODAY.isoformat()
    assert notices[due_later]["email"] == f"{user}@example.test"  # the advance notice

    payment_id = paid[due_soon]["payment_id"]
    (succeeded,) = rig.events("PaymentSucceeded", payment_id)
    assert succeeded.data["kind"] == "autopay" and succeeded.data["user_id"] == user
    assert succeeded.data["amount_total"] == "75.10"
    assert len(rig.sandbox.transactions(payment_id)) == 1
    wait_for(lambda: rig.posted(due_soon) == 0, what="billing to post the automatic payment")
    assert rig.payments.payment_history(user)[0]["kind"] == "autopay"


def test_a_failed_automatic_payment_is_emailed_and_shown(rig):
    user, account, _ = enroll(rig, card="4000000000009995")
    (bill,) = rig.issue("64.00", account=account, due_date=TODAY + dt.timedelta(days=2))
    wait_for(
        lambda: charges(rig, account).get(bill, {}).get("status") == "failed",
        what="the charge to fail",
    )
    view = rig.payments.autopay(account)
    assert view["last_failure"]["bill_number"] == bill
    assert "insufficient funds" in view["last_failure"]["reason"]
    (failed,) = [e for e in rig.events("AutopayChargeFailed") if e.data["bill_number"] == bill]
    assert failed.data["email"] == f"{user}@example.test"
    assert rig.sandbox.transactions(failed.data["payment_id"]) == []


def test_changing_the_card_and_cancelling_take_effect_at_once(rig):
    user, account, _ = enroll(rig, card="4000000000000002")
    (future,) = rig.issue("30.00", account=account, due_date=TODAY + dt.timedelta(days=40))
    wait_for(lambda: future in charges(rig, account), what="the charge to be scheduled")
    # A new card replaces the declined one before the next charge is made.
    new_token = save_card(rig, f"user:{user}", account, "5555555555554444")
    view = rig.payments.enroll_autopay(user, account, new_token, f"{user}@example.test")
    assert view["card"]["brand"] == "mastercard"
    (now_due,) = rig.issue("31.00", account=account, due_date=TODAY + dt.timedelta(days=1))
    paid = wait_for(
        lambda: (
            charges(rig, account).get(now_due, {}).get("status") == "paid" and charges(rig, account)
        ),
        what="the charge with the new card",
    )
    (succeeded,) = rig.events("PaymentSucceeded", paid[now_due]["payment_id"])
    assert succeeded.data["card_brand"] == "mastercard"

    view = rig.payments.cancel_autopay(user, account)
    assert view["status"] == "cancelled"
    assert charges(rig, account)[future]["status"] == "cancelled"
    # rig.issue returns once payments has consumed the bill (its handler ran in that transaction).
    (after,) = rig.issue("32.00", account=account, due_date=TODAY + dt.timedelta(days=1))
    assert after not in charges(rig, account)
    with pytest.raises(Exception) as excinfo:
        rig.payments.cancel_autopay(user, account)
    assert excinfo.value.code == "autopay_not_enrolled"


def test_an_expired_card_is_refused_and_an_expiring_one_is_warned_once(rig):
    from shared.errors import InvalidInput

    this_month = f"{TODAY.month:02d}/{TODAY.year % 100:02d}"
    user, account, _ = enroll(rig, expiry=this_month)
    warning = wait_for(
        lambda: [e for e in rig.events("CardExpiringSoon") if e.data["account_number"] == account],
        what="the expiring-card warning",
    )
    assert warning[0].data["email"] == f"{user}@example.test"
    assert rig.payments.autopay(account)["card"]["expiring_soon"]
    with pytest.raises(InvalidInput) as excinfo:
        rig.payments.enroll_autopay(user, account, "tok_not_a_card", f"{user}@example.test")
    assert excinfo.value.code == "card_token_invalid"
    wait(1.0)  # the scheduler runs every 0.3 s: three more runs, still one warning
    assert (
        len([e for e in rig.events("CardExpiringSoon") if e.data["account_number"] == account]) == 1
    )


def test_the_scheduler_runs_on_exactly_one_replica(rig):
    from nameko.containers import ServiceContainer

    from services.payments.service import Jobs, PaymentsService

    second = ServiceContainer(PaymentsService, rig.config)
    second.start()
    try:
        replicas = [rig.containers[0], second]

        def holders():
            jobs = [next(d for d in c.dependencies if isinstance(d, Jobs)) for c in replicas]
            return [j.holds("autopay-scheduler") for j in jobs]

        wait_for(lambda: any(holders()), what="a replica to take the scheduler lease")
        user, account, _ = enroll(rig)
        bills = rig.issue("10.00", "11.00", "12.00", account=account, due_date=TODAY)
        wait_for(
            lambda: all(charges(rig, account).get(b, {}).get("status") == "paid" for b in bills),
            timeout=30,
            what="all three automatic payments",
        )
        assert holders().count(True) == 1
        for bill in bills:
            payment_id = charges(rig, account)[bill]["payment_id"]
            assert len(rig.sandbox.transactions(payment_id)) == 1
        started = [
            e for e in rig.events("AutopayChargeStarted") if e.data["account_number"] == account
        ]
        assert sorted(e.data["bill_number"] for e in started) == sorted(bills)
    finally:
        second.kill()
