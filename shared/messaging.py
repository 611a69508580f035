"""Consuming other services' events: exactly-once effects over at-least-once delivery.

    class PaymentsService(KernelService):
        @consumes("billing", "BillIssued")
        def on_bill_issued(self, event: Envelope, uow: UnitOfWork) -> None:
            ...

For each delivery the kernel validates and upcasts the envelope, then, in one
transaction: claims the inbox row (consumer, event_id) (a duplicate stops
here), applies inline projections, runs the handler and commits. A failure is
retried with backoff at the tail of the queue, so it never blocks the events
behind it; after MAX_DELIVERY_ATTEMPTS it is parked in ``<queue>.parked`` with
the error, where ``muniportal-ops dead-letters`` can show, retry or drop it.
A failure that is weather (database or broker down) is retried without limit,
so an outage parks nothing.

Republished events carry a replay flag; side-effect dependencies read it and
stand down (see `shared.nameko.SideEffect`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import eventlet
import yaml
from kombu import Exchange, Queue
from nameko.amqp.publish import get_producer
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler
from nameko.standalone.events import get_event_exchange

from shared.errors import InvalidInput, MuniportalError, TransientError

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-muniportal-attempts"
ERROR_HEADER = "x-muniportal-error"
ERROR_TYPE_HEADER = "x-muniportal-error-type"
QUEUE_HEADER = "x-muniportal-queue"
PARKED_AT_HEADER = "x-muniportal-parked-at"
TOPOLOGY_FILE = Path(__file__).resolve().parent.parent / "deploy" / "rabbitmq" / "topology.yaml"


def queue_name(source: str, event_type: str, service: str, method: str) -> str:
    """nameko's name for a service-pool event handler queue."""
    return f"evt-{source}-{event_type}--{service}.{method}"


def parked_queue_name(queue: str) -> str:
    return f"{queue}.parked"


def queue_arguments(config: Mapping[str, Any], queue: str) -> dict[str, Any]:
    """Arguments every declarer of a consumer queue must agree on."""
    args: dict[str, Any] = {
        # The broker parks what we cannot: a message whose handler kills the process
        # again and again (quorum queues count those deliveries).
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": parked_queue_name(queue),
    }
    if queue_type(config) == "quorum":
        args["x-queue-type"] = "quorum"
        args["x-delivery-limit"] = int(config.get("DELIVERY_LIMIT") or 20)
    return args


def queue_type(config: Mapping[str, Any]) -> str:
    value = str(config.get("QUEUE_TYPE") or os.environ.get("QUEUE_TYPE") or "classic").lower()
    if value not in ("classic", "quorum"):
        raise ValueError(f"QUEUE_TYPE must be classic or quorum, not {value!r}")
    return value


def parked_queue(config: Mapping[str, Any], queue: str) -> Queue:
    args = {"x-queue-type": "quorum"} if queue_type(config) == "quorum" else {}
    return Queue(
        parked_queue_name(queue), durable=True, auto_delete=False, queue_arguments=args or None
    )


def consumer_queue(
    config: Mapping[str, Any], source: str, event_type: str, service: str, method: str
) -> Queue:
    name = queue_name(source, event_type, service, method)
    return Queue(
        name,
        exchange=get_event_exchange(source, config),
        routing_key=event_type,
        durable=True,
        auto_delete=False,
        queue_arguments=queue_arguments(config, name),
    )


def max_attempts(config: Mapping[str, Any]) -> int:
    return int(config.get("MAX_DELIVERY_ATTEMPTS") or 5)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, MuniportalError) and exc.kind == "unavailable":
        return True
    return isinstance(exc, ConnectionError | TimeoutError | eventlet.Timeout)


