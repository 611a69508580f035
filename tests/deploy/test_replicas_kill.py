"""Two replicas each of billing and payments; one of each is killed with SIGKILL midway.

The real services run as `nameko run` processes, two per service, against one
PostgreSQL database per service and a fresh RabbitMQ vhost with quorum queues
(QUEUE_TYPE=quorum). The test plays accounts (it publishes AccountImported as
accounts' relay does), runs a billing run with `muniportal-ops billing-run`, and
pays 200 of the bills as residents do: cart, checkout, the processor sandbox's
hosted page; the sandbox's webhooks come back through the gateway's webhook
route (the payments tests' stand-in, until the gateway's route is in main).

Midway through the billing run the first billing instance, which holds the outbox
relay's lease, is killed; after 100 payments the first payments instance is. Then
every bill and every payment must exist exactly once: one BillIssued per account,
every bill known to payments (so the relay passed to the survivor), one
PaymentSucceeded per checkout, one posting per payment in billing, one charge per
payment at the processor, and no balance below zero.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import amqp
import eventlet
import pytest
import sqlalchemy as sa

from shared import testing
from shared.errors import MuniportalError
from shared.ops.registry import projections_of
from shared.relay import ConfirmingPublisher
from shared.rpc import rpc_client
from shared.testing import wait_for
from shared.uow import ServiceStore
from tests.billing.conftest import account_imported
from tests.payments.standins import API_KEY, SECRET, GatewayStandIn, HostedPage, Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ACCOUNTS = 240
PAYMENTS = 200
KILL_PAYMENTS_AFTER = 100
CONCURRENCY = 8
BILLING_INFO = {
    "name": "Ana Resident",
    "address": "123 Main Street",
    "city": "Pleasanton",
    "state": "CA",
    "zip": "94566",
    "email": "ana@example.test",
}


def sewer_only() -> list[dict]:
    return [
        {
            "code": "20000",
            "name": "SEWER",
            "start_date": "1990-01-01",
            "stop_date": None,
            "status": "ACTIVE",
        }
    ]


class Replica:
    """One `nameko run` process of a service, with its output in a file."""

    def __init__(self, service: str, tag: str, env: dict[str, str], directory: Path) -> None:
        self.service = service
        self.tag = tag
        self.log = directory / f"{service}-{tag}.log"
        self.env = env
        self.restarts = 0
        self.proc = subprocess.Popen(
            [
                str(BIN / "nameko"),
                "run",
                "--config",
                f"services/{service}/config.yaml",
                f"services.{service}.service",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(self.log, "w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def restart(self) -> None:
        self.restarts += 1
        self.proc = subprocess.Popen(
            self.proc.args,
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log, "a"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self) -> str:
        return f"--- {self.service}-{self.tag} ---\n" + self.log.read_text()[-3000:]


def rpc_consumers(amqp_uri: str, service: str) -> int:
    """Consumers on the service's RPC queue, counted by the broker (passive declare)."""
    conn = amqp.Connection(**_amqp_params(amqp_uri))
    conn.connect()
    try:
        channel = conn.channel()
        _, _, consumers = channel.queue_declare(f"rpc-{service}", passive=True)
        return consumers
    except amqp.exceptions.NotFound:
        return 0
    finally:
        conn.close()


def _amqp_params(amqp_uri: str) -> dict:
    import urllib.parse

    parts = urllib.parse.urlparse(amqp_uri)
    return {
        "host": f"{parts.hostname}:{parts.port or 5672}",
        "userid": urllib.parse.unquote(parts.username or "guest"),
        "password": urllib.parse.unquote(parts.password or "guest"),
        "virtual_host": urllib.parse.unquote(parts.path[1:] or "/"),
    }


