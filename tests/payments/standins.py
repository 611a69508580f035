"""Stand-ins for parts built in parallel, used by the payments tests and benchmarks.

* `GatewayStandIn`: the gateway's `POST /api/v1/webhooks/processor` route, which passes
  the raw body and the signature header to `payments.handle_webhook`. It stands in until
  the gateway's route is in main.
* `BillingStandIn`: billing as payments sees it: it issues bills (publishing `BillIssued`
  as billing does, source `billing`), posts each `PaymentSucceeded` once (deduplicated by
  event id, like billing's inbox), publishes the new balance (`BillBalanceChanged` with the
  payment id) and answers `bill_brief` over RPC. It stands in until billing is in main.
* `Sandbox`: the processor sandbox as its own process (`muniportal processor-sandbox`).
* `HostedPage`: a resident at the processor's hosted page: it reads the page's form and
  submits it exactly as a browser would.
"""

from __future__ import annotations

import datetime as dt
import html.parser
import json
import subprocess
import sys
import threading
import urllib.parse
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from nameko.events import event_handler
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http

from shared import testing
from shared.errors import MuniportalError
from shared.events import Envelope
from shared.relay import ConfirmingPublisher
from shared.rpc import RpcProxy, rpc
from shared.testing import wait_for

SIGNATURE_HEADER = "Processor-Signature"
API_KEY = "sk_test_payments"
SECRET = "whsec_test_payments"
BIN = Path(sys.executable).parent


class GatewayStandIn:
    """Stand-in for the gateway's webhook route (until it is in main)."""

    name = "gateway_standin"
    payments = RpcProxy("payments")

    @http("POST", "/api/v1/webhooks/processor")
    def processor_webhook(self, request):
        """Pass the raw body and signature to payments; map its answer to a status."""
        body = request.get_data(as_text=True)
        try:
            result = self.payments.handle_webhook(body, request.headers.get(SIGNATURE_HEADER))
        except MuniportalError as exc:
            status = 400 if exc.kind == "invalid" else exc.status
            return (
                status,
                {"Content-Type": "application/json"},
                json.dumps({"error": exc.code, "detail": exc.detail}),
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(result)


def envelope(event_type: str, stream_id: str, version: int, data: dict[str, Any]) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=event_type,
        schema_version=1,
        stream_id=stream_id,
        version=version,
        position=None,
        occurred_at=dt.datetime.now(dt.UTC),
        correlation_id=None,
        causation_id=None,
        actor="system",
        source="billing",
        data=data,
    )


class BillingEvents:
    """Publishes billing's events the way billing's relay does (confirmed, to billing.events)."""

    def __init__(self, amqp_uri: str) -> None:
        self.publisher = ConfirmingPublisher(amqp_uri, "billing.events", name="billing-standin")
        self.versions: dict[str, int] = {}
        self.lock = threading.Lock()

    def _next(self, stream_id: str) -> int:
        self.versions[stream_id] = self.versions.get(stream_id, 0) + 1
        return self.versions[stream_id]

    def bill_issued_data(
        self,
        bill_number: str,
        account_number: str,
        balance: str,
        due_date: dt.date | None = None,
        customer_id: str | None = None,
        bill_type: str = "utility",
    ) -> dict[str, Any]:
        today = dt.date.today()
        return {
            "bill_number": bill_number,
            "bill_type": bill_type,
            "account_number": account_number,
            "customer_id": customer_id or f"C{account_number}",
            "statement_date": today.isoformat(),
            "due_date": (due_date or today + dt.timedelta(days=30)).isoformat(),
            "lines": [{"description": "WATER FIXED CHARGE", "amount": balance}],
            "previous_balance": "0.00",
            "payments": "0.00",
            "penalty": "0.00",
            "total": balance,
            "balance_due": balance,
        }

    def issue_many(self, bills: list[dict[str, Any]]) -> None:
        with self.lock:
            envs = [
                envelope(
                    "BillIssued",
                    f"bill-{b['bill_number']}",
                    self._next(f"bill-{b['bill_number']}"),
                    b,
                )
                for b in bills
            ]
            self.publisher.publish(envs)

    def issue(self, bill_number: str, account_number: str, balance: str, **kw: Any) -> None:
        self.issue_many([self.bill_issued_data(bill_number, account_number, balance, **kw)])

    def balance_changed(
        self,
        bill_number: str,
        account_number: str,
        balance: str,
        reason: str,
        payment_id: str | None = None,
    ) -> None:
        with self.lock:
            stream = f"bill-{bill_number}"
            self.publisher.publish(
                [
                    envelope(
                        "BillBalanceChanged",
                        stream,
                        self._next(stream),
                        {
                            "bill_number": bill_number,
                            "account_number": account_number,
                            "customer_id": f"C{account_number}",
                            "balance_due": balance,
                            "reason": reason,
                            "payment_id": payment_id,
                        },
                    )
                ]
            )

    def close(self) -> None:
        self.publisher.close()


class Ledger(DependencyProvider):
    """The stand-in billing's books, shared by its workers."""

    def setup(self) -> None:
        self.events = BillingEvents(self.container.config["AMQP_URI"])
        self.bills: dict[str, dict[str, Any]] = {}
        self.seen: set[str] = set()
        self.postings: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def stop(self) -> None:
        self.events.close()

    def get_dependency(self, worker_ctx: Any) -> Ledger:
        return self