class Consumes(EventHandler):
    """nameko event handler with queue arguments, retries and a parking queue."""

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        name = self.queue.name
        self.queue = consumer_queue(
            config,
            self.source_service,
            self.event_type,
            self.container.service_name,
            self.method_name,
        )
        self.parked = parked_queue(config, name)
        self.max_attempts = max_attempts(config)

    def handle_result(
        self, message: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> Any:
        if exc_info is not None:
            try:
                self._retry_or_park(message, exc_info[1])
            except Exception:  # could not republish: let the broker redeliver it
                log.exception("could not retry or park a message from %s", self.queue.name)
                self.queue_consumer.requeue_message(message)
                return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _retry_or_park(self, message: Any, exc: BaseException) -> None:
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0))
        transient = is_transient(exc)
        if not transient:
            attempts += 1
        poison = isinstance(exc, InvalidInput) and exc.code == "malformed_envelope"
        if poison or attempts >= self.max_attempts:
            headers.update(
                {
                    ATTEMPTS_HEADER: attempts,
                    ERROR_HEADER: str(exc)[:2000],
                    ERROR_TYPE_HEADER: type(exc).__name__,
                    QUEUE_HEADER: self.queue.name,
                    PARKED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(),
                }
            )
            log.error(
                "parked a message from %s after %s attempts: %s", self.queue.name, attempts, exc
            )
            self._publish(message, self.parked.name, headers, declare=[self.parked])
            return
        # Back off in this worker, then go to the tail: the queue keeps flowing.
        time.sleep(min(0.1 * 2 ** min(attempts, 8), 10.0) if not transient else 1.0)
        headers[ATTEMPTS_HEADER] = attempts
        self._publish(message, self.queue.name, headers)

    def _publish(
        self,
        message: Any,
        routing_key: str,
        headers: dict[str, Any],
        declare: list[Queue] | None = None,
    ) -> None:
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        with get_producer(amqp_uri) as producer:
            producer.publish(
                message.body,
                exchange="",
                routing_key=routing_key,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                declare=declare or [],
                retry=True,
            )


def consumes(source: str, event_type: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle another service's event exactly once; the handler gets (event, uow)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def entry(self: Any, payload: Any) -> Any:
            from shared.events import Envelope

            try:
                envelope = Envelope.from_wire(payload)
            except InvalidInput as exc:
                raise InvalidInput(exc.detail, exc.errors, code="malformed_envelope") from exc
            store = find_store(self)
            consumer = f"{store.service}.{fn.__name__}"
            store.consume(consumer, envelope, lambda uow: fn(self, envelope, uow))

        entry.__consumes__ = (source, event_type)  # type: ignore[attr-defined]
        return Consumes.decorator(source, event_type)(entry)

    return decorate


def find_store(service_instance: Any) -> Any:
    from shared.nameko import WorkerStore

    for value in vars(service_instance).values():
        if isinstance(value, WorkerStore):
            return value
    raise RuntimeError(f"{type(service_instance).__name__} has no Store dependency")


# -- topology -----------------------------------------------------------------------------


def load_topology(path: Path | str | None = None) -> dict[str, Any]:
    """The topology file, plus one file per consuming service in ``consumers/`` beside it."""
    path = Path(path or os.environ.get("MUNIPORTAL_TOPOLOGY") or TOPOLOGY_FILE)
    with open(path) as fh:
        topology = yaml.safe_load(fh) or {}
    topology.setdefault("exchanges", [])
    topology.setdefault("consumers", [])
    extra_dir = path.parent / "consumers"
    if extra_dir.is_dir():
        for extra in sorted(extra_dir.glob("*.yaml")):
            with open(extra) as fh:
                topology["consumers"].extend((yaml.safe_load(fh) or {}).get("consumers", []))
    return topology


def topology_declarations(
    config: Mapping[str, Any], topology: Mapping[str, Any] | None = None
) -> list[Exchange | Queue]:
    """Everything the services declare at start, so no event is published into the void."""
    if topology is None:
        topology = load_topology(config.get("TOPOLOGY_FILE") or None)
    out: list[Exchange | Queue] = []
    for source in topology.get("exchanges", []):
        out.append(get_event_exchange(source, config))
    for item in topology.get("consumers", []):
        service, _, method = item["consumer"].partition(".")
        queue = consumer_queue(config, item["source"], item["event"], service, method)
        out.append(queue)
        out.append(parked_queue(config, queue.name))
    return out
