"""Staff verbs: muniportal-ops payments refund | void | show | settlement."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from shared.ops import cli
from shared.testing import wait_for

pytestmark = pytest.mark.integration

RIG = {"config": {"PROCESSOR_POLL_SECONDS": 300}}


@pytest.fixture(autouse=True)
def ops_env(rig, monkeypatch):
    monkeypatch.setenv("AMQP_URI", rig.amqp_uri)
    monkeypatch.setenv("MUNIPORTAL_STAFF", "clerk.jones")
    rig.sandbox.settings(webhook_mode="normal")


def ops(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def paid(rig, owner, amount):
    (bill,) = rig.issue(amount)
    checkout = rig.checkout(owner, bill)
    rig.pay(checkout)
    done = rig.wait_status(owner, checkout["checkout_id"], "paid")
    wait_for(lambda: rig.posted(bill) == 0, what="billing to post the payment")
    return bill, done


def test_staff_refund_in_part_then_in_full(rig, owner, capsys):
    bill, checkout = paid(rig, owner, "120.00")
    confirmation = checkout["receipt"]["confirmation_number"]
    status, out, _ = ops(
        capsys,
        "payments",
        "refund",
        confirmation,
        "--amount",
        "20.00",
        "--reason",
        "leak adjustment",
    )
    assert status == 0, out
    assert "partially_refunded" in out and "refunded $20.00" in out
    status, _, err = ops(
        capsys, "payments", "refund", confirmation, "--amount", "100.01", "--reason", "too much"
    )
    assert status == 2 and "must not be more than the refundable $100.00" in err
    status, out, _ = ops(
        capsys, "payments", "refund", checkout["payment_id"], "--reason", "account closed", "--json"
    )
    assert status == 0
    assert json.loads(out)["payment_status"] == "refunded"

    refunds = rig.events("PaymentRefunded", checkout["payment_id"])
    assert [e.data["amount"] for e in refunds] == ["20.00", "100.00"]
    assert {e.actor for e in rig.events("RefundRequested", checkout["payment_id"])} == {
        "staff:clerk.jones"
    }
    assert sorted(
        t["amount"]
        for t in rig.sandbox.transactions(checkout["payment_id"])
        if t["type"] == "refund"
    ) == ["100.00", "20.00"]
    # Billing puts the money back on the bill.
    wait_for(lambda: rig.posted(bill) == Decimal("120.00"), what="billing to reverse the refunds")
    status, _, err = ops(capsys, "payments", "refund", "MP-00000000-NOPE", "--reason", "typo")
    assert status == 2 and "was not found" in err


def test_staff_void_an_open_checkout_a_fresh_payment_and_not_a_settled_one(rig, owner, capsys):
    (bill,) = rig.issue("15.00")
    open_checkout = rig.checkout(owner, bill)
    status, out, _ = ops(capsys, "payments", "void", open_checkout["checkout_id"])
    assert status == 0 and "canceled" in out
    assert rig.payments.get_checkout(owner, open_checkout["checkout_id"])["status"] == "canceled"

    _, fresh = paid(rig, owner + "-2", "16.00")  # the voided bill is still in the first cart
    status, out, _ = ops(
        capsys,
        "payments",
        "void",
        fresh["receipt"]["confirmation_number"],
        "--reason",
        "paid twice by phone",
    )
    assert status == 0 and "refunded $16.00" in out
    (voided,) = rig.events("PaymentRefunded", fresh["payment_id"])
    assert voided.data["void"] and voided.data["full"]
    assert [t["type"] for t in rig.sandbox.transactions(fresh["payment_id"])] == ["charge", "void"]

    _, settled = paid(rig, owner + "-3", "17.00")
    (charge,) = rig.sandbox.transactions(settled["payment_id"])
    rig.sandbox.api("POST", f"/sandbox/payments/{charge['payment_id']}/settle")
    head = rig.head()
    status, _, err = ops(capsys, "payments", "void", settled["payment_id"])
    assert status == 2 and "already been settled" in err
    assert rig.head() == head


def test_settlement_lists_every_difference_with_the_processor(rig, owner, capsys):
    _, kept = paid(rig, owner, "25.00")
    _, returned = paid(rig, owner + "-2", "26.00")
    (charge,) = rig.sandbox.transactions(returned["payment_id"])
    # The bank returns a payment, and that webhook is lost.
    rig.sandbox.settings(webhook_mode="drop")
    _, bank_return = rig.sandbox.api(
        "POST",
        f"/sandbox/payments/{charge['payment_id']}/return",
        {"reason": "return: account closed"},
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    status, out, _ = ops(capsys, "payments", "settlement", "--date", today, "--json")
    assert status == 0
    report = json.loads(out)
    assert report["differences"] == [
        {
            "difference": "missing_in_ours",
            "transaction_id": bank_return["id"],
            "kind": "return",
            "payment_id": returned["payment_id"],
            "processor_payment_id": charge["payment_id"],
            "processor_amount": "26.00",
            "our_amount": None,
            "our_day": None,
        }
    ]
    assert not report["balanced"]
    assert report["processor"]["transactions"] == report["ours"]["transactions"] + 1
    status, out, _ = ops(capsys, "payments", "settlement", "--date", today)
    assert status == 0 and "1 difference(s)" in out and bank_return["id"] in out
    status, out, _ = ops(capsys, "payments", "settlement", "--date", "2001-01-01")
    assert status == 0 and "balanced" in out
    status, _, err = ops(capsys, "payments", "settlement", "--date", "yesterday")
    assert status == 2 and "is not a date" in err


def test_rebuilding_the_read_models_gives_the_same_answers(rig, owner, capsys, monkeypatch):
    import sqlalchemy as sa

    from services.payments.projections import metadata

    paid(rig, owner, "45.00")
    (open_bill,) = rig.issue("46.00")
    rig.checkout(owner + "-open", open_bill)
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", rig.db_url)

    def snapshot():
        out = {}
        with rig.events_store.engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(sa.select(table)).mappings()
                out[table.name] = sorted(
                    json.dumps(dict(r), sort_keys=True, default=str) for r in rows
                )
        return out

    before = snapshot()
    assert before["payments"] and before["bills"] and before["bill_holds"]
    status, out, err = ops(capsys, "rebuild", "payments")
    assert status == 0, err
    assert "carts" in out and "payments" in out
    assert snapshot() == before
