"""Payments test rig: the real payments service, the real processor sandbox over HTTP.

Provides `rig` (module-scoped): a processor sandbox process (`muniportal
processor-sandbox`), the payments service on its own database (PostgreSQL unless the
module's RIG says sqlite), the gateway stand-in that forwards webhooks to
`payments.handle_webhook`, and the billing stand-in that issues bills and posts payments.
A module tunes it with a module-level ``RIG = {"config": {...}, "sandbox": [...], "db": ...}``.

Nothing is faked: RabbitMQ, PostgreSQL and the sandbox's HTTP are real. The stand-ins are
there because the gateway and billing are being built in parallel (see standins.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import time
from decimal import Decimal
from typing import Any

import pytest
import requests

from shared import testing
from shared.rpc import rpc_client
from shared.store import EventStore
from shared.testing import wait_for
from tests.payments.standins import (
    API_KEY,
    SECRET,
    BillingStandIn,
    GatewayStandIn,
    HostedPage,
    Sandbox,
)


class Rig:
    def __init__(self, cluster: Any, sandbox: Sandbox, db_url: str, gateway_url: str, config: dict):
        self.cluster = cluster
        self.payments = cluster.payments
        self.billing = cluster.billing_standin
        self.sandbox = sandbox
        self.db_url = db_url
        self.gateway_url = gateway_url
        self.config = config
        self.events_store = EventStore("payments", db_url, pool_size=2)
        self.return_url = "https://portal.example.test/pay/return?c=1"
        self._bill = random.randint(10_000_000, 90_000_000)

    # -- data ---------------------------------------------------------------------------

    def new_bill_number(self) -> str:
        self._bill += 1
        return str(self._bill)

    def issue(
        self, *balances: str, account: str | None = None, due_date: dt.date | None = None
    ) -> list[str]:
        """Billing issues bills; returns their numbers once payments knows them."""
        account = account or str(random.randint(1_000_000, 9_000_000))
        bills = [
            {
                "bill_number": self.new_bill_number(),
                "account_number": account,
                "balance": balance,
                "due_date": due_date.isoformat() if due_date else None,
            }
            for balance in balances
        ]
        self.billing.issue_bills(bills)
        numbers = [b["bill_number"] for b in bills]
        wait_for(
            lambda: len(self.payments.bill_status(numbers)) == len(numbers),
            timeout=15,
            what="payments to learn the new bills",
        )
        return numbers

    def billing_info(self, **overrides: str) -> dict:
        info = {
            "name": "Ana Resident",
            "address": "123 Main Street",
            "city": "Pleasanton",
            "state": "CA",
            "zip": "94566",
            "phone": "(925) 931-5500",
            "email": "ana@example.test",
        }
        info.update(overrides)
        return info

    def checkout(self, owner: str, *bills: str, key: str | None = None, **billing: str) -> dict:
        for bill in bills:
            self.payments.add_to_cart(owner, bill)
        return self.payments.start_checkout(
            owner, key or f"key-{random.random()}", self.billing_info(**billing), self.return_url
        )

    def pay(self, checkout: dict, card: str = "4242424242424242", **kw: Any) -> dict:
        response = HostedPage(checkout["payment_url"]).submit(card, **kw)
        assert response.status_code == 303, response.text[:500]
        return HostedPage.outcome(response)

    def wait_status(
        self, owner: str, checkout_id: str, *statuses: str, timeout: float = 20
    ) -> dict:
        return wait_for(
            lambda: (
                (c := self.payments.get_checkout(owner, checkout_id))["status"] in statuses and c
            ),
            timeout=timeout,
            what=f"checkout {checkout_id} to be {' or '.join(statuses)}",
        )

    # -- what was recorded --------------------------------------------------------------

    def events(self, event_type: str | None = None, payment_id: str | None = None) -> list:
        """Events in payments' log (every write before this call is included)."""

        # PostgreSQL gives a commit its position once older transactions finish: wait for it.
        def settled() -> bool:
            self.events_store.sequence()
            return self.events_store.unsequenced_count() == 0

        wait_for(settled, timeout=10, what="payments' log to settle")
        out = []
        position = 0
        while True:
            batch = self.events_store.read_all(position, 5000)
            if not batch:
                break
            position = batch[-1].position
            out.extend(
                e
                for e in batch
                if (event_type is None or e.type == event_type)
                and (payment_id is None or e.data.get("payment_id") == payment_id)
            )
        return out

    def head(self) -> int:
        return self.events_store.head_position()

    def posted(self, bill_number: str) -> Decimal:
        brief = self.billing.bill_brief(bill_number)
        return Decimal(brief["balance_due"])

    def post_webhook(self, body: str, signature: str | None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Processor-Signature"] = signature
        return requests.post(self.gateway_url, data=body.encode(), headers=headers, timeout=10)


@pytest.fixture(scope="module")
def rig(request, amqp_uri, pg_base, tmp_path_factory):
    from nameko.containers import ServiceContainer

    from services.payments.service import PaymentsService

    spec = getattr(request.module, "RIG", {})
    directory = tmp_path_factory.mktemp("payments")
    if spec.get("db") == "sqlite":
        db_url = f"sqlite:///{directory / 'payments.db'}"
    else:
        db_url = testing.create_database(pg_base)
    gateway_port = testing.free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}/api/v1/webhooks/processor"
    sandbox = Sandbox(directory, gateway_url, spec.get("sandbox", []))
    base = {
        "AMQP_URI": amqp_uri,
        "RPC_TIMEOUT": 10,
        "MAX_DELIVERY_ATTEMPTS": 3,
        "QUEUE_TYPE": os.environ.get("QUEUE_TYPE", "classic"),
        "max_workers": 10,
        "serializer": "json",
    }
    config = {
        **base,
        "DATABASE_URL": db_url,
        "PROCESSOR_URL": sandbox.url,
        "PROCESSOR_API_KEY": API_KEY,
        "PROCESSOR_WEBHOOK_SECRETS": SECRET,
        "JANITOR_INTERVAL": 0.2,
        "AUTOPAY_INTERVAL": 0.3,
        "PROCESSOR_POLL_SECONDS": 30,
        "CITY_NAME": "City of Pleasanton",
        **spec.get("config", {}),
    }
    containers = [
        ServiceContainer(PaymentsService, config),
        ServiceContainer(
            GatewayStandIn, {**base, "WEB_SERVER_ADDRESS": f"127.0.0.1:{gateway_port}"}
        ),
        ServiceContainer(BillingStandIn, base),
    ]
    with contextlib.ExitStack() as stack:
        for container in containers:
            container.start()
            stack.callback(container.kill)
        stack.callback(sandbox.stop)
        cluster = stack.enter_context(rpc_client(amqp_uri, timeout=15))
        the_rig = Rig(cluster, sandbox, db_url, gateway_url, config)
        the_rig.containers = containers
        the_rig.amqp_uri = amqp_uri
        the_rig.directory = directory
        stack.callback(the_rig.events_store.dispose)
        yield the_rig
    if not db_url.startswith("sqlite"):
        testing.drop_database(pg_base, db_url)


@pytest.fixture
def owner():
    return f"user:ana{random.randint(0, 10**9)}"


def wait(seconds: float) -> None:
    """Only for letting a deadline pass (the behaviour under test is time itself)."""
    time.sleep(seconds)
