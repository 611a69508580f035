"""The sandbox processor's books: sessions, payments, refunds, card tokens and events.

Kept in SQLite so a restarted sandbox still knows its payments and keeps delivering
the webhooks it owes. One lock serializes every change; the HTTP handlers and the
clock thread share it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.payments.sandbox.cards import BY_NUMBER, FAILURES, CardEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, reference TEXT, amount TEXT, currency TEXT,
    description TEXT, customer TEXT, return_url TEXT NOT NULL, expires_at REAL NOT NULL,
    status TEXT NOT NULL, payment_id TEXT, token TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, session_id TEXT, reference TEXT, amount TEXT NOT NULL,
    description TEXT, status TEXT NOT NULL, brand TEXT, last4 TEXT, exp_month INTEGER,
    exp_year INTEGER, outcome TEXT NOT NULL, failure_code TEXT, failure_message TEXT,
    token TEXT, created_at REAL NOT NULL, complete_at REAL, succeeded_at REAL,
    settled INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS ix_payments_reference ON payments (reference);
CREATE TABLE IF NOT EXISTS reversals (
    id TEXT PRIMARY KEY, payment_id TEXT NOT NULL, kind TEXT NOT NULL, amount TEXT NOT NULL,
    reason TEXT, reference TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    token TEXT PRIMARY KEY, number TEXT NOT NULL, brand TEXT NOT NULL, last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL, exp_year INTEGER NOT NULL, name TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, created REAL NOT NULL, body TEXT NOT NULL,
    payment_id TEXT);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, first_sent_at REAL,
    delivered_at REAL, last_code INTEGER, last_error TEXT);
CREATE INDEX IF NOT EXISTS ix_deliveries_due ON deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, code INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (scope, key));
"""

TERMINAL = ("succeeded", "failed", "canceled")


