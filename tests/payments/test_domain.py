"""Unit tests of the payments domain: money rules, the cart, holds and the payment state machine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.payments.domain.autopay import Autopay
from services.payments.domain.cart import Cart
from services.payments.domain.errors import (
    AmountAboveBalanceError,
    AmountBelowMinimumError,
    AmountFormatError,
    BillInCheckoutError,
    CheckoutClosedError,
    NothingDueError,
    PaymentProcessingError,
    RefundNotAllowedError,
    RefundTooLargeError,
)
from services.payments.domain.guards import BillHold
from services.payments.domain.money import AmountRules, FeePolicy, parse_amount
from services.payments.domain.payment import (
    APPLIED,
    DUPLICATE,
    IGNORED,
    NEEDS_POLL,
    Payment,
    ProcessorUpdate,
    confirmation_number,
)

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("127.11", "127.11"),
        ("$1,027.5", "1027.50"),
        (" 3 ", "3.00"),
        (Decimal("2.10"), "2.10"),
        (5, "5.00"),
    ],
)
def test_amounts_are_read_exactly(typed, value):
    assert parse_amount("amount", typed) == Decimal(value)


@pytest.mark.parametrize("typed", ["12.345", "-1", "1e3", "abc", "", 1.5, None, True])
def test_unreadable_amounts_name_the_field(typed):
    with pytest.raises(AmountFormatError) as excinfo:
        parse_amount("items.1.amount", typed)
    assert "items.1.amount" in excinfo.value.errors


def test_fee_policies_flat_percent_and_both():
    assert FeePolicy.parse("").fee(Decimal("100")) == Decimal("0.00")
    assert FeePolicy.parse("1.50").fee(Decimal("100")) == Decimal("1.50")
    assert FeePolicy.parse("2.5%").fee(Decimal("261.57")) == Decimal("6.54")  # 6.53925 rounds up
    assert FeePolicy.parse("0.30+2.9%").fee(Decimal("10.00")) == Decimal("0.59")
    assert FeePolicy.parse("2.5%").describe() == "2.5%"
    assert FeePolicy.parse("1.50").fee(Decimal("0")) == Decimal("0.00")
    with pytest.raises(ValueError):
        FeePolicy.parse("two dollars")


def test_amount_rules():
    rules = AmountRules(min_payment=Decimal("5.00"))
    assert rules.check("amount", Decimal("5.00"), Decimal("127.11")) == Decimal("5.00")
    with pytest.raises(AmountBelowMinimumError):
        rules.check("amount", Decimal("4.99"), Decimal("127.11"))
    with pytest.raises(AmountAboveBalanceError):
        rules.check("amount", Decimal("127.12"), Decimal("127.11"))
    # A balance below the minimum may be paid off, but not partly.
    assert rules.check("amount", Decimal("3.00"), Decimal("3.00")) == Decimal("3.00")
    with pytest.raises(AmountBelowMinimumError):
        rules.check("amount", Decimal("2.00"), Decimal("3.00"))
    with pytest.raises(NothingDueError):
        rules.check("amount", Decimal("5.00"), Decimal("0.00"))
    prepay = AmountRules(
        min_payment=Decimal("5.00"), allow_prepayment=True, max_payment=Decimal("500")
    )
    assert prepay.check("amount", Decimal("200.00"), Decimal("0.00")) == Decimal("200.00")
    with pytest.raises(AmountAboveBalanceError):
        prepay.check("amount", Decimal("500.01"), Decimal("10.00"))


def test_a_bill_is_in_a_cart_once():
    cart = Cart("user:ana")
    cart.add("98465", None)
    cart.add("98465", None)
    cart.add("98465", Decimal("20.00"))
    assert cart.items == {"98465": Decimal("20.00")}
    assert [e.type for e in cart.pending_events()] == ["CartItemAdded", "CartItemAmountChanged"]
    cart.paid("98465")
    cart.paid("98465")
    assert cart.items == {} and len(cart.pending_events()) == 3


def test_a_held_bill_refuses_another_payment_and_tells_only_its_owner_which():
    hold = BillHold("98465")
    hold.take("pay_1", "user:ana", "web", at(600), "chk_1")
    hold.take("pay_1", "user:ana", "web", at(600), "chk_1")  # the same payment: fine
    with pytest.raises(BillInCheckoutError) as own:
        hold.take("pay_2", "user:ana", "web", at(700), "chk_2")
    assert own.value.extra["checkout_id"] == "chk_1"
    with pytest.raises(BillInCheckoutError) as other:
        hold.take("pay_3", "user:bob", "web", at(700), "chk_3")
    assert "checkout_id" not in other.value.extra
    hold.release("pay_2")  # not the holder: nothing happens
    assert hold.held
    hold.release("pay_1")
    hold.take("pay_3", "user:bob", "web", at(700), "chk_3")
    assert hold.payment_id == "pay_3"


def new_payment(expires: float | None = 600, fee: str = "1.00") -> Payment:
    payment = Payment("pay_1")
    payment.create(
        checkout_id="chk_1",
        kind="web",
        owner="user:ana",
        user_id="ana",
        email="ana@example.test",
        billing=None,
        allocations=[
            {"bill_number": "1", "account_number": "A", "amount": Decimal("60.00")},
            {"bill_number": "2", "account_number": "A", "amount": Decimal("40.00")},
        ],
        convenience_fee=Decimal(fee),
        expires_at=at(expires) if expires is not None else None,
        return_url="https://portal.example.test/return",
        processor="sandbox",
    )
    return payment


def update(event_id: str, status: str | None = None, when: float = 10, **kw) -> ProcessorUpdate:
    kind = kw.pop("kind", "payment")
    return ProcessorUpdate(
        event_id=event_id,
        kind=kind,
        occurred_at=at(when),
        status=status,
        processor_payment_id="py_1",
        succeeded_at=at(when) if status == "succeeded" else None,
        **kw,
    )


def types(payment: Payment) -> list[str]:
    return [e.type for e in payment.pending_events()]


def test_the_happy_path_records_every_transition():
    payment = new_payment()
    assert payment.apply_update(update("e1", "processing"), at(10)) == APPLIED
    assert payment.apply_update(update("e2", "succeeded", 11), at(11)) == APPLIED
    assert payment.status == "succeeded" and payment.checkout_status == "paid"
    assert payment.confirmation_number == confirmation_number("pay_1", at(11))
    assert types(payment) == [
        "PaymentCreated",
        "CheckoutOpened",
        "PaymentPending",
        "PaymentSucceeded",
        "CheckoutClosed",
    ]


def test_duplicates_and_stale_reports_change_nothing():
    payment = new_payment()
    payment.apply_update(update("e1", "processing"), at(10))
    payment.apply_update(update("e2", "succeeded", 11), at(11))
    before = len(payment.pending_events())
    assert payment.apply_update(update("e2", "succeeded", 11), at(12)) == DUPLICATE
    assert payment.apply_update(update("e1", "processing"), at(12)) == DUPLICATE
    assert (
        payment.apply_update(update("e3", "failed", 12, failure_code="card_declined"), at(12))
        == IGNORED
    )
    assert payment.apply_update(update("poll:py_1:succeeded", "succeeded", 11), at(13)) == IGNORED
    assert len(payment.pending_events()) == before


def test_out_of_order_success_then_processing():
    payment = new_payment()
    assert payment.apply_update(update("e2", "succeeded", 11), at(11)) == APPLIED
    assert payment.apply_update(update("e1", "processing", 10), at(12)) == IGNORED
    assert types(payment).count("PaymentSucceeded") == 1 and "PaymentPending" not in types(payment)


def test_a_refund_heard_before_its_payment_asks_for_a_poll():
    payment = new_payment()
    refund = update("r1", kind="refund", transaction_id="re_1", amount=Decimal("10.00"))
    assert payment.apply_update(refund, at(12)) == NEEDS_POLL
    payment.apply_update(update("poll", "succeeded", 11), at(12))
    assert payment.apply_update(refund, at(12)) == APPLIED
    assert payment.apply_update(refund, at(13)) == DUPLICATE
    assert payment.status == "partially_refunded" and payment.refundable == Decimal("91.00")


def test_failure_reasons_are_sentences_for_residents():
    payment = new_payment()
    payment.apply_update(update("e1", "failed", failure_code="insufficient_funds"), at(10))
    assert payment.status == "failed"
    assert payment.failure_reason == "Your card was declined for insufficient funds."
    assert types(payment)[-1] == "CheckoutClosed"


def test_a_success_after_expiry_is_refunded_not_posted():
    payment = new_payment(expires=600)
    assert payment.expire(at(599)) is False
    assert payment.expire(at(601)) is True
    payment.apply_update(update("e2", "succeeded", 650), at(650))
    assert "PaymentSucceeded" not in types(payment)
    assert types(payment)[-2:] == ["LatePaymentReceived", "RefundRequested"]
    ((request_id, request),) = payment.refund_due()
    assert request["late"] and request["amount"] == Decimal("101.00")
    refund = update(
        "r1", kind="refund", transaction_id="re_9", amount=Decimal("101.00"), reference=request_id
    )
    assert payment.apply_update(refund, at(651)) == APPLIED
    assert types(payment)[-1] == "LatePaymentRefunded" and payment.refund_due() == []
    assert payment.apply_update(update("e3", "succeeded", 652), at(652)) == IGNORED


def test_a_success_reported_late_but_made_in_time_counts():
    payment = new_payment(expires=600)
    # The webhook arrives after the deadline, but the processor took the money before it.
    late_report = ProcessorUpdate(
        "e2", "payment", at(605), "succeeded", "py_1", succeeded_at=at(590)
    )
    assert payment.apply_update(late_report, at(605)) == APPLIED
    assert payment.status == "succeeded"


def test_a_success_finished_after_the_deadline_expires_the_session_first():
    payment = new_payment(expires=600)
    payment.apply_update(update("e1", "processing", 500), at(500))
    payment.apply_update(update("e2", "succeeded", 620), at(620))
    assert payment.status == "expired"
    assert types(payment)[-4:] == [
        "PaymentExpired",
        "CheckoutClosed",
        "LatePaymentReceived",
        "RefundRequested",
    ]


def test_cancel_rules():
    payment = new_payment()
    payment.apply_update(update("e1", "processing"), at(10))
    with pytest.raises(PaymentProcessingError):
        payment.cancel("changed my mind", "user:ana")
    other = new_payment()
    other.cancel("changed my mind", "user:ana")
    assert other.status == "canceled"
    with pytest.raises(CheckoutClosedError):
        other.cancel("again", "user:ana")


def test_refunds_come_off_the_bills_last_first_then_the_fee():
    payment = new_payment(fee="2.00")
    payment.apply_update(update("e2", "succeeded", 11), at(11))
    with pytest.raises(RefundTooLargeError):
        payment.request_refund("r1", Decimal("102.01"), "too much", "staff:jo")
    payment.request_refund("r1", Decimal("50.00"), "part", "staff:jo")
    assert payment.refundable == Decimal("52.00")
    payment.apply_update(
        update("x", kind="refund", transaction_id="re_1", amount=Decimal("50.00"), reference="r1"),
        at(12),
    )
    first = payment.pending_events()[-1].data
    assert first["allocations"] == [
        {"bill_number": "1", "account_number": "A", "customer_id": None, "amount": "10.00"},
        {"bill_number": "2", "account_number": "A", "customer_id": None, "amount": "40.00"},
    ]
    assert first["convenience_fee"] == "0.00" and not first["full"]
    payment.request_refund("r2", None, "the rest", "staff:jo")
    payment.apply_update(
        update("y", kind="refund", transaction_id="re_2", amount=Decimal("52.00"), reference="r2"),
        at(13),
    )
    rest = payment.pending_events()[-1].data
    assert rest["allocations"] == [
        {"bill_number": "1", "account_number": "A", "customer_id": None, "amount": "50.00"}
    ]
    assert rest["convenience_fee"] == "2.00" and rest["full"]
    assert payment.status == "refunded"
    with pytest.raises(RefundTooLargeError):
        payment.request_refund("r3", None, "nothing left", "staff:jo")


def test_returns_and_chargebacks_reverse_the_payment():
    payment = new_payment()
    with pytest.raises(RefundNotAllowedError):
        payment.request_refund("r1", None, "not paid yet", "staff:jo")
    payment.apply_update(update("e2", "succeeded", 11), at(11))
    payment.apply_update(
        update("z", kind="chargeback", transaction_id="dp_1", amount=Decimal("101.00")), at(20)
    )
    assert payment.status == "charged_back" and payment.refundable == Decimal("0.00")
    assert types(payment)[-1] == "PaymentChargedBack"


def test_autopay_schedules_n_days_before_due_and_never_in_the_past():
    plan = Autopay("28624")
    card = {"token": "tok_1", "brand": "visa", "last4": "4242", "expires": "2030-12"}
    plan.enroll("ana", "ana@example.test", card, 5)
    today = dt.date(2026, 11, 22)
    assert plan.schedule("1", dt.date(2026, 12, 20), Decimal("50"), today)
    assert plan.schedule("2", dt.date(2026, 11, 24), Decimal("50"), today)
    assert not plan.schedule("2", dt.date(2026, 11, 24), Decimal("50"), today)  # once per bill
    assert plan.charges["1"]["charge_date"] == dt.date(2026, 12, 15)
    assert plan.charges["2"]["charge_date"] == today
    assert plan.due_charges(today) == ["2"]
    plan.cancel("ana")
    assert plan.due_charges(dt.date(2026, 12, 31)) == []
    assert not plan.schedule("3", dt.date(2027, 1, 20), Decimal("50"), today)


def test_an_expiring_card_is_warned_once_per_card():
    plan = Autopay("28624")
    plan.enroll(
        "ana",
        "ana@example.test",
        {"token": "tok_1", "brand": "visa", "last4": "4242", "expires": "2026-12"},
        5,
    )
    assert not plan.warn_if_card_expiring(dt.date(2026, 11, 30), 30)  # 31 days left
    assert plan.warn_if_card_expiring(dt.date(2026, 12, 1), 30)
    assert not plan.warn_if_card_expiring(dt.date(2026, 12, 2), 30)
    plan.enroll(
        "ana",
        "ana@example.test",
        {"token": "tok_2", "brand": "visa", "last4": "1111", "expires": "2026-12"},
        5,
    )
    assert types_of(plan)[-1] == "AutopayChanged"
    assert plan.warn_if_card_expiring(dt.date(2026, 12, 2), 30)  # a new card, a new warning


def types_of(agg) -> list[str]:
    return [e.type for e in agg.pending_events()]
