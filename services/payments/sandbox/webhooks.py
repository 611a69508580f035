"""Webhook delivery: signed, retried with backoff until acknowledged, in one of four modes.

* ``normal``: each event once, in the order it happened.
* ``duplicate``: each event delivered twice, by two workers at about the same moment.
* ``out_of_order``: a payment's events are held until its outcome is known, then the
  outcome goes first and the earlier events after it.
* ``drop``: events are recorded but never delivered (a lost webhook; polling must settle it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests

from services.payments.sandbox.bank import Bank
from services.payments.signatures import HEADER, sign

log = logging.getLogger("sandbox.webhooks")

MODES = ("normal", "duplicate", "out_of_order", "drop")
OUTCOMES = ("payment.succeeded", "payment.failed")
HELD_GAP = 0.3  # seconds between the outcome and the earlier events it overtakes
HELD_MAX = 120.0  # a held event whose outcome never comes is sent anyway
ORDERED = (
    "AND NOT EXISTS (SELECT 1 FROM deliveries d2 JOIN events e2 ON e2.id=d2.event_id "
    "WHERE e.payment_id IS NOT NULL AND e2.payment_id=e.payment_id AND d2.id<d.id "
    "AND d2.event_id<>d.event_id AND d2.status IN ('pending','sending'))"
)


class Dispatcher:
    def __init__(
        self,
        bank: Bank,
        url: str,
        secrets: list[str],
        *,
        mode: str = "normal",
        retry_base: float = 1.0,
        retry_max: float = 300.0,
        workers: int = 4,
    ) -> None:
        self.bank = bank
        self.url = url
        self.secrets = secrets
        self.mode = mode
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.workers = workers
        self._wake = threading.Condition(bank.lock)
        self._stopping = threading.Event()
        self._http = requests.Session()
        bank.on_event = self.enqueue
        with bank.lock:  # a crash mid-send means it was never acknowledged: send again
            bank.db.execute("UPDATE deliveries SET status='pending' WHERE status='sending'")

    def settings(self) -> dict[str, Any]:
        return {
            "webhook_url": self.url,
            "webhook_mode": self.mode,
            "retry_base": self.retry_base,
            "retry_max": self.retry_max,
            "delay_seconds": self.bank.delay_seconds,
        }

    def enqueue(self, event_type: str, event: dict[str, Any], payment_id: str | None) -> None:
        """Plan the deliveries of a new event (called under the bank's lock)."""
        now = time.time()
        db = self.bank.db

        def add(status: str, at: float) -> None:
            db.execute(
                "INSERT INTO deliveries (event_id, status, next_at) VALUES (?,?,?)",
                (event["id"], status, at),
            )

        if self.mode == "drop":
            add("dropped", now)
        elif self.mode == "duplicate":
            add("pending", now)
            add("pending", now)
        elif self.mode == "out_of_order" and payment_id and event_type.startswith("payment."):
            if event_type in OUTCOMES:
                add("pending", now)
                db.execute(
                    "UPDATE deliveries SET status='pending', next_at=? WHERE status='held' AND "
                    "event_id IN (SELECT id FROM events WHERE payment_id=?)",
                    (now + HELD_GAP, payment_id),
                )
            else:
                add("held", now)
        else:
            add("pending", now)
        self._wake.notify_all()

    def start(self) -> None:
        for i in range(self.workers):
            threading.Thread(target=self._work, name=f"webhook-{i}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()

    def _claim(self) -> tuple[int, str, int] | None:
        with self._wake:
            now = time.time()
            self.bank.db.execute(
                "UPDATE deliveries SET status='pending' WHERE status='held' AND next_at<=?",
                (now - HELD_MAX,),
            )
            # In order: a payment's event waits while an earlier one is still undelivered
            # (except in out_of_order mode, whose point is the opposite).
            in_order = "" if self.mode == "out_of_order" else ORDERED
            row = self.bank.db.execute(
                "SELECT d.id, d.attempts, e.body FROM deliveries d "
                "JOIN events e ON e.id=d.event_id WHERE d.status='pending' AND d.next_at<=? "
                f"{in_order} ORDER BY d.next_at, d.id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                # Woken early by a new event or a finished delivery (notify_all).
                nxt = self.bank.db.execute(
                    "SELECT min(next_at) FROM deliveries WHERE status='pending' AND next_at>?",
                    (now,),
                ).fetchone()[0]
                wait = 1.0 if nxt is None else min(max(nxt - now, 0.01), 1.0)
                self._wake.wait(wait)
                return None
            self.bank.db.execute(
                "UPDATE deliveries SET status='sending', first_sent_at=coalesce(first_sent_at, ?)"
                " WHERE id=?",
                (now, row["id"]),
            )
            return row["id"], row["body"], row["attempts"]

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self._claim()
                if claimed is not None:
                    self._send(*claimed)
            except Exception:  # never let a worker die: log and carry on
                log.exception("webhook worker failed")
                time.sleep(0.5)

    def _send(self, delivery_id: int, body: str, attempts: int) -> None:
        data = body.encode()
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(data, self.secrets, int(time.time())),
            "User-Agent": "muniportal-processor-sandbox/1",
        }
        code, error = None, None
        try:
            response = self._http.post(self.url, data=data, headers=headers, timeout=10)
            code = response.status_code
            if not 200 <= code < 300:
                error = response.text[:300]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = time.time()
        with self._wake:
            if error is None:
                self.bank.db.execute(
                    "UPDATE deliveries SET status='delivered', delivered_at=?, attempts=?, "
                    "last_code=? WHERE id=?",
                    (now, attempts + 1, code, delivery_id),
                )
                self._wake.notify_all()  # the payment's next event may go now
                return
            backoff = min(self.retry_base * 2**attempts, self.retry_max)
            log.warning(
                "webhook %s not acknowledged (%s); retry in %.1fs",
                delivery_id,
                code or error,
                backoff,
            )
            self.bank.db.execute(
                "UPDATE deliveries SET status='pending', attempts=?, next_at=?, last_code=?, "
                "last_error=? WHERE id=?",
                (attempts + 1, now + backoff, code, error, delivery_id),
            )
            self._wake.notify_all()

    def deliveries(self, limit: int = 500, payment_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE e.payment_id=?", [payment_id]) if payment_id else ("", [])
        with self.bank.lock:
            rows = self.bank.db.execute(
                "SELECT d.*, e.type, e.payment_id, e.body FROM deliveries d "
                f"JOIN events e ON e.id=d.event_id {where} ORDER BY d.id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [
            {
                "delivery_id": r["id"],
                "event_id": r["event_id"],
                "type": r["type"],
                "payment_id": r["payment_id"],
                "status": r["status"],
                "attempts": r["attempts"],
                "first_sent_at": r["first_sent_at"],
                "delivered_at": r["delivered_at"],
                "last_code": r["last_code"],
                "last_error": r["last_error"],
            }
            for r in rows
        ]
