"""The billing service on real RabbitMQ and PostgreSQL: RPCs, consumed events, published events,
and the penalty job on exactly one replica.

Other services' events are published the way their relays publish them
(ConfirmingPublisher, envelopes whose source is accounts or payments).
"""

import base64
import datetime as dt
import io
import json
import uuid

import kombu
import pytest
from pypdf import PdfReader

from services.billing.import_bills import import_bills
from services.billing.service import BillingService
from shared import testing
from shared.errors import InvalidInput, NotFound
from shared.relay import ConfirmingPublisher
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.billing.conftest import (
    account_imported,
    customer_imported,
    envelope,
    open_billing_store,
    payment_reversed,
    payment_succeeded,
    seed_copy,
    unique,
    water_services,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def config(amqp_uri, url, **extra):
    return {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": url,
        "RPC_TIMEOUT": 5,
        "MAX_DELIVERY_ATTEMPTS": 3,
        "max_workers": 10,
        "serializer": "json",
        "PENALTY_INTERVAL": 0,
        **extra,
    }


@pytest.fixture(scope="module")
def database(pg_base):
    url = testing.create_database(pg_base)
    yield url
    testing.drop_database(pg_base, url)


@pytest.fixture(scope="module")
def seeded(database, tmp_path_factory):
    from services.billing.schedule import load_schedule

    store = open_billing_store(database)
    numbers = seed_copy(store, load_schedule(), tmp_path_factory.mktemp("seed"))
    store.dispose()
    return numbers


@pytest.fixture(scope="module")
def service(amqp_uri, database, seeded):
    from nameko.containers import ServiceContainer

    container = ServiceContainer(BillingService, config(amqp_uri, database))
    container.start()
    yield container
    container.kill()


@pytest.fixture(scope="module")
def cluster(amqp_uri, service):
    with rpc_client(amqp_uri) as c:
        yield c.billing


def publish(amqp_uri, *envelopes):
    by_source = {}
    for env in envelopes:
        by_source.setdefault(env.source, []).append(env)
    for source, items in by_source.items():
        publisher = ConfirmingPublisher(amqp_uri, f"{source}.events", name="test-publisher")
        try:
            publisher.publish(items)
        finally:
            publisher.close()


@pytest.fixture
def balance_events(amqp_uri):
    """Collect BillBalanceChanged events as billing publishes them."""
    conn = kombu.Connection(amqp_uri)
    channel = conn.channel()
    queue = kombu.Queue(
        f"test-balances-{uuid.uuid4().hex[:8]}",
        exchange=kombu.Exchange("billing.events", type="topic", durable=True),
        routing_key="BillBalanceChanged",
        auto_delete=True,
    )(channel)
    queue.declare()
    seen = []

    def received():
        while (message := queue.get(no_ack=True)) is not None:
            seen.append(json.loads(message.body))
        return seen

    yield received
    queue.delete()
    conn.release()


def test_the_resident_sees_the_seed_bills(cluster, seeded):
    n = seeded
    bills = cluster.account_bills(n["28624"])
    assert [(b["bill_number"], b["balance_due"]) for b in bills["bills"]] == [
        (n["98820"], "134.46"),
        (n["98465"], "127.11"),
    ]
    assert bills["total_due"] == "261.57" and bills["bill_years"]["from"] == 2015
    detail = cluster.bill(n["98465"])
    assert (detail["total"], detail["due_date"], detail["meter_number"]) == (
        "127.11",
        "2017-01-23",
        "68596455",
    )
    pdf = cluster.bill_pdf(n["98465"])
    assert pdf["filename"] == f"bill-{n['98465']}.pdf"
    text = PdfReader(io.BytesIO(base64.b64decode(pdf["content_base64"]))).pages[0].extract_text()
    assert "127.11" in text and n["98465"] in text
    brief = cluster.bill_brief(n["98465"])
    assert (brief["balance_due"], brief["account_number"], brief["description"]) == (
        "127.11",
        n["28624"],
        "Utilities",
    )
    summary = cluster.account_summary(n["28624"])
    assert (
        summary["amount_due_now"] == "261.57"
        and summary["payments"][0]["last_posted"] == "2016-08-26"
    )
    history = cluster.consumption(n["28624"], "15000")
    assert [p["usage_units"] for p in history["services"][0]["periods"]] == ["12", "12", "10"]
    invoices = cluster.customer_invoices(n["12345"])
    assert invoices["total_balance_due"] == "500.00"
    assert cluster.find_invoice(n["12345"], n["63295"]) == {
        "bill_number": n["63295"],
        "customer_id": n["12345"],
    }


def test_errors_keep_their_kind_across_rpc(cluster, seeded):
    with pytest.raises(NotFound):
        cluster.bill("no-such-bill")
    with pytest.raises(InvalidInput) as err:
        cluster.find_invoice(seeded["12345"], seeded["98465"])
    assert err.value.code == "no_account_match"
    with pytest.raises(InvalidInput) as err:
        cluster.account_bills(seeded["28624"], "everything")
    assert "status" in err.value.errors


def test_billing_learns_accounts_from_their_events(amqp_uri, cluster):
    acct, meter = unique(), unique("M")
    publish(amqp_uri, customer_imported("7001", "ANA RESIDENT"))
    publish(
        amqp_uri,
        account_imported(acct, "7001", cycle="9", services=water_services(meter, "5/8", "15100")),
    )
    services = wait_for(
        lambda: cluster.account_summary(acct)["services"],
        timeout=15,
        what="billing to learn the account",
    )
    assert [(s["code"], s["has_consumption"]) for s in services] == [
        ("10000", False),
        ("15100", False),
    ]


def test_a_payment_changes_the_balance_and_billing_publishes_it(
    amqp_uri, cluster, seeded, balance_events
):
    n = seeded
    co = unique("co")
    publish(
        amqp_uri,
        envelope(
            "payments",
            "CheckoutOpened",
            {
                "checkout_id": co,
                "owner": "user:ana",
                "bills": [{"bill_number": n["98465"], "amount": "127.11"}],
                "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat(),
            },
        ),
    )
    wait_for(
        lambda: cluster.bill_brief(n["98465"])["pending_web_payment"],
        timeout=15,
        what="the pending flag",
    )
    paid = payment_succeeded([(n["98465"], n["28624"], "27.11")], checkout_id=co)
    publish(amqp_uri, paid)
    wait_for(
        lambda: cluster.bill(n["98465"])["balance_due"] == "100.00",
        timeout=15,
        what="the payment applied",
    )
    assert not cluster.bill_brief(n["98465"])["pending_web_payment"]
    event = wait_for(
        lambda: next(
            (e for e in balance_events() if e["data"]["payment_id"] == paid.data["payment_id"]),
            None,
        ),
        timeout=15,
        what="BillBalanceChanged on billing.events",
    )
    assert event["source"] == "billing" and event["data"]["balance_due"] == "100.00"
    assert event["data"]["reason"] == "payment" and event["causation_id"] == paid.event_id

    publish(amqp_uri, payment_reversed("PaymentReturned", paid.data["payment_id"]))
    wait_for(
        lambda: cluster.bill(n["98465"])["balance_due"] == "127.11", timeout=15, what="the return"
    )
    assert cluster.bill(n["98465"])["postings"][-1]["kind"] == "return"
    assert cluster.account_bills(n["28624"])["total_due"] == "261.57"


def test_penalties_run_on_exactly_one_replica(amqp_uri, pg_url, tmp_path, schedule):
    from nameko.containers import ServiceContainer

    from services.billing.dependencies import PenaltyJob

    store = open_billing_store(pg_url)
    number = unique()
    path = tmp_path / "late.csv"
    path.write_text(
        "bill_number,row_type,account_number,customer_id,customer_name,statement_date,due_date,"
        f"late_penalty,description,amount\n{number},bill,{unique()},1,ANA,2026-08-01,2026-09-01,yes,,\n"
        f"{number},charge,,,,,,,FEE,80.00\n"
    )
    import_bills(store, path, schedule=schedule)
    cfg = config(amqp_uri, pg_url, PENALTY_INTERVAL=0.2)
    replicas = [ServiceContainer(BillingService, cfg) for _ in range(2)]
    try:
        for container in replicas:
            container.start()
        jobs = [next(d for d in c.dependencies if isinstance(d, PenaltyJob)) for c in replicas]
        wait_for(lambda: sum(j.passes for j in jobs) >= 3, timeout=20, what="penalty passes")
        assert [j.holds_lease for j in jobs].count(True) == 1
        assert [j.passes > 0 for j in jobs].count(True) == 1  # the other never ran a pass
        penalties = [
            e for e in store.events.read_stream(f"bill-{number}") if e.type == "PenaltyAssessed"
        ]
        assert len(penalties) == 1 and penalties[0].data["amount"] == "8.00"
        holder = next(i for i, j in enumerate(jobs) if j.holds_lease)
        replicas[holder].stop()
        other = jobs[1 - holder]
        wait_for(
            lambda: other.holds_lease and other.passes > 0, timeout=20, what="the other replica"
        )
        penalties = [
            e for e in store.events.read_stream(f"bill-{number}") if e.type == "PenaltyAssessed"
        ]
        assert len(penalties) == 1
    finally:
        for container in replicas:
            container.kill()
        store.dispose()
