"""Background jobs, each run by one replica at a time (under a `shared.lease.Lease`).

* The janitor closes checkouts whose 10 minutes are up (after asking the processor, so
  a payment that did complete in time is not thrown away), settles payments whose result
  we never heard by polling the processor, and sends refunds the processor has not
  confirmed yet (including the automatic refund of a success that came too late).
* The autopay scheduler charges the cards of enrolled accounts on their charge dates and
  warns residents before a card on file expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import sqlalchemy as sa

from services.payments import handlers
from services.payments.domain.autopay import Autopay, card_expiry_date
from services.payments.domain.errors import PaymentProcessingError, ProcessorUnavailableError
from services.payments.domain.guards import BillHold
from services.payments.domain.money import money
from services.payments.domain.payment import Payment, ProcessorUpdate
from services.payments.processors.base import Processor
from services.payments.projections import autopay, autopay_charges, payments, refund_requests
from services.payments.settings import Settings
from services.payments.views import aware, bill_view, payment_row
from shared.errors import MuniportalError
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


class Backoff:
    """Remembers when each thing was last tried, so a dead processor is not hammered."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._tries: dict[str, int] = {}

    def due(self, key: str) -> bool:
        return time.monotonic() >= self._next.get(key, 0.0)

    def wait(self, key: str, seconds: float) -> None:
        self._next[key] = time.monotonic() + seconds

    def failed(self, key: str) -> None:
        tries = self._tries.get(key, 0) + 1
        self._tries[key] = tries
        self.wait(key, min(2.0**tries, 300.0))

    def ok(self, key: str) -> None:
        self._tries.pop(key, None)


# -- the janitor --------------------------------------------------------------------------


def run_janitor(store: Any, processor: Processor, settings: Settings, memory: Backoff) -> dict:
    now = handlers.utcnow()
    done = {"expired": 0, "polled": 0, "refunds": 0}
    with store.read() as conn:
        open_rows = list(
            conn.execute(
                sa.select(payments).where(payments.c.status.in_(["created", "pending"]))
            ).mappings()
        )
        refunds = list(
            conn.execute(
                sa.select(refund_requests.c.payment_id, refund_requests.c.request_id).where(
                    refund_requests.c.status == "requested"
                )
            )
        )
    for row in open_rows:
        key = row["payment_id"]
        expires_at = aware(row["expires_at"])
        try:
            if expires_at is not None and expires_at <= now:
                done["expired"] += _expire(store, processor, row, now)
            elif memory.due(key) and aware(row["created_at"]) <= now - dt.timedelta(
                seconds=settings.processor_poll_seconds
            ):
                memory.wait(key, settings.processor_poll_seconds)
                snapshot = handlers.poll(processor, row)
                if snapshot is not None:
                    handlers.apply_snapshot(store, key, snapshot)
                    done["polled"] += 1
                elif row["kind"] == "autopay":
                    _charge(store, processor, row["payment_id"])
        except ProcessorUnavailableError:
            memory.failed(key)
        except MuniportalError:
            log.exception("janitor could not settle payment %s", key)
            memory.failed(key)
    for payment_id, request_id in refunds:
        if not memory.due(request_id):
            continue
        try:
            outcome = handlers.execute_refund(store, processor, payment_id, request_id)
        except MuniportalError:
            outcome = "failed"
        if outcome is None:
            memory.failed(request_id)
        else:
            memory.ok(request_id)
            done["refunds"] += 1
    return done


def _expire(store: Any, processor: Processor, row: Any, now: dt.datetime) -> int:
    """Time is up: take the processor's word for what happened, then close the session."""
    payment_id = row["payment_id"]
    if row["session_id"]:
        try:
            snapshot = handlers.poll(processor, row)
            if snapshot is not None and snapshot.status in ("succeeded", "failed"):
                handlers.apply_snapshot(store, payment_id, snapshot)
            if snapshot is not None and snapshot.status == "open":
                processor.cancel_session(row["session_id"])
        except (ProcessorUnavailableError, PaymentProcessingError):
            pass  # the deadline is hard: we close our side regardless

    def work(uow: UnitOfWork) -> int:
        payment = uow.get(Payment, payment_id)
        was_open = payment.is_open
        expired = payment.expire(now)
        handlers.after_transition(uow, payment, was_open)
        return int(expired)

    return store.run(work)


# -- automatic payments -------------------------------------------------------------------


