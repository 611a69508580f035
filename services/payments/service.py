"""The payments service's nameko entrypoints: load with marshmallow, call a handler, dump."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.payments import handlers, jobs, settlement
from services.payments.processors import make_processor
from services.payments.projections import PROJECTIONS
from services.payments.schemas import (
    CardSetupSchema,
    CartItemSchema,
    EnrollSchema,
    RefundSchema,
    StartCheckoutSchema,
)
from services.payments.settings import Settings
from services.payments.views import (
    autopay_view,
    bill_status,
    cart_view,
    payment_history,
    payment_row,
    payment_view,
    staff_view,
)
from shared.errors import InvalidInput
from shared.lease import Lease
from shared.messaging import consumes
from shared.nameko import KernelService, SideEffect, Store
from shared.rpc import RpcProxy, rpc

log = logging.getLogger(__name__)


class ProcessorClient(SideEffect):
    """The card processor (an adapter chosen by PROCESSOR); a stand-in during replays."""

    def setup(self) -> None:
        self.processor = make_processor(self.container.config)

    def live(self, worker_ctx: Any) -> Any:
        return self.processor


class PaymentSettings(DependencyProvider):
    def setup(self) -> None:
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> Settings:
        return self.settings


class Jobs(DependencyProvider):
    """Leases for the singleton jobs, held by this replica across runs, and their memory."""

    def setup(self) -> None:
        self.leases: dict[str, Lease] = {}
        self.memory = jobs.Backoff()

    def hold(self, name: str, events: Any) -> bool:
        lease = self.leases.get(name)
        if lease is None:
            lease = self.leases[name] = Lease(events, name)
        try:
            return lease.try_acquire()
        except Exception:
            log.exception("could not take the %s lease", name)
            return False

    def holds(self, name: str) -> bool:
        lease = self.leases.get(name)
        return bool(lease and lease.held)

    def stop(self) -> None:
        for lease in self.leases.values():
            lease.release()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> Jobs:
        return self


class ConfigTimer(Timer):
    """nameko's timer with its interval read from the config (tests run it faster)."""

    def __init__(self, config_key: str, default: float, **kwargs: Any) -> None:
        self.config_key = config_key
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.config_key) or self.interval)


config_timer = ConfigTimer.decorator


def _now() -> dt.datetime:
    return handlers.utcnow()


