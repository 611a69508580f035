"""Parked messages: list them, send them back to their queue, or drop them.

A plain AMQP client (pika) serves better than nameko here: the tool inspects
queues it does not consume, one message at a time, and must leave untouched
messages exactly where they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pika

from shared.messaging import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    PARKED_AT_HEADER,
    QUEUE_HEADER,
    load_topology,
    parked_queue_name,
    queue_name,
)
from shared.ops.registry import UnknownName


def consumer_queues(service: str) -> list[str]:
    out = []
    for item in load_topology().get("consumers", []):
        consumer_service, _, method = item["consumer"].partition(".")
        if consumer_service == service:
            out.append(queue_name(item["source"], item["event"], consumer_service, method))
    return out


def parked_queues(service: str, only: str | None = None) -> list[str]:
    queues = consumer_queues(service)
    if only:
        wanted = only[: -len(".parked")] if only.endswith(".parked") else only
        if wanted not in queues:
            raise UnknownName(f"{service} has no consumer queue {only!r}")
        queues = [wanted]
    return [parked_queue_name(q) for q in queues]


def connect(amqp_uri: str) -> pika.BlockingConnection:
    uri = amqp_uri.replace("pyamqp://", "amqp://", 1)
    return pika.BlockingConnection(pika.URLParameters(uri))


def _describe(queue: str, method: Any, props: Any, body: bytes) -> dict[str, Any]:
    headers = props.headers or {}
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        payload = {}
    return {
        "queue": queue,
        "message_id": props.message_id or payload.get("event_id", ""),
        "type": payload.get("type", ""),
        "attempts": headers.get(ATTEMPTS_HEADER, ""),
        "parked_at": headers.get(PARKED_AT_HEADER, ""),
        "error": (
            f"{headers.get(ERROR_TYPE_HEADER, '')}: {headers.get(ERROR_HEADER, '')}"
            if headers.get(ERROR_HEADER)
            else "(dead-lettered by the broker)"
        ),
        "origin": headers.get(QUEUE_HEADER) or queue[: -len(".parked")],
    }


def _existing(channel: Any, queue: str) -> bool:
    try:
        channel.queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False


def list_parked(amqp_uri: str, queues: Iterable[str], limit: int = 100) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    conn = connect(amqp_uri)
    try:
        for queue in queues:
            channel = conn.channel()
            if not _existing(channel, queue):
                continue
            # Read without acking; closing the channel puts every message back in order.
            while len(rows) < limit:
                method, props, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                rows.append(_describe(queue, method, props, body))
            channel.close()
    finally:
        conn.close()
    return rows


def act(
    amqp_uri: str, queues: Iterable[str], action: str, *, ids: set[str], everything: bool
) -> list[str]:
    """Retry (back to the original queue, attempts reset) or drop parked messages."""
    done: list[str] = []
    conn = connect(amqp_uri)
    try:
        for queue in queues:
            channel = conn.channel()
            if not _existing(channel, queue):
                continue
            channel.confirm_delivery()
            seen = 0
            depth = channel.queue_declare(queue, passive=True).method.message_count
            while seen < depth:
                method, props, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                seen += 1
                info = _describe(queue, method, props, body)
                if not everything and info["message_id"] not in ids:
                    continue  # left unacked: back in the queue when the channel closes
                if action == "retry":
                    headers = {
                        k: v
                        for k, v in (props.headers or {}).items()
                        if k
                        not in (
                            ERROR_HEADER,
                            ERROR_TYPE_HEADER,
                            PARKED_AT_HEADER,
                            ATTEMPTS_HEADER,
                            "x-death",
                            "x-first-death-queue",
                            "x-first-death-reason",
                            "x-first-death-exchange",
                        )
                    }
                    channel.basic_publish(
                        "",
                        info["origin"],
                        body,
                        pika.BasicProperties(
                            content_type=props.content_type,
                            content_encoding=props.content_encoding,
                            delivery_mode=2,
                            message_id=props.message_id,
                            headers=headers,
                        ),
                    )
                channel.basic_ack(method.delivery_tag)
                done.append(info["message_id"])
            channel.close()
    finally:
        conn.close()
    return done


def depth(amqp_uri: str, queues: Iterable[str]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    conn = connect(amqp_uri)
    try:
        for queue in queues:
            channel = conn.channel()
            try:
                out[queue] = channel.queue_declare(queue, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                out[queue] = None
    finally:
        conn.close()
    return out
