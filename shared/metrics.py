"""Health, readiness and Prometheus metrics of one service, over HTTP on METRICS_PORT.

`Metrics` is a nameko DependencyProvider that every `KernelService` carries (and the
gateway adds). Its worker hooks see every entrypoint, so without any code in the
services it records:

* ``muniportal_rpc_duration_seconds{service,method,outcome}``: RPC latency;
* ``muniportal_http_request_duration_seconds{service,entrypoint,method,status}``;
* ``muniportal_events_handled_total`` / ``muniportal_events_failed_total``
  ``{service,consumer,source,event}``: per ``@consumes`` handler;
* ``muniportal_workers_in_flight{service}`` and ``muniportal_draining{service}``.

On each scrape (at most every `FIGURES_TTL` seconds) it reads the same figures as
`muniportal-ops stats` (`shared.ops.stats.store_figures`): log head, outbox backlog,
projector lag, consumer queue depth, dead-letter (parked) depth, emails by status.

HTTP (only when METRICS_PORT is set, e.g. in containers; `make run` leaves it unset):

* ``GET /health/live``: 200 while the process runs (liveness);
* ``GET /health/ready``: 200 when started, not draining, and the database and broker
  answer; else 503 with the reasons (readiness);
* ``GET /metrics``: Prometheus text format.

On SIGTERM `nameko run` stops the entrypoints, waits for the workers in flight, then
stops the dependencies: the drain. This provider flips readiness to 503 as soon as the
signal arrives, and keeps answering until the drain is over.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import eventlet
import eventlet.wsgi
import kombu
import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared import logs

log = logging.getLogger(__name__)

FIGURES_TTL = 5.0
READY_TTL = 2.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def metrics_port(config: Any) -> int | None:
    value = config.get("METRICS_PORT")
    if value in (None, ""):
        value = os.environ.get("METRICS_PORT")
    if value in (None, ""):
        return None
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"METRICS_PORT must be a port number, not {value!r}")
    return port


def entrypoint_kind(entrypoint: Any) -> str:
    from nameko.web.handlers import HttpRequestHandler

    from shared.messaging import Consumes
    from shared.rpc import Rpc

    if isinstance(entrypoint, Consumes):
        return "event"
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    return "other"


def http_status(result: Any, exc_info: Any) -> int:
    if exc_info is not None:
        return 500
    if isinstance(result, tuple) and result and isinstance(result[0], int):
        return result[0]
    return int(getattr(result, "status_code", 200))


class _Figures:
    """The stats figures as Prometheus gauges, read at scrape time and cached."""

    def __init__(self, provider: Metrics) -> None:
        self.provider = provider
        self._cached: tuple[float, dict[str, Any] | None] = (0.0, None)
        self._lock = threading.Lock()

    def figures(self) -> dict[str, Any] | None:
        with self._lock:
            at, row = self._cached
            if time.monotonic() - at > FIGURES_TTL:
                try:
                    row = self.provider.figures()
                except Exception as exc:  # a scrape must not fail: report the error
                    log.warning("could not read the service's figures: %s", exc)
                    row = None
                self._cached = (time.monotonic(), row)
            return row

    def describe(self) -> list[Any]:
        # Nothing at registration: collecting then would read the store before setup.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service = self.provider.service
        row = self.figures()
        up = GaugeMetricFamily(
            "muniportal_figures_up",
            "1 when the store and broker figures could be read",
            labels=["service"],
        )
        up.add_metric([service], 0 if row is None else 1)
        yield up
        if row is None:
            return
        head = GaugeMetricFamily(
            "muniportal_log_head", "Position of the log's last event", labels=["service"]
        )
        head.add_metric([service], row["head"])
        yield head
        backlog = GaugeMetricFamily(
            "muniportal_outbox_backlog",
            "Events written but not yet published by the relay",
            labels=["service"],
        )
        backlog.add_metric([service], row["relay"]["lag"])
        yield backlog
        lag = GaugeMetricFamily(
            "muniportal_projector_lag",
            "Events a projection is behind",
            labels=["service", "projection", "mode"],
        )
        for p in row["projectors"]:
            lag.add_metric([service, p["projection"], p["mode"]], p["lag"])
        yield lag
        waiting = GaugeMetricFamily(
            "muniportal_consumer_queue_depth",
            "Messages waiting in a consumer's queue",
            labels=["service", "queue"],
        )
        parked = GaugeMetricFamily(
            "muniportal_dead_letters",
            "Messages parked in a consumer's dead-letter queue",
            labels=["service", "queue"],
        )
        for c in row["consumers"]:
            if c["lag"] is not None:
                waiting.add_metric([service, c["queue"]], c["lag"])
            if c["parked"] is not None:
                parked.add_metric([service, c["queue"]], c["parked"])
        yield waiting
        yield parked
        if "emails" in row:
            emails = GaugeMetricFamily(
                "muniportal_emails",
                "Emails in the delivery log by status",
                labels=["service", "status"],
            )
            for status, count in sorted(row["emails"].items()):
                emails.add_metric([service, status], count)
            yield emails


class Metrics(DependencyProvider):
    """Latency and event counters for every entrypoint; health, readiness and /metrics."""

    def __init__(self) -> None:
        self.registry: CollectorRegistry | None = None
        self.draining = threading.Event()
        self._started: dict[Any, float] = {}
        self._server: Any = None
        self._ready_cache: tuple[float, tuple[bool, dict[str, str]]] = (0.0, (False, {}))

    # -- lifecycle ------------------------------------------------------------------------

    def setup(self) -> None:
        self.service = self.container.service_name
        config = self.container.config
        logs.configure(self.service, config)
        self.port = metrics_port(config)
        self.registry = registry = CollectorRegistry()
        labels = ["service"]
        self.rpc_latency = Histogram(
            "muniportal_rpc_duration_seconds",
            "RPC handling time",
            [*labels, "method", "outcome"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.http_latency = Histogram(
            "muniportal_http_request_duration_seconds",
            "HTTP request handling time",
            [*labels, "entrypoint", "method", "status"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.handled = Counter(
            "muniportal_events_handled",
            "Events a consumer handled (including duplicates)",
            [*labels, "consumer", "source", "event"],
            registry=registry,
        )
        self.failed = Counter(
            "muniportal_events_failed",
            "Event deliveries whose handler failed (retried or parked)",
            [*labels, "consumer", "source", "event"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "muniportal_workers_in_flight", "Workers running now", labels, registry=registry
        )
        self.in_flight.labels(self.service).set_function(lambda: len(self._started))
        self.draining_gauge = Gauge(
            "muniportal_draining", "1 while draining after SIGTERM", labels, registry=registry
        )
        self.draining_gauge.labels(self.service).set_function(lambda: int(self.draining.is_set()))
        registry.register(_Figures(self))
        self._watch_sigterm()

    def _watch_sigterm(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)
        if self.port is None or not callable(previous):
            return  # `nameko run` always installs its own handler; a test runner does not

        def on_sigterm(signum: int, frame: Any) -> None:
            self.draining.set()
            if callable(previous):
                previous(signum, frame)

        try:
            signal.signal(signal.SIGTERM, on_sigterm)
        except ValueError:  # not the main OS thread (green threads all are): no signals here
            log.warning("cannot watch SIGTERM outside the main thread; readiness ignores it")

    def start(self) -> None:
        if self.port is None:
            return
        sock = eventlet.listen(("0.0.0.0", self.port))
        self.port = sock.getsockname()[1]
        self._server = sock

        def serve() -> None:
            # Serves until stop() closes the socket, after the drain. If it ever ended
            # early, liveness would fail and the orchestrator restart the process.
            try:
                eventlet.wsgi.server(sock, self.wsgi, log_output=False, debug=False)
            except OSError as exc:
                if self._server is sock:
                    log.error("the health and metrics server stopped: %s", exc)

        self.container.spawn_managed_thread(serve)
        log.info("health and metrics on port %s", self.port)

    def stop(self) -> None:
        self.draining.set()
        if self._server is not None:
            try:
                self._server.close()
            except OSError:
                pass
            self._server = None

    def kill(self) -> None:
        self.stop()

    # -- workers --------------------------------------------------------------------------

    def get_dependency(self, worker_ctx: Any) -> Metrics:
        return self

    def worker_setup(self, worker_ctx: Any) -> None:
        self._started[worker_ctx] = time.perf_counter()
        context = worker_ctx.context_data or {}
        correlation_id = context.get("correlation_id")
        if correlation_id is None and worker_ctx.args and isinstance(worker_ctx.args[0], dict):
            correlation_id = worker_ctx.args[0].get("correlation_id")  # an event's envelope
        logs.bind(
            service=self.service,
            correlation_id=correlation_id,
            entrypoint=f"{self.service}.{worker_ctx.entrypoint.method_name}",
            call_id=worker_ctx.call_id,
        )

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        entrypoint = worker_ctx.entrypoint
        method = entrypoint.method_name
        kind = entrypoint_kind(entrypoint)
        if kind == "rpc":
            outcome = "ok" if exc_info is None else getattr(exc_info[1], "kind", "error")
            self.rpc_latency.labels(self.service, method, outcome).observe(elapsed)
        elif kind == "http":
            self.http_latency.labels(
                self.service, method, entrypoint.method, str(http_status(result, exc_info))
            ).observe(elapsed)
        elif kind == "event":
            labels = (self.service, method, entrypoint.source_service, entrypoint.event_type)
            (self.handled if exc_info is None else self.failed).labels(*labels).inc()

    def observe_http(self, entrypoint: str, method: str, status: int, seconds: float) -> None:
        """Record a request served outside a nameko worker (the gateway's fast path)."""
        self.http_latency.labels(self.service, entrypoint, method, str(status)).observe(seconds)

    def worker_teardown(self, worker_ctx: Any) -> None:
        self._started.pop(worker_ctx, None)
        logs.unbind()

    # -- figures and readiness ------------------------------------------------------------

    def _store(self) -> Any:
        from shared.nameko import Store

        for dependency in self.container.dependencies:
            if isinstance(dependency, Store) and dependency.store is not None:
                return dependency.store
        return None

    def figures(self) -> dict[str, Any] | None:
        from shared.ops.stats import store_figures

        store = self._store()
        if store is None:
            return None
        return store_figures(store, self.service, self.container.config.get("AMQP_URI"))

    def readiness(self) -> tuple[bool, dict[str, str]]:
        if self.draining.is_set():
            return False, {"service": "draining"}
        if not self.container.started:
            return False, {"service": "starting"}
        at, answer = self._ready_cache
        if time.monotonic() - at < READY_TTL:
            return answer
        checks: dict[str, str] = {}
        store = self._store()
        if store is not None:
            try:
                with store.events.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            with kombu.Connection(self.container.config["AMQP_URI"], connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"unavailable: {type(exc).__name__}"
        answer = (all(v == "ok" for v in checks.values()), checks)
        self._ready_cache = (time.monotonic(), answer)
        return answer

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(self.registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/health/live":
            return self._json(start_response, 200, {"service": self.service, "status": "alive"})
        if path == "/health/ready":
            ready, checks = self.readiness()
            body = {"service": self.service, "status": "ready" if ready else "not ready", **checks}
            return self._json(start_response, 200 if ready else 503, body)
        return self._json(
            start_response,
            404,
            {"error": "not_found", "paths": ["/health/live", "/health/ready", "/metrics"]},
        )

    @staticmethod
    def _json(start_response: Any, status: int, body: dict[str, Any]) -> list[bytes]:
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        )
        return [json.dumps(body).encode()]