class BankError(Exception):
    """A request the sandbox refuses, with the HTTP status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def parse_amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except Exception:
        raise BankError(400, "invalid_amount", "amount must be a decimal string") from None
    if amount <= 0:
        raise BankError(400, "invalid_amount", "amount must be more than zero")
    return amount


class Bank:
    def __init__(self, path: str, base_url: str, delay_seconds: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.delay_seconds = delay_seconds
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        # Called with (event_type, body_dict, payment_id) whenever an event is emitted.
        self.on_event: Callable[[str, dict[str, Any], str | None], None] = lambda *a: None

    # -- helpers ------------------------------------------------------------------------

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def idempotent(
        self, scope: str, key: str | None, action: Callable[[], tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict[str, Any]]:
        """Run an API call once per Idempotency-Key; a repeat gets the first answer."""
        with self.lock:
            if key:
                row = self._one(
                    "SELECT code, body FROM idempotency WHERE scope=? AND key=?", scope, key
                )
                if row is not None:
                    return row["code"], json.loads(row["body"])
            try:
                code, body = action()
            except BankError as exc:
                code, body = exc.status, {"error": {"code": exc.code, "message": exc.message}}
            if key and code < 500:
                self.db.execute(
                    "INSERT INTO idempotency (scope, key, code, body) VALUES (?,?,?,?)",
                    (scope, key, code, json.dumps(body)),
                )
            return code, body

    def emit(self, event_type: str, obj: dict[str, Any], payment_id: str | None) -> None:
        event = {
            "id": new_id("evt"),
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
        body = json.dumps(event, separators=(",", ":"))
        self.db.execute(
            "INSERT INTO events (id, type, created, body, payment_id) VALUES (?,?,?,?,?)",
            (event["id"], event_type, time.time(), body, payment_id),
        )
        self.on_event(event_type, event, payment_id)

    # -- objects ------------------------------------------------------------------------

    def payment_json(self, row: sqlite3.Row) -> dict[str, Any]:
        reversals = [
            {
                "id": r["id"],
                "kind": r["kind"],
                "amount": r["amount"],
                "reason": r["reason"],
                "reference": r["reference"],
                "created_at": iso(r["created_at"]),
            }
            for r in self._all(
                "SELECT * FROM reversals WHERE payment_id=? ORDER BY created_at", row["id"]
            )
        ]
        return {
            "object": "payment",
            "id": row["id"],
            "session_id": row["session_id"],
            "reference": row["reference"],
            "amount": row["amount"],
            "currency": "usd",
            "description": row["description"],
            "status": row["status"],
            "card": {
                "brand": row["brand"],
                "last4": row["last4"],
                "exp_month": row["exp_month"],
                "exp_year": row["exp_year"],
            },
            "failure_code": row["failure_code"],
            "failure_message": row["failure_message"],
            "created_at": iso(row["created_at"]),
            "succeeded_at": iso(row["succeeded_at"]),
            "settled": bool(row["settled"]),
            "reversals": reversals,
        }

    def session_json(self, row: sqlite3.Row) -> dict[str, Any]:
        path = "pay" if row["kind"] == "payment" else "setup"
        out: dict[str, Any] = {
            "object": "checkout_session" if row["kind"] == "payment" else "setup_session",
            "id": row["id"],
            "url": f"{self.base_url}/{path}/{row['id']}",
            "reference": row["reference"],
            "amount": row["amount"],
            "currency": row["currency"],
            "description": row["description"],
            "return_url": row["return_url"],
            "status": row["status"],
            "expires_at": iso(row["expires_at"]),
            "payment": None,
        }
        if row["payment_id"]:
            payment = self._one("SELECT * FROM payments WHERE id=?", row["payment_id"])
            out["payment"] = self.payment_json(payment) if payment else None
        if row["kind"] == "setup" and row["token"]:
            out["card_token"] = row["token"]
        return out

    # -- sessions -----------------------------------------------------------------------

    def create_session(self, kind: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return_url = data.get("return_url") or ""
        if not return_url.startswith(("http://", "https://")):
            raise BankError(400, "invalid_return_url", "return_url must be an http(s) URL")
        now = time.time()
        if kind == "payment":
            amount = str(parse_amount(data.get("amount")))
            try:
                expires_at = dt.datetime.fromisoformat(data["expires_at"]).timestamp()
            except (KeyError, TypeError, ValueError):
                raise BankError(400, "invalid_expires_at", "expires_at must be ISO 8601") from None
            if expires_at <= now:
                raise BankError(400, "invalid_expires_at", "expires_at is in the past")
            prefix = "cs"
        else:
            amount, expires_at, prefix = None, now + 3600, "ss"
        session_id = new_id(prefix)
        with self.lock:
            self.db.execute(
                "INSERT INTO sessions (id, kind, reference, amount, currency, description,"
                " customer, return_url, expires_at, status, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    session_id,
                    kind,
                    data.get("reference"),
                    amount,
                    "usd",
                    (data.get("description") or "")[:200],
                    json.dumps(data.get("customer") or {}),
                    return_url,
                    expires_at,
                    "open",
                    now,
                ),
            )
            return 200, self.session_json(self._session(session_id))

    def _session(self, session_id: str) -> sqlite3.Row:
        row = self._one("SELECT * FROM sessions WHERE id=?", session_id)
        if row is None:
            raise BankError(404, "not_found", f"no session {session_id}")
        return row

    def get_session(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            self._expire_if_due(self._session(session_id))
            return self.session_json(self._session(session_id))

    def session_row(self, session_id: str) -> sqlite3.Row:
        with self.lock:
            self._expire_if_due(self._session(session_id))
            return self._session(session_id)

    def cancel_session(self, session_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            row = self._session(session_id)
            self._expire_if_due(row)
            row = self._session(session_id)
            if row["status"] == "processing":
                raise BankError(409, "payment_processing", "the payment is being processed")
            if row["status"] == "succeeded":
                raise BankError(409, "already_completed", "the payment has already succeeded")
            if row["status"] == "open":
                self.db.execute("UPDATE sessions SET status='canceled' WHERE id=?", (session_id,))
                row = self._session(session_id)
                self.emit("session.canceled", self._session_event(row), None)
            return 200, self.session_json(self._session(session_id))

    def _session_event(self, row: sqlite3.Row) -> dict[str, Any]:
        """The payment-shaped object sent with session.expired and session.canceled."""
        return {
            "object": "payment",
            "id": None,
            "session_id": row["id"],
            "reference": row["reference"],
            "amount": row["amount"],
            "status": "expired" if row["status"] == "expired" else "canceled",
        }

    def _expire_if_due(self, row: sqlite3.Row) -> None:
        if row["status"] == "open" and row["expires_at"] <= time.time():
            self.db.execute("UPDATE sessions SET status='expired' WHERE id=?", (row["id"],))
            if row["kind"] == "payment":
                self.emit("session.expired", self._session_event(self._session(row["id"])), None)

    # -- the hosted page ----------------------------------------------------------------

    def pay(self, session_id: str, entry: CardEntry) -> dict[str, Any]:
        """The hosted form was submitted with a valid test card. One charge per session."""
        with self.lock:
            row = self._session(session_id)
            self._expire_if_due(row)
            row = self._session(session_id)
            if row["status"] != "open":
                # A double click or the back button: the first submission stands.
                return self.session_json(row)
            now = time.time()
            payment_id = new_id("py")
            delayed = entry.card.delayed
            self.db.execute(
                "INSERT INTO payments (id, session_id, reference, amount, description, status,"
                " brand, last4, exp_month, exp_year, outcome, created_at, complete_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    payment_id,
                    session_id,
                    row["reference"],
                    row["amount"],
                    row["description"],
                    "processing",
                    entry.card.brand,
                    entry.last4,
                    entry.exp_month,
                    entry.exp_year,
                    entry.card.outcome,
                    now,
                    now + self.delay_seconds if delayed else None,
                ),
            )
            self.db.execute(
                "UPDATE sessions SET status='processing', payment_id=? WHERE id=?",
                (payment_id, session_id),
            )
            self.emit("payment.processing", self._payment(payment_id), payment_id)
            if not delayed:
                self._complete(payment_id)
            return self.session_json(self._session(session_id))

    def _payment(self, payment_id: str) -> dict[str, Any]:
        row = self._one("SELECT * FROM payments WHERE id=?", payment_id)
        if row is None:
            raise BankError(404, "not_found", f"no payment {payment_id}")
        return self.payment_json(row)

    def _complete(self, payment_id: str) -> None:
        row = self._one("SELECT * FROM payments WHERE id=?", payment_id)
        if row is None or row["status"] != "processing":
            return
        now = time.time()
        outcome = row["outcome"]
        if outcome == "approved" and (row["exp_year"], row["exp_month"]) < (
            dt.date.today().year,
            dt.date.today().month,
        ):
            outcome = "expired_card"
        if outcome == "approved":
            self.db.execute(
                "UPDATE payments SET status='succeeded', succeeded_at=? WHERE id=?",
                (now, payment_id),
            )
            event_type, session_status = "payment.succeeded", "succeeded"
        else:
            code, message = FAILURES[outcome]
            self.db.execute(
                "UPDATE payments SET status='failed', failure_code=?, failure_message=? WHERE id=?",
                (code, message, payment_id),
            )
            event_type, session_status = "payment.failed", "failed"
        if row["session_id"]:
            self.db.execute(
                "UPDATE sessions SET status=? WHERE id=?", (session_status, row["session_id"])
            )
        self.emit(event_type, self._payment(payment_id), payment_id)

    def complete_setup(self, setup_id: str, entry: CardEntry) -> dict[str, Any]:
        with self.lock:
            row = self._session(setup_id)
            self._expire_if_due(row)
            row = self._session(setup_id)
            if row["status"] != "open":
                return self.session_json(row)
            token = new_id("tok")
            self.db.execute(
                "INSERT INTO cards (token, number, brand, last4, exp_month, exp_year, name,"
                " created_at) VALUES (?,?,?,?,?,?,?,?)",
                (
                    token,
                    entry.card.number,
                    entry.card.brand,
                    entry.last4,
                    entry.exp_month,
                    entry.exp_year,
                    entry.name,
                    time.time(),
                ),
            )
            self.db.execute(
                "UPDATE sessions SET status='succeeded', token=? WHERE id=?", (token, setup_id)
            )
            session = self.session_json(self._session(setup_id))
            self.emit(
                "setup.succeeded",
                {
                    "object": "setup",
                    "id": setup_id,
                    "reference": row["reference"],
                    "card_token": token,
                    "card": self._card(token),
                },
                None,
            )
            return session

    # -- cards and charges --------------------------------------------------------------

    def _card(self, token: str) -> dict[str, Any]:
        row = self._one("SELECT * FROM cards WHERE token=?", token)
        if row is None:
            raise BankError(404, "no_such_card", "no card with this token")
        return {
            "object": "card",
            "token": row["token"],
            "brand": row["brand"],
            "last4": row["last4"],
            "exp_month": row["exp_month"],
            "exp_year": row["exp_year"],
        }

    def get_card(self, token: str) -> dict[str, Any]:
        with self.lock:
            return self._card(token)

    def charge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount = str(parse_amount(data.get("amount")))
        with self.lock:
            card = self._one("SELECT * FROM cards WHERE token=?", data.get("card_token") or "")
            if card is None:
                raise BankError(400, "no_such_card", "card_token is not a card of this processor")
            test_card = BY_NUMBER[card["number"]]
            now = time.time()
            payment_id = new_id("py")
            self.db.execute(
                "INSERT INTO payments (id, reference, amount, description, status, brand, last4,"
                " exp_month, exp_year, outcome, token, created_at, complete_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    payment_id,
                    data.get("reference"),
                    amount,
                    (data.get("description") or "")[:200],
                    "processing",
                    card["brand"],
                    card["last4"],
                    card["exp_month"],
                    card["exp_year"],
                    test_card.outcome,
                    card["token"],
                    now,
                    now + self.delay_seconds if test_card.delayed else None,
                ),
            )
            self.emit("payment.processing", self._payment(payment_id), payment_id)
            if not test_card.delayed:
                self._complete(payment_id)
            return 200, self._payment(payment_id)

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        with self.lock:
            return self._payment(payment_id)

    # -- money back ---------------------------------------------------------------------

    def _reversed_total(self, payment_id: str) -> Decimal:
        rows = self._all("SELECT amount FROM reversals WHERE payment_id=?", payment_id)
        return sum((Decimal(r["amount"]) for r in rows), Decimal("0"))

    def _reverse(
        self, payment_id: str, kind: str, amount: Any, reason: str | None, reference: str | None
    ) -> dict[str, Any]:
        row = self._one("SELECT * FROM payments WHERE id=?", payment_id)
        if row is None:
            raise BankError(404, "not_found", f"no payment {payment_id}")
        if row["status"] != "succeeded":
            raise BankError(409, "not_succeeded", f"payment {payment_id} is {row['status']}")
        left = Decimal(row["amount"]) - self._reversed_total(payment_id)
        value = left if amount in (None, "") else parse_amount(amount)
        if value <= 0 or value > left:
            raise BankError(400, "amount_too_large", f"at most {left} can be reversed")
        prefix = {"refund": "re", "void": "vd", "return": "rt", "chargeback": "dp"}[kind]
        reversal_id = new_id(prefix)
        self.db.execute(
            "INSERT INTO reversals (id, payment_id, kind, amount, reason, reference, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (reversal_id, payment_id, kind, str(value), reason, reference, time.time()),
        )
        obj = {
            "object": "refund" if kind in ("refund", "void") else kind,
            "id": reversal_id,
            "kind": kind,
            "status": "succeeded",
            "amount": str(value),
            "reason": reason,
            "reference": reference,
            "payment_id": payment_id,
            "payment_reference": row["reference"],
            "created_at": iso(time.time()),
        }
        event_type = {
            "refund": "refund.succeeded",
            "void": "refund.succeeded",
            "return": "payment.returned",
            "chargeback": "payment.charged_back",
        }[kind]
        self.emit(event_type, obj, payment_id)
        return obj

    def refund(self, payment_id: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            return 200, self._reverse(
                payment_id, "refund", data.get("amount"), data.get("reason"), data.get("reference")
            )

    def void(self, payment_id: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            row = self._one("SELECT * FROM payments WHERE id=?", payment_id)
            if row is not None and row["settled"]:
                raise BankError(409, "already_settled", "the payment has been settled")
            if row is not None and self._reversed_total(payment_id) > 0:
                raise BankError(409, "already_reversed", "a part was already refunded")
            return 200, self._reverse(payment_id, "void", None, "void", data.get("reference"))

    def simulate(self, payment_id: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Sandbox controls: a bank return or a chargeback, as if the card's bank sent one."""
        with self.lock:
            return self._reverse(
                payment_id, kind, data.get("amount"), data.get("reason") or kind, None
            )

    def settle(self, payment_id: str) -> dict[str, Any]:
        with self.lock:
            self.db.execute("UPDATE payments SET settled=1 WHERE id=?", (payment_id,))
            return self._payment(payment_id)

    # -- reports and the clock ----------------------------------------------------------

    def transactions(self, day: dt.date) -> list[dict[str, Any]]:
        start = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
        end = start + 86400
        with self.lock:
            out = [
                {
                    "id": r["id"],
                    "type": "charge",
                    "payment_id": r["id"],
                    "reference": r["reference"],
                    "amount": r["amount"],
                    "created_at": iso(r["succeeded_at"]),
                }
                for r in self._all(
                    "SELECT * FROM payments WHERE status='succeeded' AND succeeded_at>=? "
                    "AND succeeded_at<? ORDER BY succeeded_at",
                    start,
                    end,
                )
            ]
            for r in self._all(
                "SELECT v.*, p.reference AS payment_reference FROM reversals v JOIN payments p "
                "ON p.id=v.payment_id WHERE v.created_at>=? AND v.created_at<? "
                "ORDER BY v.created_at",
                start,
                end,
            ):
                out.append(
                    {
                        "id": r["id"],
                        "type": r["kind"],
                        "payment_id": r["payment_id"],
                        "reference": r["payment_reference"],
                        "amount": r["amount"],
                        "created_at": iso(r["created_at"]),
                    }
                )
        return out

    def tick(self) -> None:
        """Finish delayed payments whose time has come; expire sessions nobody paid."""
        now = time.time()
        with self.lock:
            for row in self._all(
                "SELECT id FROM payments WHERE status='processing' AND complete_at IS NOT NULL "
                "AND complete_at<=?",
                now,
            ):
                self._complete(row["id"])
            for row in self._all(
                "SELECT * FROM sessions WHERE status='open' AND expires_at<=?", now
            ):
                self._expire_if_due(row)
