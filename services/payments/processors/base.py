"""The one interface through which payments reaches a card processor.

The domain never sees a processor: handlers call a `Processor`, which speaks
the processor's protocol and answers in the neutral shapes below
(`ProcessorUpdate` is the domain's). The sandbox is one adapter; a real one
(Stripe, say) is another class implementing the same methods, chosen by the
PROCESSOR setting, with no change to the domain.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from services.payments.domain.payment import ProcessorUpdate


@dataclasses.dataclass(frozen=True)
class HostedSession:
    session_id: str
    url: str


@dataclasses.dataclass(frozen=True)
class PaymentSnapshot:
    """What the processor knows about one payment right now (from polling)."""

    reference: str | None  # our payment id
    status: str  # open | processing | succeeded | failed | canceled | expired
    processor_payment_id: str | None
    session_id: str | None = None
    amount: Decimal | None = None
    succeeded_at: dt.datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    settled: bool = False
    reversals: tuple[ProcessorUpdate, ...] = ()

    def updates(self, now: dt.datetime) -> list[ProcessorUpdate]:
        """The snapshot as facts for the state machine: the status, then each reversal."""
        key = self.processor_payment_id or self.session_id or "?"
        out = [
            ProcessorUpdate(
                event_id=f"poll:{key}:{self.status}",
                kind="payment",
                occurred_at=self.succeeded_at or now,
                status=self.status,
                processor_payment_id=self.processor_payment_id,
                amount=self.amount,
                succeeded_at=self.succeeded_at,
                failure_code=self.failure_code,
                failure_message=self.failure_message,
                card_brand=self.card_brand,
                card_last4=self.card_last4,
            )
        ]
        return out + list(self.reversals)


@dataclasses.dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # succeeded | pending | failed
    amount: Decimal
    reference: str | None
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class CardInfo:
    token: str
    brand: str
    last4: str
    expires: str  # YYYY-MM


@dataclasses.dataclass(frozen=True)
class Transaction:
    """One line of the processor's daily report."""

    transaction_id: str
    kind: str  # charge | refund | void | return | chargeback
    processor_payment_id: str
    reference: str | None
    amount: Decimal
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook: which payment it is about and what it says."""

    event_id: str
    type: str
    reference: str | None  # our payment id
    session_id: str | None
    processor_payment_id: str | None
    update: ProcessorUpdate | None  # None: nothing for the payment state machine
    refund_failed: dict[str, Any] | None = None


class Processor(abc.ABC):
    """A card processor as payments needs it. Every method may raise
    `ProcessorUnavailableError` (it did not answer) or a domain error for a refusal."""

    name: str = ""

    @abc.abstractmethod
    def create_session(
        self,
        *,
        reference: str,
        amount: Decimal,
        description: str,
        customer: dict[str, Any],
        return_url: str,
        expires_at: dt.datetime,
        idempotency_key: str,
    ) -> HostedSession:
        """A hosted payment page for one payment; the same key gives the same session."""

    @abc.abstractmethod
    def session_status(self, session_id: str) -> PaymentSnapshot:
        """Where a hosted session's payment stands."""

    @abc.abstractmethod
    def payment_status(self, processor_payment_id: str) -> PaymentSnapshot:
        """Where a payment stands (autopay charges have no session)."""

    @abc.abstractmethod
    def cancel_session(self, session_id: str) -> PaymentSnapshot:
        """Close the hosted page so it takes no card; answers with the session's state."""

    @abc.abstractmethod
    def refund(
        self,
        *,
        processor_payment_id: str,
        amount: Decimal,
        reason: str,
        reference: str,
        idempotency_key: str,
    ) -> RefundResult:
        """Give money back; the same key never refunds twice."""

    @abc.abstractmethod
    def void(
        self, *, processor_payment_id: str, reference: str, idempotency_key: str
    ) -> RefundResult:
        """Cancel a payment the processor has not settled yet (`AlreadySettledError` if it has)."""

    @abc.abstractmethod
    def charge_card(
        self,
        *,
        card_token: str,
        amount: Decimal,
        reference: str,
        description: str,
        idempotency_key: str,
    ) -> PaymentSnapshot:
        """Charge a saved card (automatic payments); the same key never charges twice."""

    @abc.abstractmethod
    def create_card_setup(
        self, *, reference: str, return_url: str, customer: dict[str, Any]
    ) -> HostedSession:
        """A hosted page where a resident saves a card; the return URL gets its token."""

    @abc.abstractmethod
    def card(self, token: str) -> CardInfo:
        """The saved card behind a token (`CardTokenError` if there is none)."""

    @abc.abstractmethod
    def transactions(self, day: dt.date) -> list[Transaction]:
        """The processor's record of the money that moved on one (UTC) day."""

    @abc.abstractmethod
    def parse_webhook(self, body: str, signature_header: str | None, now: int) -> WebhookEvent:
        """Verify a webhook's signature (`BadSignatureError`) and read it."""