class PaymentsService(KernelService):
    name = "payments"
    store = Store(PROJECTIONS, poll_interval=0.05)
    processor = ProcessorClient()
    settings = PaymentSettings()
    identity = RpcProxy("identity")
    jobs = Jobs()

    # -- cart ---------------------------------------------------------------------------

    @rpc
    def get_cart(self, owner: str) -> dict:
        """The owner's cart: items, count, subtotal, convenience fee and total."""
        handlers.check_owner(owner)
        with self.store.read() as conn:
            return cart_view(conn, owner, self.settings)

    @rpc
    def add_to_cart(self, owner: str, bill_number: str, amount: Any = None) -> dict:
        """Add a bill (once) or change its amount; no amount means the balance due."""
        data = CartItemSchema().load({"owner": owner, "bill_number": bill_number, "amount": amount})
        handlers.check_owner(data["owner"])
        handlers.add_to_cart(self.store, self.settings, **data)
        return self.get_cart(data["owner"])

    @rpc
    def remove_from_cart(self, owner: str, bill_number: str) -> dict:
        """Take a bill out of the cart."""
        data = CartItemSchema().load({"owner": owner, "bill_number": bill_number})
        handlers.check_owner(data["owner"])
        handlers.remove_from_cart(self.store, owner=data["owner"], bill_number=data["bill_number"])
        return self.get_cart(data["owner"])

    @rpc
    def bill_status(self, bill_numbers: list[str]) -> list[dict]:
        """Each bill's payable balance and pending-web-payment flag, as payments sees them."""
        if not isinstance(bill_numbers, list) or len(bill_numbers) > 500:
            raise InvalidInput(
                errors={"bill_numbers": "must be a list of at most 500 bill numbers"}
            )
        with self.store.read() as conn:
            return bill_status(conn, [str(b) for b in bill_numbers])

    # -- checkout -----------------------------------------------------------------------

    @rpc
    def start_checkout(
        self, owner: str, idempotency_key: str, billing: dict, return_url: str
    ) -> dict:
        """Open (or, for the same Idempotency-Key, return) the payment session for the cart."""
        data = StartCheckoutSchema().load(
            {
                "owner": owner,
                "idempotency_key": idempotency_key,
                "billing": billing,
                "return_url": return_url,
            }
        )
        handlers.check_owner(data["owner"])
        payment_id = handlers.start_checkout(self.store, self.processor, self.settings, **data)
        with self.store.read() as conn:
            return payment_view(conn, payment_row(conn, payment_id), _now())

    @rpc
    def get_checkout(self, owner: str, checkout_id: str) -> dict:
        """A checkout's status, time left, items and, once paid, its receipt."""
        handlers.check_owner(owner)
        row = handlers.checkout_for(self.store, owner, str(checkout_id))
        with self.store.read() as conn:
            return payment_view(conn, row, _now())

    @rpc
    def cancel_checkout(self, owner: str, checkout_id: str) -> dict:
        """Give up an open checkout: the hosted page closes, the bills are free again."""
        handlers.check_owner(owner)
        handlers.cancel_checkout(
            self.store, self.processor, owner=owner, checkout_id=str(checkout_id)
        )
        return self.get_checkout(owner, checkout_id)

    @rpc
    def handle_webhook(self, body: str, signature_header: str | None) -> dict:
        """Apply a processor webhook (raw body, signature header) exactly once."""
        if not isinstance(body, str):
            raise InvalidInput(errors={"body": "must be the raw request body as text"})
        return handlers.handle_webhook(
            self.store, self.processor, body=body, signature_header=signature_header
        )

    @rpc
    def payment_history(self, user_id: str) -> list[dict]:
        """A user's payments, newest first, with confirmation numbers and items."""
        with self.store.read() as conn:
            return payment_history(conn, str(user_id))

    # -- staff --------------------------------------------------------------------------

    @rpc
    def payment(self, ref: str) -> dict:
        """Everything about one payment, by payment id, checkout id or confirmation number."""
        row = handlers.resolve_payment(self.store, str(ref))
        with self.store.read() as conn:
            return staff_view(conn, row, _now())

    @rpc
    def refund(self, ref: str, amount: Any = None, reason: str = "") -> dict:
        """Refund a succeeded payment, in full or in part (staff)."""
        data = RefundSchema().load({"ref": ref, "amount": amount, "reason": reason})
        payment_id = handlers.refund_payment(
            self.store, self.processor, by=self.store.actor, **data
        )
        return self.payment(payment_id)

    @rpc
    def void(self, ref: str, reason: str = "") -> dict:
        """Stop a payment: close it if open, void it if the processor has not settled it (staff)."""
        payment_id = handlers.void_payment(
            self.store, self.processor, ref=str(ref), reason=reason, by=self.store.actor or "staff"
        )
        return self.payment(payment_id)

    @rpc
    def settlement(self, date: str) -> dict:
        """Reconcile one day of the processor's transactions with ours; every difference."""
        try:
            day = dt.date.fromisoformat(str(date))
        except ValueError:
            raise InvalidInput(errors={"date": "must be a date, YYYY-MM-DD"}) from None
        return settlement.reconcile(self.store, self.processor, day)

    # -- automatic payments -------------------------------------------------------------

    @rpc
    def autopay(self, account_number: str) -> dict:
        """An account's automatic payment: card, scheduled charges, last failure."""
        with self.store.read() as conn:
            return autopay_view(
                conn, str(account_number), _now().date(), self.settings.card_expiry_warning_days
            )

    @rpc
    def start_card_setup(self, owner: str, account_number: str, return_url: str) -> dict:
        """A hosted page to save a card for automatic payments; the return URL gets its token."""
        data = CardSetupSchema().load(
            {"owner": owner, "account_number": account_number, "return_url": return_url}
        )
        handlers.check_owner(data["owner"])
        session = self.processor.create_card_setup(
            reference=f"autopay:{data['account_number']}",
            return_url=data["return_url"],
            customer={"owner": data["owner"]},
        )
        return {"setup_id": session.session_id, "setup_url": session.url}

    @rpc
    def enroll_autopay(
        self,
        user_id: str,
        account_number: str,
        card_token: str,
        email: str | None = None,
        days_before: int | None = None,
    ) -> dict:
        """Enrol an account (or change its card) with a card token; takes effect at once."""
        data = EnrollSchema().load(
            {
                "user_id": user_id,
                "account_number": account_number,
                "card_token": card_token,
                "email": email,
                "days_before": days_before,
            }
        )
        if not data["email"]:
            data["email"] = self.identity.get_profile(data["user_id"])["email"]
        handlers.enroll_autopay(self.store, self.processor, self.settings, **data)
        return self.autopay(data["account_number"])

    @rpc
    def cancel_autopay(self, user_id: str, account_number: str) -> dict:
        """Stop automatic payments at once; scheduled charges are cancelled."""
        handlers.cancel_autopay(
            self.store, user_id=str(user_id), account_number=str(account_number)
        )
        return self.autopay(account_number)

    # -- billing's events ---------------------------------------------------------------

    @consumes("billing", "BillIssued")
    def on_bill_issued(self, event, uow) -> None:
        """Track the new bill (projection); schedule its automatic payment if enrolled."""
        handlers.schedule_autopay_for_bill(uow, event.data, _now().date())

    @consumes("billing", "BillBalanceChanged")
    def on_bill_balance_changed(self, event, uow) -> None:
        """Track the bill's balance (the bills projection does it)."""

    # -- singleton jobs -----------------------------------------------------------------

    @config_timer("JANITOR_INTERVAL", 1.0)
    def janitor(self) -> None:
        """Expire overdue checkouts, poll unknown results, send pending refunds (one replica)."""
        if self.jobs.hold("janitor", self.store.events):
            jobs.run_janitor(self.store, self.processor, self.settings, self.jobs.memory)

    @config_timer("AUTOPAY_INTERVAL", 60.0)
    def autopay_scheduler(self) -> None:
        """Charge automatic payments that are due; warn of expiring cards (one replica)."""
        if self.jobs.hold("autopay-scheduler", self.store.events):
            jobs.run_autopay(self.store, self.processor, self.settings)