class BillingStandIn:
    """Billing as payments sees it (until billing is in main)."""

    name = "billing_standin"
    ledger = Ledger()

    @rpc
    def issue_bills(self, bills: list[dict[str, Any]]) -> int:
        """Issue bills: [{bill_number, account_number, balance, due_date?}]."""
        datas = []
        with self.ledger.lock:
            for b in bills:
                data = self.ledger.events.bill_issued_data(
                    b["bill_number"],
                    b["account_number"],
                    b["balance"],
                    due_date=dt.date.fromisoformat(b["due_date"]) if b.get("due_date") else None,
                )
                self.ledger.bills[b["bill_number"]] = {
                    "account_number": b["account_number"],
                    "balance": Decimal(b["balance"]),
                }
                datas.append(data)
        self.ledger.events.issue_many(datas)
        return len(datas)

    @rpc
    def bill_brief(self, bill_number: str) -> dict[str, Any] | None:
        bill = self.ledger.bills.get(bill_number)
        if bill is None:
            return None
        postings = [p for p in self.ledger.postings if p["bill_number"] == bill_number]
        return {
            "bill_number": bill_number,
            "account_number": bill["account_number"],
            "balance_due": f"{bill['balance']:.2f}",
            "postings": postings,
        }

    def _apply(self, payload: dict[str, Any], sign: int) -> None:
        event_id = payload["event_id"]
        changed = []
        with self.ledger.lock:
            if event_id in self.ledger.seen:
                return  # billing's inbox: each event is posted once
            self.ledger.seen.add(event_id)
            data = payload["data"]
            for alloc in data["allocations"]:
                bill = self.ledger.bills.get(alloc["bill_number"])
                if bill is None:
                    continue
                bill["balance"] -= sign * Decimal(alloc["amount"])
                self.ledger.postings.append(
                    {
                        "event_id": event_id,
                        "type": payload["type"],
                        "payment_id": data["payment_id"],
                        "bill_number": alloc["bill_number"],
                        "amount": alloc["amount"],
                    }
                )
                changed.append(
                    (alloc["bill_number"], bill["account_number"], f"{bill['balance']:.2f}")
                )
        for bill_number, account, balance in changed:
            self.ledger.events.balance_changed(
                bill_number, account, balance, payload["type"], data["payment_id"]
            )

    @event_handler("payments", "PaymentSucceeded")
    def on_paid(self, payload: dict[str, Any]) -> None:
        self._apply(payload, +1)

    @event_handler("payments", "PaymentRefunded")
    def on_refunded(self, payload: dict[str, Any]) -> None:
        self._apply(payload, -1)


class _FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "action": a.get("action"),
                    "method": (a.get("method") or "get").lower(),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


class HostedPage:
    """A resident at the processor's hosted page, through plain HTTP like a browser."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def open(self) -> requests.Response:
        return self.http.get(self.url, timeout=10, allow_redirects=False)

    def form(self) -> dict[str, Any]:
        response = self.open()
        response.raise_for_status()
        parser = _FormParser()
        parser.feed(response.text)
        (form,) = parser.forms
        return form

    def submit(
        self, card_number: str, expiry: str = "12/34", cvc: str = "123", name: str = "Ana Resident"
    ) -> requests.Response:
        """Fill in the page's own form and submit it where and how the form says."""
        form = self.form()
        fields = dict(form["fields"])
        fields.update(card_number=card_number, expiry=expiry, cvc=cvc, name=name)
        target = urllib.parse.urljoin(self.url, form["action"])
        return self.http.request(
            form["method"], target, data=fields, timeout=10, allow_redirects=False
        )

    @staticmethod
    def outcome(response: requests.Response) -> dict[str, str]:
        """The query the processor sent the resident back with (303 to the return URL)."""
        location = response.headers["Location"]
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


class Sandbox:
    """The processor sandbox as a separate process, and its API for the tests."""

    def __init__(self, directory: Path, webhook_url: str, extra: list[str]) -> None:
        self.port = testing.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "sandbox.log"
        args = [
            str(BIN / "muniportal"),
            "processor-sandbox",
            "--port",
            str(self.port),
            "--public-url",
            self.url,
            "--db",
            str(directory / "sandbox.db"),
            "--webhook-url",
            webhook_url,
            "--api-key",
            API_KEY,
            "--retry-base",
            "0.2",
            "--retry-max",
            "2",
            "--delay-seconds",
            "1",
            "--quiet",
            *extra,
        ]
        if "--webhook-secret" not in extra:
            args += ["--webhook-secret", SECRET]
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_for(self._healthy, timeout=20, what=f"the processor sandbox on {self.url}")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {API_KEY}"

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(self.url + "/health", timeout=1).ok
        except requests.RequestException:
            return False

    def api(self, method: str, path: str, body: dict | None = None, **kw: Any) -> Any:
        response = self.http.request(method, self.url + path, json=body, timeout=10, **kw)
        return response.status_code, response.json()

    def settings(self, **values: Any) -> dict:
        return self.api("POST", "/sandbox/settings", values)[1]

    def deliveries(self) -> list[dict]:
        return self.api("GET", "/sandbox/webhooks")[1]["deliveries"]

    def transactions(self, reference: str | None = None, day: dt.date | None = None) -> list[dict]:
        day = day or dt.datetime.now(dt.UTC).date()
        _, body = self.api("GET", f"/v1/transactions?date={day.isoformat()}")
        rows = body["transactions"]
        return [t for t in rows if reference is None or t["reference"] == reference]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
