"""Outbox relay throughput: events/s from the log to RabbitMQ with publisher confirms.

Reference, in the same run: raw pika publishing the same envelopes (same bodies,
properties and routing) with confirms pipelined through a SelectConnection.
Targets (issue 2): relay >= 70% of the reference and >= 3,000 events/s.
"""

from __future__ import annotations

import json

import pika

from bench.common import pg_database, rate, show, sqlite_database, timed, vhost
from shared.events import NewEvent
from shared.relay import OutboxRelay, events_exchange
from shared.store import EventStore

EVENTS = 20_000


def _fill(store: EventStore) -> None:
    for start in range(0, EVENTS, 1000):
        with store.transaction() as conn:
            store.append_many(
                [
                    (f"r-{i}", [NewEvent("Relayed", {"i": i, "memo": "x" * 40})], 0)
                    for i in range(start, start + 1000)
                ],
                conn=conn,
            )


def _bind_sink(amqp_uri: str, exchange: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    ch = conn.channel()
    ch.exchange_declare(exchange, "topic", durable=True)
    ch.queue_declare("bench-sink", durable=True)
    ch.queue_bind("bench-sink", exchange, "#")
    ch.queue_purge("bench-sink")
    conn.close()


def _pika_reference(amqp_uri: str, exchange: str, bodies: list[bytes], window: int = 1000):
    state = {"sent": 0, "acked": 0}

    def on_open(connection):
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel):
        state["channel"] = channel
        channel.confirm_delivery(on_confirm)
        pump()

    def pump():
        channel = state["channel"]
        while state["sent"] < len(bodies) and state["sent"] - state["acked"] < window:
            channel.basic_publish(
                exchange,
                "Relayed",
                bodies[state["sent"]],
                pika.BasicProperties(
                    content_type="application/json", content_encoding="utf-8", delivery_mode=2
                ),
            )
            state["sent"] += 1

    def on_confirm(frame):
        state["acked"] = max(state["acked"], frame.method.delivery_tag)
        if state["acked"] >= len(bodies):
            connection.close()
        else:
            pump()

    connection = pika.SelectConnection(
        pika.URLParameters(amqp_uri),
        on_open_callback=on_open,
        on_close_callback=lambda c, e: c.ioloop.stop(),
    )
    _, seconds = timed(connection.ioloop.start)
    return rate(len(bodies), seconds)


def measure(url: str, label: str, amqp_uri: str) -> dict[str, float]:
    store = EventStore("benchrelay", url)
    store.migrate()
    _fill(store)
    exchange = events_exchange(store.service)
    _bind_sink(amqp_uri, exchange)
    relay = OutboxRelay(store, amqp_uri, batch_size=1000)
    published, seconds = timed(relay.publish_pending)
    relay.publisher.close()
    assert published == EVENTS  # noqa: S101 - a benchmark that lost events is no benchmark
    bodies = [
        json.dumps(e.to_wire(), separators=(",", ":")).encode() for e in store.read_all(0, EVENTS)
    ]
    _bind_sink(amqp_uri, exchange)
    reference = _pika_reference(amqp_uri, exchange, bodies)
    figures = {
        "relay_events_per_s": rate(EVENTS, seconds),
        "pika_pipelined_reference_per_s": reference,
    }
    figures["relay_vs_reference"] = round(figures["relay_events_per_s"] / reference, 3)
    store.dispose()
    for key, value in figures.items():
        show(f"{label} {key}", value)
    return figures


def main() -> dict[str, object]:
    with vhost() as amqp_uri:
        with pg_database() as url:
            pg = measure(url, "postgresql", amqp_uri)
        with sqlite_database() as url:
            lite = measure(url, "sqlite", amqp_uri)
    return {
        "events": EVENTS,
        "postgresql": pg,
        "sqlite": lite,
        "targets": {"relay_vs_reference": 0.7, "relay_events_per_s": 3000},
    }


if __name__ == "__main__":
    main()
