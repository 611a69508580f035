"""The outbox relay: every appended event reaches RabbitMQ at least once, whatever happens.

Each test binds a queue of its own to the service's event exchange and checks
that every event in the log arrives there: after a kill -9 of the relay mid-batch,
after the broker drops the relay's connection, and across a broker restart.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import pika
import pytest

from shared import testing
from shared.events import NewEvent
from shared.relay import RELAY_CHECKPOINT, OutboxRelay, events_exchange
from shared.store import EventStore
from shared.testing import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def relay_store(db_url):
    store = EventStore(f"relaytest{uuid.uuid4().hex[:6]}", db_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def tap(amqp_uri, relay_store):
    """A durable queue bound to every event type of the store's exchange."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = conn.channel()
    exchange = events_exchange(relay_store.service)
    queue = f"tap-{relay_store.service}"
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, "#")
    conn.close()

    def drain(expected: int, timeout: float = 60) -> list[str]:
        ids: list[str] = []
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        ch = connection.channel()
        ch.basic_qos(prefetch_count=1000)
        deadline = time.monotonic() + timeout
        for method, props, _body in ch.consume(queue, auto_ack=True, inactivity_timeout=2):
            if method is not None:
                assert props.content_type == "application/json"
                assert props.delivery_mode == 2
                ids.append(props.message_id)
            if (method is None and len(set(ids)) >= expected) or time.monotonic() > deadline:
                break
        ch.cancel()
        connection.close()
        return ids

    return drain


def fill(store: EventStore, n: int, prefix: str = "s") -> set[str]:
    ids: set[str] = set()
    for start in range(0, n, 1000):
        with store.transaction() as conn:
            envs = store.append_many(
                [
                    (f"{prefix}-{i}", [NewEvent("Filled", {"i": i})], 0)
                    for i in range(start, min(start + 1000, n))
                ],
                conn=conn,
            )
        ids.update(e.event_id for e in envs)
    return ids


def relay_process(store: EventStore, amqp_uri: str, batch: int = 500) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.relay",
            store.service,
            "--database-url",
            store.url,
            "--amqp-uri",
            amqp_uri,
            "--batch-size",
            str(batch),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_relay_killed_mid_batch_loses_nothing(relay_store, amqp_uri, tap):
    expected = fill(relay_store, 10_000)
    proc = relay_process(relay_store, amqp_uri, batch=500)
    wait_for(
        lambda: relay_store.checkpoint(RELAY_CHECKPOINT) >= 1000,
        timeout=60,
        interval=0.005,
        what="the relay to be under way",
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = relay_store.checkpoint(RELAY_CHECKPOINT)
    assert stopped_at < 10_000, "killed while it still had work"
    proc = relay_process(relay_store, amqp_uri, batch=500)
    try:
        wait_for(
            lambda: relay_store.checkpoint(RELAY_CHECKPOINT) == 10_000,
            timeout=90,
            what="the restarted relay to finish",
        )
    finally:
        proc.kill()
        proc.wait()
    received = tap(len(expected))
    assert set(received) == expected, "every event reached the broker"
    assert len(received) - len(expected) <= 1000, "at most the unconfirmed batches repeat"


def _close_relay_connections(amqp_uri: str, name: str) -> int:
    parts = urllib.parse.urlparse(amqp_uri)
    api = f"http://{parts.hostname}:15672/api"
    conns = testing._mgmt(api, "GET", "/connections", "guest", "guest", None)
    closed = 0
    for conn in conns:
        if (conn.get("client_properties") or {}).get("connection_name") == name:
            testing._mgmt(
                api,
                "DELETE",
                "/connections/" + urllib.parse.quote(conn["name"]),
                "guest",
                "guest",
                None,
            )
            closed += 1
    return closed


def _run_in_thread(relay: OutboxRelay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread


def test_relay_reconnects_when_the_broker_drops_it(relay_store, amqp_uri, tap):
    relay = OutboxRelay(relay_store, amqp_uri, batch_size=200, poll_interval=0.05)
    thread = _run_in_thread(relay)
    try:
        expected = fill(relay_store, 500, "before")
        relay.wake()
        wait_for(lambda: relay_store.checkpoint(RELAY_CHECKPOINT) == 500, timeout=30)
        closed = wait_for(
            lambda: _close_relay_connections(amqp_uri, f"{relay_store.service}-relay"),
            timeout=15,
            what="the relay's connection to show up",
        )
        assert closed >= 1
        expected |= fill(relay_store, 500, "after")
        relay.wake()
        wait_for(
            lambda: relay_store.checkpoint(RELAY_CHECKPOINT) == 1000,
            timeout=60,
            what="the relay to reconnect and catch up",
        )
    finally:
        relay.stop()
        thread.join(10)
    assert set(tap(len(expected))) == expected


@pytest.mark.broker_restart
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_relay_survives_a_broker_restart(relay_store, amqp_uri, tap):
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or urllib.parse.urlparse(amqp_uri).hostname not in ("127.0.0.1", "localhost"):
        pytest.fail(
            "this test restarts the local broker: it needs rabbitmqctl and a "
            "RabbitMQ on localhost (AMQP_URI)"
        )
    relay = OutboxRelay(relay_store, amqp_uri, batch_size=200, poll_interval=0.05)
    thread = _run_in_thread(relay)
    expected: set[str] = set()
    try:
        expected |= fill(relay_store, 300, "before")
        relay.wake()
        wait_for(lambda: relay_store.checkpoint(RELAY_CHECKPOINT) == 300, timeout=30)
        subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=120)
        try:
            expected |= fill(relay_store, 300, "during")  # appends never need the broker
            relay.wake()
            time.sleep(1)
        finally:
            subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=120)
            subprocess.run([ctl, "await_startup"], check=False, capture_output=True, timeout=120)
        expected |= fill(relay_store, 300, "after")
        relay.wake()
        wait_for(
            lambda: relay_store.checkpoint(RELAY_CHECKPOINT) == 900,
            timeout=120,
            what="the relay to catch up after the restart",
        )
    finally:
        relay.stop()
        thread.join(10)
    assert set(tap(len(expected), timeout=90)) == expected


def test_relay_keeps_running_while_its_database_is_unreachable(amqp_uri):
    store = EventStore("gone", "postgresql://postgres@127.0.0.1:5432/no_such_database_here")
    relay = OutboxRelay(store, amqp_uri, poll_interval=0.05)
    thread = _run_in_thread(relay)
    time.sleep(1.0)
    assert thread.is_alive(), "a database outage must not kill the relay"
    relay.stop()
    thread.join(5)
    assert not thread.is_alive(), "and it still stops promptly"
    store.dispose()
