"""The adapter for the processor sandbox (services/payments/sandbox), over its HTTP API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from services.payments import signatures
from services.payments.domain.errors import (
    AlreadySettledError,
    CardTokenError,
    MalformedWebhookError,
    PaymentProcessingError,
    ProcessorUnavailableError,
)
from services.payments.domain.payment import ProcessorUpdate
from services.payments.processors.base import (
    CardInfo,
    HostedSession,
    PaymentSnapshot,
    Processor,
    RefundResult,
    Transaction,
    WebhookEvent,
)
from shared.errors import Conflict

REVERSAL_KINDS = {
    "refund": "refund",
    "void": "refund",
    "return": "return",
    "chargeback": "chargeback",
}


class ProcessorRefusedError(Conflict):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"The card processor refused: {message}", code=f"processor_{code}")


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None
    except InvalidOperation:
        return None


class SandboxProcessor(Processor):
    name = "sandbox"

    def __init__(
        self,
        url: str,
        api_key: str,
        webhook_secrets: Sequence[str],
        *,
        tolerance: int = signatures.TOLERANCE_SECONDS,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.webhook_secrets = list(webhook_secrets)
        self.tolerance = tolerance
        self.timeout = timeout
        self.http = requests.Session()

    # -- transport ----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if key:
            headers["Idempotency-Key"] = key
        try:
            response = self.http.request(
                method,
                self.url + path,
                json=body,
                headers=headers,
                timeout=(3.0, self.timeout),
            )
        except requests.RequestException as exc:
            raise ProcessorUnavailableError(type(exc).__name__) from exc
        if response.status_code >= 500 or response.status_code in (401, 429):
            raise ProcessorUnavailableError(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise ProcessorUnavailableError("the answer was not JSON") from None
        if response.status_code >= 400:
            error = data.get("error") or {}
            code, message = error.get("code", "refused"), error.get("message", "refused")
            if code == "already_settled":
                raise AlreadySettledError(path.split("/")[3])
            if code == "payment_processing":
                raise PaymentProcessingError(path.split("/")[-2])
            if code == "no_such_card":
                raise CardTokenError("is not a card saved with the processor")
            raise ProcessorRefusedError(code, message)
        return data

    # -- reading the sandbox's objects --------------------------------------------------

    def _reversal(self, r: dict[str, Any], payment_reference: str | None) -> ProcessorUpdate:
        return ProcessorUpdate(
            event_id=f"poll:{r['id']}",
            kind=REVERSAL_KINDS.get(r.get("kind", "refund"), "refund"),
            occurred_at=_time(r.get("created_at")) or dt.datetime.now(dt.UTC),
            amount=_money(r.get("amount")),
            transaction_id=r["id"],
            reference=r.get("reference"),
            reason=r.get("reason"),
        )

    def _snapshot(
        self, p: dict[str, Any], session: dict[str, Any] | None = None
    ) -> PaymentSnapshot:
        card = p.get("card") or {}
        return PaymentSnapshot(
            reference=p.get("reference"),
            status=p["status"],
            processor_payment_id=p.get("id"),
            session_id=p.get("session_id") or (session or {}).get("id"),
            amount=_money(p.get("amount")),
            succeeded_at=_time(p.get("succeeded_at")),
            failure_code=p.get("failure_code"),
            failure_message=p.get("failure_message"),
            card_brand=card.get("brand"),
            card_last4=card.get("last4"),
            settled=bool(p.get("settled")),
            reversals=tuple(self._reversal(r, p.get("reference")) for r in p.get("reversals", [])),
        )

    def _session_snapshot(self, s: dict[str, Any]) -> PaymentSnapshot:
        if s.get("payment"):
            return self._snapshot(s["payment"], s)
        return PaymentSnapshot(
            reference=s.get("reference"),
            status=s["status"],  # open | expired | canceled
            processor_payment_id=None,
            session_id=s["id"],
            amount=_money(s.get("amount")),
        )

    # -- the interface ------------------------------------------------------------------

    def create_session(
        self, *, reference, amount, description, customer, return_url, expires_at, idempotency_key
    ):
        data = self._call(
            "POST",
            "/v1/checkout/sessions",
            {
                "reference": reference,
                "amount": f"{amount:.2f}",
                "description": description,
                "customer": customer,
                "return_url": return_url,
                "expires_at": expires_at.isoformat(),
            },
            key=idempotency_key,
        )
        return HostedSession(session_id=data["id"], url=data["url"])

    def session_status(self, session_id: str) -> PaymentSnapshot:
        return self._session_snapshot(self._call("GET", f"/v1/checkout/sessions/{session_id}"))

    def payment_status(self, processor_payment_id: str) -> PaymentSnapshot:
        return self._snapshot(self._call("GET", f"/v1/payments/{processor_payment_id}"))

    def cancel_session(self, session_id: str) -> PaymentSnapshot:
        try:
            data = self._call("POST", f"/v1/checkout/sessions/{session_id}/cancel")
        except ProcessorRefusedError:
            return self.session_status(session_id)  # already paid: say so
        return self._session_snapshot(data)

    def _refund_result(self, data: dict[str, Any]) -> RefundResult:
        return RefundResult(
            refund_id=data["id"],
            status=data.get("status", "succeeded"),
            amount=_money(data["amount"]) or Decimal("0"),
            reference=data.get("reference"),
            created_at=_time(data.get("created_at")) or dt.datetime.now(dt.UTC),
        )

    def refund(self, *, processor_payment_id, amount, reason, reference, idempotency_key):
        data = self._call(
            "POST",
            f"/v1/payments/{processor_payment_id}/refunds",
            {"amount": f"{amount:.2f}", "reason": reason, "reference": reference},
            key=idempotency_key,
        )
        return self._refund_result(data)

    def void(self, *, processor_payment_id, reference, idempotency_key):
        data = self._call(
            "POST",
            f"/v1/payments/{processor_payment_id}/void",
            {"reference": reference},
            key=idempotency_key,
        )
        return self._refund_result(data)

    def charge_card(self, *, card_token, amount, reference, description, idempotency_key):
        data = self._call(
            "POST",
            "/v1/charges",
            {
                "card_token": card_token,
                "amount": f"{amount:.2f}",
                "reference": reference,
                "description": description,
            },
            key=idempotency_key,
        )
        return self._snapshot(data)

    def create_card_setup(self, *, reference, return_url, customer):
        data = self._call(
            "POST",
            "/v1/setup/sessions",
            {"reference": reference, "return_url": return_url, "customer": customer},
        )
        return HostedSession(session_id=data["id"], url=data["url"])

    def card(self, token: str) -> CardInfo:
        if not token or not token.replace("_", "").isalnum() or len(token) > 100:
            raise CardTokenError("is not a card token")
        try:
            data = self._call("GET", f"/v1/cards/{token}")
        except ProcessorRefusedError:
            raise CardTokenError("is not a card saved with the processor") from None
        return CardInfo(
            token=data["token"],
            brand=data["brand"],
            last4=data["last4"],
            expires=f"{int(data['exp_year']):04d}-{int(data['exp_month']):02d}",
        )

    def transactions(self, day: dt.date) -> list[Transaction]:
        data = self._call("GET", f"/v1/transactions?date={day.isoformat()}")
        return [
            Transaction(
                transaction_id=t["id"],
                kind=t["type"],
                processor_payment_id=t["payment_id"],
                reference=t.get("reference"),
                amount=_money(t["amount"]) or Decimal("0"),
                created_at=_time(t["created_at"]) or dt.datetime.now(dt.UTC),
            )
            for t in data.get("transactions", [])
        ]

    def parse_webhook(self, body: str, signature_header: str | None, now: int) -> WebhookEvent:
        signatures.verify(body, signature_header, self.webhook_secrets, now, self.tolerance)
        try:
            event = json.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
            obj = event["data"]["object"]
            created = dt.datetime.fromtimestamp(int(event["created"]), dt.UTC)
        except (ValueError, KeyError, TypeError):
            raise MalformedWebhookError("the body is not a processor event") from None
        if event_type.startswith(("payment.", "session.")) and obj.get("object") == "payment":
            status = {
                "payment.processing": "processing",
                "payment.succeeded": "succeeded",
                "payment.failed": "failed",
                "session.expired": "expired",
                "session.canceled": "canceled",
            }.get(event_type)
            if status is not None:
                card = obj.get("card") or {}
                return WebhookEvent(
                    event_id=event_id,
                    type=event_type,
                    reference=obj.get("reference"),
                    session_id=obj.get("session_id"),
                    processor_payment_id=obj.get("id"),
                    update=ProcessorUpdate(
                        event_id=event_id,
                        kind="payment",
                        occurred_at=created,
                        status=status,
                        processor_payment_id=obj.get("id"),
                        amount=_money(obj.get("amount")),
                        succeeded_at=_time(obj.get("succeeded_at")),
                        failure_code=obj.get("failure_code"),
                        failure_message=obj.get("failure_message"),
                        card_brand=card.get("brand"),
                        card_last4=card.get("last4"),
                    ),
                )
        if event_type in ("refund.succeeded", "payment.returned", "payment.charged_back"):
            return WebhookEvent(
                event_id=event_id,
                type=event_type,
                reference=obj.get("payment_reference"),
                session_id=None,
                processor_payment_id=obj.get("payment_id"),
                update=ProcessorUpdate(
                    event_id=event_id,
                    kind=REVERSAL_KINDS.get(obj.get("kind", "refund"), "refund"),
                    occurred_at=_time(obj.get("created_at")) or created,
                    amount=_money(obj.get("amount")),
                    processor_payment_id=obj.get("payment_id"),
                    transaction_id=obj.get("id"),
                    reference=obj.get("reference"),
                    reason=obj.get("reason"),
                ),
            )
        if event_type == "refund.failed":
            return WebhookEvent(
                event_id=event_id,
                type=event_type,
                reference=obj.get("payment_reference"),
                session_id=None,
                processor_payment_id=obj.get("payment_id"),
                update=None,
                refund_failed={"request_id": obj.get("reference"), "reason": obj.get("reason")},
            )
        # setup.succeeded and anything newer: acknowledged, nothing to apply.
        return WebhookEvent(event_id, event_type, obj.get("reference"), None, None, None)
