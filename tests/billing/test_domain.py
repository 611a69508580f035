"""Bills and payments as plain domain objects: balances, allocations, reversals, penalties."""

import datetime as dt
from decimal import Decimal

import pytest

from services.billing.domain.bill import Bill, BillExists
from services.billing.domain.payment import OpenBill, Payment, Requested, allocate
from services.billing.domain.values import normalize_number
from shared.errors import InvalidInput

D = Decimal
TODAY = dt.date(2026, 11, 22)
STATEMENT = {
    "issuer": "CITY",
    "issuer_address": ["P.O. BOX 520"],
    "contact": "CALL",
    "website": "",
    "unit_note": "",
}


def issued(number="1001", total="100.00", due="2026-10-01", late_penalty=True) -> Bill:
    bill = Bill(number)
    bill.issue(
        {
            "bill_number": number,
            "kind": "utility",
            "bill_type": "UTILITY",
            "description": "Utilities",
            "account_number": "5",
            "customer_id": "9",
            "customer_name": "ANA",
            "statement_date": "2026-09-01",
            "due_date": due,
            "bill_year": 2027,
            "lines": [{"description": "FEE", "amount": total}],
            "previous_balance": "0.00",
            "payments": "0.00",
            "penalty": "0.00",
            "total": total,
            "balance_due": total,
            "late_penalty": late_penalty,
            "statement": STATEMENT,
            "issued_via": "run",
        }
    )
    return bill


def test_a_bill_is_issued_once():
    bill = issued()
    with pytest.raises(BillExists):
        bill.issue({})


def test_partial_payment_then_reversal_reopens_exactly_that_amount():
    bill = issued(total="127.11")
    bill.apply_payment(D("27.11"), payment_id="p1", posted_on=TODAY)
    assert bill.balance == D("100.00")
    bill.reopen(D("27.11"), payment_id="p1", kind="return", posted_on=TODAY)
    assert bill.balance == D("127.11")
    changes = [e.data for e in bill.pending_events() if e.type == "BillBalanceChanged"]
    assert [(c["change"], c["balance_due"], c["reason"]) for c in changes] == [
        ("-27.11", "100.00", "payment"),
        ("27.11", "127.11", "return"),
    ]


def test_a_payment_must_be_more_than_zero():
    with pytest.raises(InvalidInput) as err:
        issued().apply_payment(D("0"), payment_id="p", posted_on=TODAY)
    assert "amount" in err.value.errors


def test_penalty_only_after_due_date_plus_grace_and_only_once():
    bill = issued(total="200.00", due="2026-10-01")
    policy = {"percent": D("10"), "grace_days": 10, "minimum": D("0")}
    assert bill.assess_penalty(dt.date(2026, 10, 11), **policy) == 0  # due + grace: not yet
    assert bill.assess_penalty(dt.date(2026, 10, 12), **policy) == D("20.00")
    assert bill.balance == D("220.00")
    assert bill.assess_penalty(dt.date(2026, 12, 1), **policy) == 0  # never twice
    assert [e.type for e in bill.pending_events()].count("PenaltyAssessed") == 1


def test_penalty_is_on_what_is_still_unpaid_and_rounds_half_up():
    bill = issued(total="100.05")
    bill.apply_payment(D("50.00"), payment_id="p", posted_on=TODAY)
    assert bill.assess_penalty(TODAY, percent=D("10"), grace_days=0, minimum=D("0")) == D("5.01")


def test_no_penalty_on_a_paid_bill_or_a_bill_that_takes_none():
    paid = issued(total="10.00")
    paid.apply_payment(D("10.00"), payment_id="p", posted_on=TODAY)
    assert paid.assess_penalty(TODAY, percent=D("10"), grace_days=0, minimum=D("0")) == 0
    exempt = issued(late_penalty=False)
    assert exempt.assess_penalty(TODAY, percent=D("10"), grace_days=0, minimum=D("0")) == 0


def test_penalty_minimum_applies():
    bill = issued(total="3.00")
    assert bill.assess_penalty(TODAY, percent=D("10"), grace_days=0, minimum=D("1.00")) == D("1.00")


def test_replaying_a_bill_rebuilds_the_same_balance():
    bill = issued(total="90.00")
    bill.apply_payment(D("40.00"), payment_id="p", posted_on=TODAY)
    from shared.events import Envelope

    envelopes = [
        Envelope(
            str(i),
            e.type,
            1,
            bill.stream_id,
            i,
            i,
            dt.datetime.now(dt.UTC),
            None,
            None,
            None,
            "billing",
            e.data,
        )
        for i, e in enumerate(bill.pending_events(), start=1)
    ]
    again = Bill.from_events(bill.id, envelopes)
    assert again.balance == D("50.00") and again.version == 2