@pytest.fixture(scope="module")
def cluster(amqp_base, pg_base, tmp_path_factory):
    """A fresh vhost and databases, the sandbox, the webhook route, and 2+2 replicas."""
    from nameko.containers import ServiceContainer

    directory = tmp_path_factory.mktemp("replicas")
    vhost = testing.create_vhost(amqp_base)
    assert vhost, "a fresh vhost is needed (quorum queues must not meet classic ones)"
    amqp_uri = testing.with_vhost(amqp_base, vhost)
    billing_db = testing.create_database(pg_base)
    payments_db = testing.create_database(pg_base)
    replicas: list[Replica] = []
    with contextlib.ExitStack() as stack:
        stack.callback(testing.delete_vhost, amqp_base, vhost)
        stack.callback(testing.drop_database, pg_base, billing_db)
        stack.callback(testing.drop_database, pg_base, payments_db)
        gateway_port = testing.free_port()
        webhook_url = f"http://127.0.0.1:{gateway_port}/api/v1/webhooks/processor"
        sandbox = Sandbox(directory, webhook_url, [])
        stack.callback(sandbox.stop)
        env = {
            **os.environ,
            "AMQP_URI": amqp_uri,
            "QUEUE_TYPE": "quorum",
            "MUNIPORTAL_VAR": str(directory / "var"),
            "PYTHONWARNINGS": "ignore",
            "LOG_LEVEL": "WARNING",
            "RPC_TIMEOUT": "10",
            # Lean on connections: the test database server is shared with other suites.
            "MAX_WORKERS": "4",
            "DB_POOL_SIZE": "2",
            "BILLING_DATABASE_URL": billing_db,
            "PAYMENTS_DATABASE_URL": payments_db,
            "PENALTY_INTERVAL": "0",
            "PROCESSOR_URL": sandbox.url,
            "PROCESSOR_API_KEY": API_KEY,
            "PROCESSOR_WEBHOOK_SECRETS": SECRET,
            "JANITOR_INTERVAL": "0.5",
            "PROCESSOR_POLL_SECONDS": "5",
            "CITY_NAME": "City of Pleasanton",
        }

        def start(service: str, tag: str) -> Replica:
            replica = Replica(
                service, tag, {**env, "METRICS_PORT": str(testing.free_port())}, directory
            )
            replicas.append(replica)
            stack.callback(replica.stop)
            return replica

        def running(service: str, count: int) -> None:
            def check() -> bool:
                for replica in replicas:
                    if replica.service == service and not replica.alive():
                        # As Kubernetes would: a replica that fails to start (the shared
                        # test database refusing connections) is started again, twice.
                        if replica.restarts >= 2:
                            raise AssertionError(replica.tail())
                        replica.restart()
                return rpc_consumers(amqp_uri, service) >= count

            wait_for(check, timeout=60, interval=0.2, what=f"{count} {service} replica(s)")

        # The first of each starts alone, so it holds the singleton jobs' leases (relay,
        # janitor): killing it later makes them pass to the second.
        first = {"billing": start("billing", "a"), "payments": start("payments", "a")}
        running("billing", 1)
        running("payments", 1)
        second = {"billing": start("billing", "b"), "payments": start("payments", "b")}
        running("billing", 2)
        running("payments", 2)

        gateway = ServiceContainer(
            GatewayStandIn,
            {
                "AMQP_URI": amqp_uri,
                "QUEUE_TYPE": "quorum",
                "RPC_TIMEOUT": 10,
                "serializer": "json",
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{gateway_port}",
            },
        )
        gateway.start()
        stack.callback(gateway.kill)
        # One connection each: the test database server is shared.
        billing = ServiceStore("billing", billing_db, projections_of("billing"), pool_size=1)
        payments = ServiceStore("payments", payments_db, projections_of("payments"), pool_size=1)
        stack.callback(billing.dispose)
        stack.callback(payments.dispose)
        yield {
            "amqp_uri": amqp_uri,
            "billing_db": billing_db,
            "first": first,
            "second": second,
            "replicas": replicas,
            "sandbox": sandbox,
            "billing": billing,
            "payments": payments,
        }


def scalar(store, sql: str, **params):
    with store.read() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def rows(store, sql: str, **params):
    with store.read() as conn:
        return conn.execute(sa.text(sql), params).all()


def publish_accounts(amqp_uri: str, cycle: str) -> list[str]:
    """Play accounts: AccountImported for ACCOUNTS accounts of a fresh cycle."""
    numbers = sorted(str(uuid.uuid4().int % 10**9 + 10**9) for _ in range(ACCOUNTS))
    publisher = ConfirmingPublisher(amqp_uri, "accounts.events", name="accounts-standin")
    try:
        envelopes = [
            account_imported(n, f"C{n}", cycle=cycle, services=sewer_only()) for n in numbers
        ]
        for start in range(0, len(envelopes), 100):
            publisher.publish(envelopes[start : start + 100])
    finally:
        publisher.close()
    return numbers