def run_autopay(store: Any, processor: Processor, settings: Settings) -> dict:
    today = handlers.utcnow().date()
    done = {"charged": 0, "warned": 0}
    with store.read() as conn:
        due = list(
            conn.execute(
                sa.select(autopay_charges.c.account_number, autopay_charges.c.bill_number).where(
                    autopay_charges.c.status == "scheduled",
                    autopay_charges.c.charge_date <= today,
                )
            )
        )
        plans = list(
            conn.execute(
                sa.select(autopay.c.account_number, autopay.c.card_expires).where(
                    autopay.c.status == "active", autopay.c.card_warning_sent.is_(False)
                )
            )
        )
    for account_number, bill_number in due:
        try:
            payment_id = store.run(
                lambda uow, a=account_number, b=bill_number: _start_charge(
                    uow, settings, a, b, today
                )
            )
            if payment_id is not None:
                _charge(store, processor, payment_id)
                done["charged"] += 1
        except ProcessorUnavailableError:
            log.warning("autopay charge for bill %s waits for the processor", bill_number)
        except MuniportalError:
            log.exception("autopay charge for bill %s failed", bill_number)
    for account_number, expires in plans:
        if card_expiry_date(expires) - today > dt.timedelta(days=settings.card_expiry_warning_days):
            continue
        warned = store.run(
            lambda uow, a=account_number: uow.load(Autopay, a).warn_if_card_expiring(
                today, settings.card_expiry_warning_days
            )
        )
        done["warned"] += int(warned)
    return done


def _start_charge(
    uow: UnitOfWork, settings: Settings, account_number: str, bill_number: str, today: dt.date
) -> str | None:
    """Record the intent to charge (a payment holding the bill) before calling the processor."""
    plan = uow.get(Autopay, account_number)
    if not plan.active or bill_number not in plan.due_charges(today) or plan.card is None:
        return None
    bill = bill_view(uow.conn, bill_number)
    if bill is None or bill.payable_balance <= 0:
        plan.skip(bill_number, "The bill had no balance left to pay.")
        return None
    hold = uow.load(BillHold, bill_number)
    if hold.held:
        return None  # a web payment for this bill is open: try again on the next run
    payment_id = handlers.new_id("pay")
    amount = money(bill.payable_balance)
    owner = f"user:{plan.user_id}"
    hold.take(payment_id, owner, "autopay", None)
    payment = uow.add(Payment(payment_id))
    payment.create(
        checkout_id=None,
        kind="autopay",
        owner=owner,
        user_id=plan.user_id,
        email=plan.email,
        billing=None,
        allocations=[
            {"bill_number": bill_number, "account_number": account_number, "amount": amount}
        ],
        convenience_fee=money(0),
        expires_at=None,
        return_url=None,
        processor="autopay",
    )
    plan.start_charge(bill_number, payment_id, amount)
    return payment_id


def _charge(store: Any, processor: Processor, payment_id: str) -> None:
    """Charge the card on file; the payment id is the idempotency key, so a retry is safe."""
    with store.read() as conn:
        row = payment_row(conn, payment_id)
    if row is None or row["status"] != "created":
        return
    account_number = None

    def plan_of(uow: UnitOfWork) -> dict | None:
        nonlocal account_number
        payment = uow.get(Payment, payment_id)
        account_number = payment.allocations[0]["account_number"]
        plan = uow.get(Autopay, account_number)
        if not plan.active and payment.status == "created":
            # Cancelled between planning the charge and making it: it takes effect at once.
            payment.cancel("Automatic payments were cancelled.", "system")
            handlers.after_transition(uow, payment, was_open=True)
            return None
        return dict(plan.card) if plan.card else None

    card = store.run(plan_of)
    if card is None:
        return
    try:
        snapshot = processor.charge_card(
            card_token=card["token"],
            amount=money(row["amount_total"]),
            reference=payment_id,
            description=f"Automatic payment, account {account_number}",
            idempotency_key=payment_id,
        )
    except ProcessorUnavailableError:
        raise
    except MuniportalError as exc:
        now = handlers.utcnow()
        refusal = ProcessorUpdate(
            event_id=f"refused:{payment_id}",
            kind="payment",
            occurred_at=now,
            status="failed",
            failure_code="card_declined",
            failure_message=exc.detail,
        )
        store.run(lambda uow: handlers.apply_updates(uow, payment_id, [refusal], now))
        return
    if snapshot is not None:
        handlers.apply_snapshot(store, payment_id, snapshot)
