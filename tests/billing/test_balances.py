"""Balances: payments applied, reversals reopened and marked, the pending flag, and one total."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.billing import projections as p
from services.billing import queries
from services.billing.import_bills import import_bills
from services.billing.penalties import assess_penalties
from shared.errors import InvalidInput
from tests.billing.conftest import (
    deliver,
    envelope,
    payment_reversed,
    payment_succeeded,
    seed_copy,
    unique,
)

pytestmark = pytest.mark.integration
TODAY = dt.date(2026, 11, 22)


def now():
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def n(store, schedule, tmp_path):
    """A fresh copy of the seed's bills: n["98465"] is this test's bill 98465."""
    return seed_copy(store, schedule, tmp_path)


def bill(store, schedule, number):
    with store.read() as conn:
        return queries.bill_detail(conn, schedule, number, now=now())


def summary(store, schedule, account):
    with store.read() as conn:
        return queries.account_summary(conn, schedule, account, as_of=TODAY, now=now())


def listing(store, schedule, account, status="outstanding", sched=None):
    with store.read() as conn:
        return queries.account_bills(
            conn, sched or schedule, account, status, as_of=TODAY, now=now()
        )


def test_partial_payment_then_refund_reopens_the_amount_and_says_so(store, schedule, n):
    paid = payment_succeeded([(n["98465"], n["28624"], "27.11")])
    assert deliver(store, paid, schedule)
    assert bill(store, schedule, n["98465"])["balance_due"] == "100.00"
    assert (
        summary(store, schedule, n["28624"])["amount_due_now"]
        == "234.46"
        == listing(store, schedule, n["28624"])["total_due"]
    )

    assert not deliver(store, paid, schedule)  # the same event again: the inbox drops it
    assert bill(store, schedule, n["98465"])["balance_due"] == "100.00"

    refund = payment_reversed("PaymentRefunded", paid.data["payment_id"], amount="27.11")
    deliver(store, refund, schedule)
    after = bill(store, schedule, n["98465"])
    assert after["balance_due"] == "127.11" and after["paid"] == "0.00"
    assert [(x["kind"], x["change"]) for x in after["postings"]] == [
        ("payment", "-27.11"),
        ("refund", "27.11"),
    ]
    details = next(
        x
        for x in summary(store, schedule, n["28624"])["payments"]
        if x["bill_number"] == n["98465"]
    )
    assert [(d["kind"], d["amount"]) for d in details["details"]] == [
        ("payment", "27.11"),
        ("refund", "-27.11"),
    ]
    assert details["sum_of_payments"] == "0.00"


def test_the_cart_of_two_bills_pays_both_and_the_account_is_clear(store, schedule, n):
    deliver(
        store,
        payment_succeeded([(n["98820"], n["28624"], "134.46"), (n["98465"], n["28624"], "127.11")]),
        schedule,
    )
    assert summary(store, schedule, n["28624"])["amount_due_now"] == "0.00"
    assert summary(store, schedule, n["28624"])["payment_due_date"] is None
    assert listing(store, schedule, n["28624"])["bills"] == []
    paid = {x["bill_number"]: x for x in summary(store, schedule, n["28624"])["payments"]}
    assert (
        paid[n["98465"]]["sum_of_payments"] == "127.11"
        and paid[n["98465"]]["last_posted"] is not None
    )


def test_a_chargeback_reopens_every_bill_the_payment_paid(store, schedule, n):
    paid = payment_succeeded(
        [(n["98820"], n["28624"], "134.46"), (n["98465"], n["28624"], "127.11")]
    )
    deliver(store, paid, schedule)
    deliver(store, payment_reversed("PaymentChargedBack", paid.data["payment_id"]), schedule)
    assert listing(store, schedule, n["28624"])["total_due"] == "261.57"
    assert bill(store, schedule, n["98820"])["postings"][-1]["kind"] == "chargeback"
    # A later return of the same payment finds nothing left to take back, and changes nothing.
    deliver(store, payment_reversed("PaymentReturned", paid.data["payment_id"]), schedule)
    assert listing(store, schedule, n["28624"])["total_due"] == "261.57"


def test_more_than_the_chosen_bill_goes_to_the_oldest_other_bill_then_to_credit(store, schedule, n):
    deliver(store, payment_succeeded([(n["98465"], n["28624"], "300.00")]), schedule)
    assert bill(store, schedule, n["98465"])["balance_due"] == "-38.43"  # a credit
    assert bill(store, schedule, n["98820"])["balance_due"] == "0.00"
    assert bill(store, schedule, n["98465"])["status"] == "credit"
    assert (
        summary(store, schedule, n["28624"])["amount_due_now"]
        == "-38.43"
        == listing(store, schedule, n["28624"])["total_due"]
    )


def test_a_reversal_that_arrives_before_its_payment_is_applied_when_it_comes(store, schedule, n):
    paid = payment_succeeded([(n["98465"], n["28624"], "127.11")])
    deliver(
        store,
        payment_reversed("PaymentReturned", paid.data["payment_id"], amount="127.11"),
        schedule,
    )
    assert bill(store, schedule, n["98465"])["balance_due"] == "127.11"
    deliver(store, paid, schedule)
    after = bill(store, schedule, n["98465"])
    assert after["balance_due"] == "127.11"
    assert [x["kind"] for x in after["postings"]] == ["payment", "return"]


def test_money_for_a_bill_billing_does_not_know_is_held_unapplied(store, schedule):
    paid = payment_succeeded([(unique(), None, "15.00")])
    deliver(store, paid, schedule)
    with store.read() as conn:
        rows = conn.execute(
            sa.select(p.ledger.c.kind, p.ledger.c.amount).where(
                p.ledger.c.payment_id == paid.data["payment_id"]
            )
        ).all()
    assert [(k, Decimal(a)) for k, a in rows] == [("unapplied", Decimal("15.00"))]


def test_the_account_total_is_the_sum_of_its_open_bills_whatever_is_shown(
    store, schedule, tmp_path
):
    account = unique()
    header = (
        "bill_number,row_type,account_number,customer_id,customer_name,"
        "statement_date,due_date,description,amount\n"
    )
    rows = []
    for i in range(40):
        number = unique()
        year = 2006 + i // 2
        rows.append(f"{number},bill,{account},1,ANA,{year}-03-01,{year}-04-01,,")
        rows.append(f"{number},charge,,,,,,FEE,{10 + i}.{i:02d}")
    path = tmp_path / "bills.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    import_bills(store, path, schedule=schedule, today=TODAY)
    narrow = dataclasses.replace(
        schedule, portal=dataclasses.replace(schedule.portal, bill_years="2025-2027")
    )
    outstanding = listing(store, schedule, account, sched=narrow)
    everything = listing(store, schedule, account, "all", sched=narrow)
    expected = sum(Decimal(f"{10 + i}.{i:02d}") for i in range(40))
    assert (
        len(outstanding["bills"]) == len(everything["bills"]) == 40
    )  # open bills are never hidden
    assert outstanding["bill_years"] == {"from": 2025, "to": 2027}
    assert Decimal(outstanding["total_due"]) == expected
    assert sum(Decimal(b["balance_due"]) for b in outstanding["bills"]) == expected
    assert summary(store, schedule, account)["amount_due_now"] == outstanding["total_due"]
    assert summary(store, schedule, account)["open_bills"] == 40


def test_paid_bills_outside_the_bill_years_are_left_out_of_the_history(store, schedule, n):
    narrow = dataclasses.replace(
        schedule, portal=dataclasses.replace(schedule.portal, bill_years="2018-2020")
    )
    shown = [
        b["bill_number"] for b in listing(store, schedule, n["28624"], "all", sched=narrow)["bills"]
    ]
    assert shown == [
        n["98820"],
        n["98465"],
    ]  # paid 35932 (bill year 2017) is outside; open ones stay
    wide = [b["bill_number"] for b in listing(store, schedule, n["28624"], "all")["bills"]]
    assert wide == [n["35932"], n["98820"], n["98465"]]


def checkout(kind, checkout_id, bills=(), **extra):
    data = {"checkout_id": checkout_id, "payment_id": f"pay-{checkout_id}", "owner": "user:ana"}
    data.update(extra)
    if kind == "CheckoutOpened":
        data["bills"] = [{"bill_number": b, "amount": "127.11"} for b in bills]
        data.setdefault("expires_at", (now() + dt.timedelta(minutes=10)).isoformat())
    else:
        data["bills"] = [{"bill_number": b} for b in bills]
    return envelope("payments", kind, data, stream_id=f"checkout-{checkout_id}")


def flag(store, schedule, number):
    return bill(store, schedule, number)["pending_web_payment"]


def test_the_pending_web_payment_flag_follows_the_checkout(store, schedule, n):
    co = unique("co")
    deliver(store, checkout("CheckoutOpened", co, [n["98465"]]), schedule)
    assert flag(store, schedule, n["98465"]) and not flag(store, schedule, n["98820"])
    assert listing(store, schedule, n["28624"])["pending_web_payment_exists"]
    deliver(store, envelope("payments", "PaymentPending", {"payment_id": f"pay-{co}"}), schedule)
    assert flag(store, schedule, n["98465"])  # the processor is settling it
    deliver(
        store, payment_succeeded([(n["98465"], n["28624"], "127.11")], checkout_id=co), schedule
    )
    assert not flag(store, schedule, n["98465"])


def test_a_payment_the_processor_is_settling_stays_pending_after_the_checkout_expires(
    store, schedule, n
):
    co = unique("co")
    soon = (now() + dt.timedelta(seconds=1)).isoformat()
    # PaymentPending first: delivery order is not guaranteed.
    deliver(store, envelope("payments", "PaymentPending", {"payment_id": f"pay-{co}"}), schedule)
    deliver(store, checkout("CheckoutOpened", co, [n["98820"]], expires_at=soon), schedule)
    with store.read() as conn:
        later = queries.bill_brief(conn, n["98820"], now=now() + dt.timedelta(minutes=30))
    assert later["pending_web_payment"]
    deliver(store, checkout("CheckoutClosed", co, [n["98820"]], outcome="failed"), schedule)
    assert not flag(store, schedule, n["98820"])


def test_a_refund_gives_back_the_fee_too_but_only_the_bills_part_reopens(store, schedule, n):
    paid = payment_succeeded(
        [(n["98820"], n["28624"], "134.46"), (n["98465"], n["28624"], "127.11")]
    )
    deliver(store, paid, schedule)
    # payments: 30.00 back in all, of which 2.95 is the fee; 27.05 off the last bill.
    refund = payment_reversed(
        "PaymentRefunded",
        paid.data["payment_id"],
        amount="30.00",
        allocations=[(n["98465"], "27.05")],
        convenience_fee="2.95",
    )
    deliver(store, refund, schedule)
    assert bill(store, schedule, n["98465"])["balance_due"] == "27.05"
    assert bill(store, schedule, n["98820"])["balance_due"] == "0.00"
    # Without allocations, the fee part is taken off the amount.
    second = payment_reversed(
        "PaymentReturned", paid.data["payment_id"], amount="12.95", convenience_fee="2.95"
    )
    deliver(store, second, schedule)
    assert bill(store, schedule, n["98465"])["balance_due"] == "37.05"


def test_an_expired_or_closed_first_checkout_flags_nothing(store, schedule, n):
    expired = unique("co")
    past = (now() - dt.timedelta(minutes=1)).isoformat()
    deliver(store, checkout("CheckoutOpened", expired, [n["98465"]], expires_at=past), schedule)
    assert not flag(store, schedule, n["98465"])
    late = unique("co")
    deliver(store, checkout("CheckoutClosed", late, [n["98820"]], outcome="canceled"), schedule)
    deliver(
        store, checkout("CheckoutOpened", late, [n["98820"]]), schedule
    )  # arrives after its close
    assert not flag(store, schedule, n["98820"])


def test_no_penalty_while_a_web_payment_is_in_flight(store, schedule, tmp_path):
    number, account = unique(), unique()
    path = tmp_path / "b.csv"
    path.write_text(
        "bill_number,row_type,account_number,customer_id,customer_name,statement_date,due_date,"
        "late_penalty,description,amount\n"
        f"{number},bill,{account},1,ANA,2026-08-01,2026-09-01,yes,,\n"
        f"{number},charge,,,,,,,FEE,50.00\n"
    )
    import_bills(store, path, schedule=schedule, today=TODAY)
    co = unique("co")
    deliver(store, checkout("CheckoutOpened", co, [number]), schedule)
    assess_penalties(store, schedule, as_of=TODAY)
    assert bill(store, schedule, number)["balance_due"] == "50.00"
    deliver(store, checkout("CheckoutClosed", co, [number], outcome="failed"), schedule)
    assert assess_penalties(store, schedule, as_of=TODAY) >= 1
    assert bill(store, schedule, number)["balance_due"] == "55.00"
    assess_penalties(store, schedule, as_of=TODAY)
    assert bill(store, schedule, number)["balance_due"] == "55.00"  # once only


def test_general_billing_invoices_search_totals_and_payment(store, schedule, n):
    with store.read() as conn:
        assert queries.find_invoice(conn, f"0{n['12345']}", f" {n['63295']} ") == {
            "bill_number": n["63295"],
            "customer_id": n["12345"],
        }
        for customer, number in (
            (n["12345"], n["98465"]),
            ("99999", n["63295"]),
            (n["12345"], "nope"),
            ("", ""),
        ):
            with pytest.raises(InvalidInput) as err:
                queries.find_invoice(conn, customer, number)
            assert err.value.code == "no_account_match" and err.value.detail == queries.NO_MATCH
    deliver(store, payment_succeeded([(n["63295"], None, "100.00")]), schedule)
    with store.read() as conn:
        invoices = queries.customer_invoices(conn, schedule, n["12345"], as_of=TODAY, now=now())
    assert sorted(
        (b["bill_number"], b["bill_type"], b["pay_by"], b["total_unpaid"], b["balance_due"])
        for b in invoices["bills"]
    ) == sorted(
        [
            (n["63295"], "CLAIMS", "2021-07-02", "150.00", "150.00"),
            (n["63296"], "CLAIMS", "2021-07-02", "250.00", "250.00"),
        ]
    )
    assert (invoices["total_unpaid"], invoices["total_balance_due"], invoices["as_of"]) == (
        "400.00",
        "400.00",
        "2026-11-22",
    )