def pay(amqp_uri: str, index: int, bill_number: str, tag: str) -> str:
    """A resident pays one bill in full; RPCs that die with a replica are retried."""
    owner = f"user:replica{tag}{index}"
    key = f"replicas-{tag}-{index}"
    checkout = None
    errors: list[str] = []
    deadline = time.monotonic() + 60
    for attempt in itertools.count():
        if time.monotonic() > deadline:
            break
        try:
            with rpc_client(amqp_uri, timeout=12) as services:
                if attempt:
                    # The checkout may have opened on the replica that died: same key, same one.
                    try:
                        checkout = services.payments.start_checkout(
                            owner, key, BILLING_INFO, "https://portal.example.test/return"
                        )
                        break
                    except MuniportalError as exc:
                        if exc.code != "cart_empty":
                            raise
                services.payments.add_to_cart(owner, bill_number)
                checkout = services.payments.start_checkout(
                    owner, key, BILLING_INFO, "https://portal.example.test/return"
                )
                break
        except MuniportalError as exc:
            if exc.kind != "unavailable":
                raise
            errors.append(repr(exc))
        except Exception as exc:  # the broker dropped us mid-call as the replica died: retry
            errors.append(repr(exc))
        eventlet.sleep(min(0.2 * 2**attempt, 3.0))
    assert checkout is not None, f"could not open a checkout for {bill_number}: {errors}"
    response = HostedPage(checkout["payment_url"]).submit("4242424242424242")
    assert response.status_code == 303, response.text[:300]
    return checkout["payment_id"]


def test_two_replicas_each_survive_a_kill_with_every_bill_and_payment_once(cluster):
    amqp_uri, billing, payments = cluster["amqp_uri"], cluster["billing"], cluster["payments"]
    try:
        _scenario(cluster, amqp_uri, billing, payments)
    except BaseException:
        print("\n".join(r.tail() for r in cluster["replicas"]))
        raise


