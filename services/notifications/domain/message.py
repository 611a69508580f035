"""One outgoing email and its delivery history: queued, sent, deferred, failed, given up.

queued --attempt ok--> sent
queued|deferred --4xx or no server--> deferred (backoff) ... --last attempt--> failed
queued|deferred --5xx--> failed (permanent)
failed --staff retry--> queued            queued|deferred|failed --drop--> given_up
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from typing import Any

from services.notifications.domain import events  # noqa: F401 - registers the schemas
from services.notifications.domain.kinds import KINDS
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, InvalidInput

MESSAGE_NAMESPACE = uuid.UUID("5b0c6f0e-8d55-4b8e-9a57-0f3c1c7d2a11")
SENDABLE = ("queued", "deferred")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base, base*2, base*4 ... capped; `max_attempts` in all."""

    max_attempts: int = 8
    base_seconds: float = 30.0
    max_seconds: float = 1800.0
    jitter: float = 0.1  # +/- this fraction, so a recovered server is not hit all at once

    def delay(self, attempt: int, spread: float = 0.5) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based); spread in [0, 1]."""
        raw = min(self.base_seconds * 2 ** max(attempt - 1, 0), self.max_seconds)
        return max(0.0, raw * (1 + self.jitter * (2 * spread - 1)))


def message_id_for(*parts: str) -> str:
    """A stable id: the same trigger (or idempotency key) always names the same message."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, "\x1f".join(parts)))


def idempotency_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class MessageNotSendable(Conflict):
    """The message is not in a state that allows this action."""


class Message(Aggregate):
    stream_type = "message"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status = "new"
        self.kind = ""
        self.to = ""
        self.secure = False
        self.attempts = 0  # attempts in the current round (a staff retry starts a new one)
        self.total_attempts = 0
        self.context: dict[str, Any] = {}
        self.city = ""
        self.subject = ""

    # -- commands -----------------------------------------------------------------------

    def queue(
        self,
        *,
        kind: str,
        to: str,
        subject: str,
        city: str,
        context: dict[str, Any],
        trigger: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        if self.exists:
            raise MessageNotSendable(f"message {self.id} is already queued", code="already_queued")
        spec = KINDS.get(kind)
        if spec is None:
            raise InvalidInput(errors={"kind": f"unknown kind {kind!r}"}, code="unknown_kind")
        self.record(
            "EmailQueued",
            {
                "message_id": self.id,
                "kind": kind,
                "to": to,
                "subject": subject,
                "city": city,
                "context": context,
                "secure": spec.secure,
                "trigger": trigger,
                "idempotency_hash": idempotency_hash(idempotency_key) if idempotency_key else None,
            },
        )

    def sent(self, *, at: dt.datetime, reply: str = "") -> None:
        """Record an accepted delivery; a fact, recorded whatever happened meanwhile."""
        if self.status == "sent":
            return
        self.record(
            "EmailSent",
            {
                "message_id": self.id,
                "attempt": self.total_attempts + 1,
                "sent_at": at.isoformat(),
                "smtp_reply": reply[:200],
            },
        )

    def attempt_failed(
        self, *, error: str, permanent: bool, now: dt.datetime, policy: RetryPolicy, spread: float
    ) -> None:
        """A refused or impossible attempt: defer with backoff, or park after the last one."""
        self._require_sendable()
        attempt = self.attempts + 1
        if permanent or attempt >= policy.max_attempts:
            self.record(
                "EmailFailed",
                {
                    "message_id": self.id,
                    "attempt": self.total_attempts + 1,
                    "error": error[:500],
                    "permanent": permanent,
                },
            )
            return
        next_at = now + dt.timedelta(seconds=policy.delay(attempt, spread))
        self.record(
            "EmailDeferred",
            {
                "message_id": self.id,
                "attempt": self.total_attempts + 1,
                "error": error[:500],
                "next_attempt_at": next_at.isoformat(),
            },
        )

    def retry(self, *, by: str) -> None:
        if self.status not in ("failed", "deferred"):
            raise MessageNotSendable(
                f"message {self.id} is {self.status}; only failed or deferred messages "
                "can be retried",
                code="not_retryable",
            )
        self.record("EmailRetried", {"message_id": self.id, "by": by})

    def give_up(self, *, reason: str, by: str) -> None:
        if self.status in ("sent", "given_up"):
            raise MessageNotSendable(
                f"message {self.id} is already {self.status.replace('_', ' ')}",
                code="not_droppable",
            )
        self.record("EmailGivenUp", {"message_id": self.id, "reason": reason[:500], "by": by})

    def _require_sendable(self) -> None:
        if self.status not in SENDABLE:
            raise MessageNotSendable(
                f"message {self.id} is {self.status}, not waiting to be sent", code="not_sendable"
            )

    @property
    def sendable(self) -> bool:
        return self.status in SENDABLE

    # -- state --------------------------------------------------------------------------

    @applies("EmailQueued")
    def _queued(self, data: dict[str, Any]) -> None:
        self.status = "queued"
        self.kind = data["kind"]
        self.to = data["to"]
        self.secure = bool(data["secure"])
        self.context = dict(data["context"])
        self.city = data["city"]
        self.subject = data["subject"]

    @applies("EmailSent")
    def _sent(self, data: dict[str, Any]) -> None:
        self.status = "sent"
        self.attempts += 1
        self.total_attempts += 1

    @applies("EmailDeferred")
    def _deferred(self, data: dict[str, Any]) -> None:
        self.status = "deferred"
        self.attempts += 1
        self.total_attempts += 1

    @applies("EmailFailed")
    def _failed(self, data: dict[str, Any]) -> None:
        self.status = "failed"
        self.attempts += 1
        self.total_attempts += 1

    @applies("EmailRetried")
    def _retried(self, data: dict[str, Any]) -> None:
        self.status = "queued"
        self.attempts = 0

    @applies("EmailGivenUp")
    def _given_up(self, data: dict[str, Any]) -> None:
        self.status = "given_up"
