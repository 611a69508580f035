"""The billing service's nameko entrypoints: load with marshmallow, call a handler, dump."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from services.billing import handlers, queries
from services.billing import schemas as s
from services.billing.dependencies import BillingSchedule, PenaltyJob
from services.billing.domain import events  # noqa: F401 - registers the event schemas
from services.billing.pdf import pdf_filename, render_bill_pdf
from services.billing.projections import PROJECTIONS
from shared.messaging import consumes
from shared.nameko import KernelService, Store
from shared.rpc import rpc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BillingService(KernelService):
    name = "billing"
    store = Store(PROJECTIONS)
    schedule = BillingSchedule()
    penalties = PenaltyJob()

    # -- queries --------------------------------------------------------------------------

    @rpc
    def account_bills(self, account_number: str, status: str = "outstanding") -> dict[str, Any]:
        """Manage Bills for a utility account: its bills and the total due."""
        args = s.AccountBillsRequest().load({"account_number": account_number, "status": status})
        with self.store.read() as conn:
            return queries.account_bills(
                conn, self.schedule, as_of=self.schedule.today(), now=_now(), **args
            )

    @rpc
    def account_summary(self, account_number: str) -> dict[str, Any]:
        """Amount due now, due date, payments and services of an account."""
        args = s.AccountRequest().load({"account_number": account_number})
        with self.store.read() as conn:
            return queries.account_summary(
                conn, self.schedule, as_of=self.schedule.today(), now=_now(), **args
            )

    @rpc
    def consumption(self, account_number: str, service_code: str | None = None) -> dict[str, Any]:
        """Billed consumption history per service, ready for a chart."""
        args = s.ConsumptionRequest().load(
            {"account_number": account_number, "service_code": service_code}
        )
        with self.store.read() as conn:
            return queries.consumption(conn, self.schedule, **args)

    @rpc
    def bill(self, bill_number: str) -> dict[str, Any]:
        """Bill details: every field of the bill as issued, with its balance now."""
        args = s.BillRequest().load({"bill_number": bill_number})
        with self.store.read() as conn:
            return queries.bill_detail(conn, self.schedule, now=_now(), **args)

    @rpc
    def bill_pdf(self, bill_number: str) -> dict[str, str]:
        """A PDF copy of the bill."""
        args = s.BillRequest().load({"bill_number": bill_number})
        with self.store.read() as conn:
            bill = queries.bill_detail(conn, self.schedule, now=_now(), **args)
        content = render_bill_pdf(bill)
        return {
            "filename": pdf_filename(bill),
            "content_type": "application/pdf",
            "content_base64": base64.b64encode(content).decode("ascii"),
        }

    @rpc
    def bill_brief(self, bill_number: str) -> dict[str, Any]:
        """The few facts of a bill that payments and the gateway need."""
        args = s.BillRequest().load({"bill_number": bill_number})
        with self.store.read() as conn:
            return queries.bill_brief(conn, now=_now(), **args)

    @rpc
    def customer_invoices(self, customer_id: str, status: str = "outstanding") -> dict[str, Any]:
        """General billing's Manage Bills for a customer, with totals as of today."""
        args = s.CustomerInvoicesRequest().load({"customer_id": customer_id, "status": status})
        with self.store.read() as conn:
            return queries.customer_invoices(
                conn, self.schedule, as_of=self.schedule.today(), now=_now(), **args
            )

    @rpc
    def find_invoice(self, customer_id: str, bill_number: str) -> dict[str, str]:
        """General billing's search by customer ID and bill number."""
        args = s.FindInvoiceRequest().load({"customer_id": customer_id, "bill_number": bill_number})
        with self.store.read() as conn:
            return queries.find_invoice(conn, **args)

    # -- what billing learns from accounts (the projection does the work) ------------------

    @consumes("accounts", "AccountImported")
    def on_account_imported(self, event, uow) -> None:
        """Learn a new account's cycle, services and meters."""

    @consumes("accounts", "AccountChanged")
    def on_account_changed(self, event, uow) -> None:
        """Keep an account's cycle, services and meters current."""

    @consumes("accounts", "CustomerImported")
    def on_customer_imported(self, event, uow) -> None:
        """Learn a customer's name, printed on bills."""

    @consumes("accounts", "CustomerChanged")
    def on_customer_changed(self, event, uow) -> None:
        """Keep a customer's name current."""

    # -- what billing learns from payments --------------------------------------------------

    @consumes("payments", "CheckoutOpened")
    def on_checkout_opened(self, event, uow) -> None:
        """Flag the checkout's bills: a web payment is pending."""

    @consumes("payments", "CheckoutClosed")
    def on_checkout_closed(self, event, uow) -> None:
        """Clear the pending flag (unless the processor is still settling)."""

    @consumes("payments", "PaymentPending")
    def on_payment_pending(self, event, uow) -> None:
        """Keep the pending flag while the processor settles the payment."""

    @consumes("payments", "PaymentFailed")
    def on_payment_failed(self, event, uow) -> None:
        """Clear the pending flag of a failed payment's bills."""

    @consumes("payments", "PaymentSucceeded")
    def on_payment_succeeded(self, event, uow) -> None:
        """Apply the payment to its bills and publish their new balances."""
        handlers.apply_payment(uow, event, self.schedule)

    @consumes("payments", "PaymentRefunded")
    def on_payment_refunded(self, event, uow) -> None:
        """Reopen what a refund took back."""
        handlers.reverse_payment(uow, event, "refund", self.schedule)

    @consumes("payments", "PaymentReturned")
    def on_payment_returned(self, event, uow) -> None:
        """Reopen what a returned payment (e.g. NSF) took back."""
        handlers.reverse_payment(uow, event, "return", self.schedule)

    @consumes("payments", "PaymentChargedBack")
    def on_payment_charged_back(self, event, uow) -> None:
        """Reopen what a chargeback took back."""
        handlers.reverse_payment(uow, event, "chargeback", self.schedule)