def open_bill(number, balance, due, account="5"):
    return OpenBill(number, account, "9", D(balance), dt.date.fromisoformat(due))


def test_a_payment_goes_to_the_chosen_bills_first():
    a = open_bill("1", "50.00", "2026-01-01")
    b = open_bill("2", "70.00", "2026-02-01")
    placed, unapplied = allocate([Requested("2", "5", D("70.00"))], {"1": a, "2": b}, {"5": [a, b]})
    assert placed == {"2": D("70.00")} and unapplied == 0


def test_an_excess_goes_to_other_open_bills_oldest_first_then_stays_as_a_credit():
    chosen = open_bill("3", "20.00", "2026-03-01")
    old = open_bill("1", "50.00", "2026-01-01")
    newer = open_bill("2", "70.00", "2026-02-01")
    bills = {"1": old, "2": newer, "3": chosen}
    placed, unapplied = allocate(
        [Requested("3", "5", D("200.00"))], bills, {"5": [newer, old, chosen]}
    )
    assert placed == {"3": D("80.00"), "1": D("50.00"), "2": D("70.00")}
    assert sum(placed.values()) == D("200.00") and unapplied == 0


def test_money_for_an_unknown_bill_is_held_unapplied():
    placed, unapplied = allocate([Requested("404", None, D("12.00"))], {}, {})
    assert placed == {} and unapplied == D("12.00")


def test_an_account_payment_without_bill_goes_oldest_first():
    old = open_bill("1", "50.00", "2026-01-01")
    newer = open_bill("2", "70.00", "2026-02-01")
    placed, _ = allocate(
        [Requested(None, "5", D("60.00"))], {"1": old, "2": newer}, {"5": [newer, old]}
    )
    assert placed == {"1": D("50.00"), "2": D("10.00")}


def payment_with(allocations: dict[str, str], unapplied="0.00") -> Payment:
    payment = Payment("pay1")
    bills = {n: open_bill(n, a, "2026-01-01") for n, a in allocations.items()}
    payment.record_applied(
        placed={n: D(a) for n, a in allocations.items()},
        bills=bills,
        unapplied=D(unapplied),
        checkout_id="co1",
        confirmation_number="C1",
        paid_at=dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC),
        posted_on=TODAY,
    )
    return payment


def test_a_partial_refund_takes_back_from_the_last_bill_paid_first():
    payment = payment_with({"1": "50.00", "2": "70.00"})
    split, from_unapplied = payment.reversal_split(D("80.00"), [])
    assert split == {"2": D("70.00"), "1": D("10.00")} and from_unapplied == 0


def test_a_reversal_naming_bills_takes_back_from_those_bills():
    payment = payment_with({"1": "50.00", "2": "70.00"})
    split, _ = payment.reversal_split(None, [{"bill_number": "1", "amount": "20.00"}])
    assert split == {"1": D("20.00")}


def test_a_reversal_never_takes_back_more_than_is_left():
    payment = payment_with({"1": "50.00"}, unapplied="5.00")
    split, from_unapplied = payment.reversal_split(D("500.00"), [])
    assert split == {"1": D("50.00")} and from_unapplied == D("5.00")
    payment.record_reversal(
        reversal_id="r1",
        kind="chargeback",
        split=split,
        from_unapplied=from_unapplied,
        reason=None,
        posted_on=TODAY,
    )
    assert payment.remaining == 0
    again, rest = payment.reversal_split(None, [])
    assert again == {} and rest == 0


def test_a_reversal_before_its_payment_waits_for_it():
    payment = Payment("pay2")
    payment.defer_reversal(
        reversal_id="r1", kind="refund", amount=D("5.00"), allocations=[], reason="x"
    )
    payment.defer_reversal(
        reversal_id="r1", kind="refund", amount=D("5.00"), allocations=[], reason="x"
    )
    assert len(payment.deferred) == 1 and not payment.applied


@pytest.mark.parametrize(
    "raw, normal", [(" 0028624 ", "28624"), ("98465", "98465"), ("000", "0"), ("AB-1", "AB-1")]
)
def test_numbers_are_normalized(raw, normal):
    assert normalize_number(raw) == normal