def _scenario(cluster, amqp_uri, billing, payments):
    tag = uuid.uuid4().hex[:6]
    cycle = f"r{tag}"
    accounts = publish_accounts(amqp_uri, cycle)
    wait_for(
        lambda: (
            scalar(billing, "SELECT count(*) FROM billing_accounts WHERE cycle = :c", c=cycle)
            == ACCOUNTS
        ),
        timeout=60,
        what="both billing replicas to learn every account",
    )

    # -- the billing run; billing "a" (the relay's lease holder) dies midway -----------
    run = subprocess.Popen(
        [
            str(BIN / "muniportal-ops"),
            "billing-run",
            "--cycle",
            cycle,
            "--statement-date",
            dt.date.today().replace(day=1).isoformat(),
            "--batch-size",
            "10",
            "--pause",
            "0.1",
            "--quiet",
        ],
        env={
            **os.environ,
            "BILLING_DATABASE_URL": cluster["billing_db"],
            "PYTHONWARNINGS": "ignore",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    known = "SELECT count(*) FROM bills WHERE account_number = ANY(:a)"
    wait_for(
        lambda: scalar(payments, known, a=accounts) >= ACCOUNTS // 4,
        timeout=60,
        what="payments to learn the first bills of the run",
    )
    cluster["first"]["billing"].kill9()
    known_at_kill, run_was_going = scalar(payments, known, a=accounts), run.poll() is None
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    assert run_was_going and known_at_kill < ACCOUNTS, "the kill was not midway through the run"
    wait_for(
        lambda: scalar(payments, known, a=accounts) == ACCOUNTS,
        timeout=60,
        what="every bill to reach payments through the surviving billing replica's relay",
    )

    # -- 200 payments; payments "a" dies after 100 ----------------------------------------
    bills = [
        row[0]
        for row in rows(
            billing,
            "SELECT bill_number FROM bills WHERE cycle = :c ORDER BY bill_number LIMIT :n",
            c=cycle,
            n=PAYMENTS,
        )
    ]
    assert len(bills) == PAYMENTS
    done = collections.Counter()

    def one(item: tuple[int, str]) -> str:
        payment_id = pay(amqp_uri, item[0], item[1], tag)
        done["paid"] += 1
        if done["paid"] == KILL_PAYMENTS_AFTER:
            cluster["first"]["payments"].kill9()
        return payment_id

    pool = eventlet.GreenPool(CONCURRENCY)
    payment_ids = list(pool.imap(one, enumerate(bills)))
    assert not cluster["first"]["payments"].alive()
    assert len(set(payment_ids)) == PAYMENTS

    # -- everything converges, exactly once ---------------------------------------------
    succeeded = (
        "SELECT count(DISTINCT data->>'payment_id') FROM events "
        "WHERE type = 'PaymentSucceeded' AND data->>'payment_id' = ANY(:p)"
    )
    wait_for(
        lambda: scalar(payments, succeeded, p=payment_ids) == PAYMENTS,
        timeout=90,
        interval=0.5,
        what="every payment to succeed (webhooks through the gateway, or the janitor's poll)",
    )
    applied = (
        "SELECT count(DISTINCT data->>'payment_id') FROM events "
        "WHERE type = 'PaymentApplied' AND data->>'payment_id' = ANY(:p)"
    )
    wait_for(
        lambda: scalar(billing, applied, p=payment_ids) == PAYMENTS,
        timeout=60,
        interval=0.5,
        what="billing to post every payment",
    )

    issued = rows(
        billing,
        "SELECT data->>'account_number', count(*) FROM events "
        "WHERE type = 'BillIssued' AND data->>'account_number' = ANY(:a) GROUP BY 1",
        a=accounts,
    )
    assert len(issued) == ACCOUNTS, "an account got no bill"
    assert {count for _, count in issued} == {1}, "an account was billed twice"

    twice = (
        "SELECT data->>'payment_id' FROM events WHERE type = :t "
        "AND data->>'payment_id' = ANY(:p) GROUP BY 1 HAVING count(*) > 1"
    )
    assert rows(payments, twice, t="PaymentSucceeded", p=payment_ids) == []
    assert rows(billing, twice, t="PaymentApplied", p=payment_ids) == []
    posted = rows(
        billing,
        "SELECT bill_number, count(*) FROM bill_balance_changes "
        "WHERE reason = 'payment' AND payment_id = ANY(:p) GROUP BY 1",
        p=payment_ids,
    )
    assert sorted(b for b, _ in posted) == sorted(bills)
    assert {count for _, count in posted} == {1}, "a bill was posted twice"
    balances = rows(billing, "SELECT balance_due FROM bills WHERE bill_number = ANY(:b)", b=bills)
    assert {str(b) for (b,) in balances} == {"0.00"}, "a bill is not paid exactly in full"

    ours = [t for t in cluster["sandbox"].transactions() if t["reference"] in set(payment_ids)]
    charges = collections.Counter(t["reference"] for t in ours if t["type"] == "charge")
    assert set(charges) == set(payment_ids), "a payment never reached the processor"
    assert set(charges.values()) == {1}, "a card was charged twice"
    assert [t for t in ours if t["type"] != "charge"] == [], "money went back to a card"
    survivors = [r for r in cluster["replicas"] if r.alive()]
    assert {r.service for r in survivors} == {"billing", "payments"}
    assert len(survivors) == 2


def test_queues_are_quorum_queues_with_a_delivery_limit(cluster):
    """QUEUE_TYPE=quorum: every consumer, parking and RPC queue of the replicas."""
    import urllib.parse

    parts = urllib.parse.urlparse(cluster["amqp_uri"])
    api = f"http://{parts.hostname}:{os.environ.get('RABBIT_MGMT_PORT', '15672')}/api"
    vhost = urllib.parse.quote(parts.path[1:], safe="")
    queues = testing._mgmt(api, "GET", f"/queues/{vhost}", parts.username, parts.password, None)
    ours = {
        q["name"]: q
        for q in queues
        if q["name"].startswith(("evt-", "rpc-billing", "rpc-payments"))
    }
    consumer = "evt-billing-BillIssued--payments.on_bill_issued"
    assert {consumer, consumer + ".parked", "rpc-billing", "rpc-payments"} <= set(ours)
    assert {q["type"] for q in ours.values()} == {"quorum"}
    assert ours[consumer]["arguments"]["x-delivery-limit"] == 20
    assert ours[consumer]["arguments"]["x-dead-letter-routing-key"] == consumer + ".parked"
