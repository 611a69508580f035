"""Health, readiness, drain on SIGTERM, Prometheus metrics and JSON logs.

* A kernel service run by `nameko run` in its own process (tests/deploy/drain_service.py):
  readiness, liveness, RPC and HTTP latency histograms, a SIGTERM that arrives while an
  RPC is in flight (readiness turns 503 at once, the RPC still answers, exit status 0),
  and JSON log lines carrying the caller's correlation id.
* The kernel's example pair (ledger -> tally) in this process: events handled and failed
  per consumer, dead-letter depth, outbox backlog and projector lag on /metrics, and
  `muniportal-ops stats` reporting the same figures.
* Notifications' delivery log: emails by status, on /metrics' source and in ops stats.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from shared import testing
from shared.events import NewEvent
from shared.metrics import Metrics
from shared.ops import stats
from shared.rpc import rpc_client
from shared.testing import wait_for

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "tests" / "kernel" / "example"


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


@pytest.fixture(scope="module")
def drainer(amqp_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("drainer")
    config = directory / "config.yaml"
    web_port, metrics_port = testing.free_port(), testing.free_port()
    config.write_text(
        yaml.safe_dump(
            {
                "AMQP_URI": amqp_uri,
                "QUEUE_TYPE": os.environ.get("QUEUE_TYPE", "classic"),
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{web_port}",
                "serializer": "json",
                "max_workers": 4,
                "LOGGING": {
                    "version": 1,
                    "disable_existing_loggers": False,
                    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(message)s"}},
                    "handlers": {
                        "console": {
                            "class": "logging.StreamHandler",
                            "formatter": "plain",
                            "stream": "ext://sys.stdout",
                        }
                    },
                    "root": {"level": "INFO", "handlers": ["console"]},
                },
            }
        )
    )
    log = directory / "drainer.log"
    env = {
        **os.environ,
        "METRICS_PORT": str(metrics_port),
        "LOG_FORMAT": "json",
        "PYTHONWARNINGS": "ignore",
    }
    proc = subprocess.Popen(
        [str(BIN / "nameko"), "run", "--config", str(config), "tests.deploy.drain_service"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{metrics_port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited:\n{log.read_text()[-3000:]}")
        return requests.get(base + "/health/ready", timeout=2).status_code == 200

    wait_for(ready, timeout=60, interval=0.2, what="the drainer service to be ready")
    yield {"proc": proc, "base": base, "web": f"http://127.0.0.1:{web_port}", "log": log}
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_health_readiness_latency_drain_and_json_logs(drainer, amqp_uri):
    base = drainer["base"]
    live = requests.get(base + "/health/live", timeout=5)
    assert live.status_code == 200 and live.json()["status"] == "alive"
    ready = requests.get(base + "/health/ready", timeout=5).json()
    assert ready == {"service": "drainer", "status": "ready", "broker": "ok"}
    assert requests.get(drainer["web"] + "/hello", timeout=5).text == "hello"
    with rpc_client(amqp_uri, timeout=10) as services:
        assert services.drainer.ping()["status"] == "ok"
    text = requests.get(base + "/metrics", timeout=5).text
    assert (
        metric(
            text,
            "muniportal_rpc_duration_seconds_count",
            service="drainer",
            method="ping",
            outcome="ok",
        )
        == 1
    )
    assert (
        metric(
            text,
            "muniportal_http_request_duration_seconds_count",
            service="drainer",
            entrypoint="hello",
            method="GET",
            status="200",
        )
        == 1
    )

    correlation_id = f"corr-{uuid.uuid4().hex[:8]}"
    with ClusterRpcProxy(
        {"AMQP_URI": amqp_uri}, timeout=30, context_data={"correlation_id": correlation_id}
    ) as proxy:
        reply = proxy.drainer.slow.call_async(3)
        wait_for(
            lambda: (
                metric(
                    requests.get(base + "/metrics", timeout=5).text,
                    "muniportal_workers_in_flight",
                    service="drainer",
                )
                == 1
            ),
            timeout=10,
            what="the slow RPC to be in flight",
        )
        drainer["proc"].send_signal(signal.SIGTERM)
        wait_for(
            lambda: requests.get(base + "/health/ready", timeout=2).status_code == 503,
            timeout=5,
            what="readiness to turn 503 on SIGTERM",
        )
        draining = requests.get(base + "/health/ready", timeout=2).json()
        assert draining["service"] == "draining"
        assert requests.get(base + "/health/live", timeout=2).status_code == 200
        assert reply.result() == "done"  # the in-flight work finished during the drain
    assert drainer["proc"].wait(30) == 0

    lines = [line for line in drainer["log"].read_text().splitlines() if line.strip()]
    # nameko logs "starting services" before any service is set up; from then on,
    # every line is one JSON object.
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    assert first <= 1, lines[:3]
    records = [json.loads(line) for line in lines[first:]]
    started = [r for r in records if r["message"] == "slow work started"]
    assert started and started[0]["correlation_id"] == correlation_id
    assert started[0]["entrypoint"] == "drainer.slow"
    assert started[0]["service"] == "drainer"
    assert {r["level"] for r in records} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


# -- figures: the example pair in this process ----------------------------------------------


@pytest.fixture
def example_env(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "MUNIPORTAL_SERVICE_MODULES",
        "ledger=tests.kernel.example.ledger,tally=tests.kernel.example.tally",
    )
    monkeypatch.setenv("MUNIPORTAL_TOPOLOGY", str(EXAMPLE / "topology.yaml"))
    urls = {
        "ledger": f"sqlite:///{tmp_path / 'ledger.db'}",
        "tally": f"sqlite:///{tmp_path / 'tally.db'}",
    }
    monkeypatch.setenv("LEDGER_DATABASE_URL", urls["ledger"])
    monkeypatch.setenv("TALLY_DATABASE_URL", urls["tally"])
    return urls


def metrics_of(container) -> str:
    provider = next(d for d in container.dependencies if isinstance(d, Metrics))
    return requests.get(f"http://127.0.0.1:{provider.port}/metrics", timeout=5).text


def test_consumer_counts_dead_letters_backlog_and_lag_match_ops_stats(
    container_factory, service_config, example_env, amqp_uri, tmp_path, caplog
):
    from tests.kernel.example.ledger.service import LedgerService
    from tests.kernel.example.tally.service import POISON_CENTS, TallyService

    common = {
        "TOPOLOGY_FILE": str(EXAMPLE / "topology.yaml"),
        "NOTIFY_FILE": str(tmp_path / "notices.txt"),
        "METRICS_PORT": 0,
    }
    ledger = container_factory(LedgerService, service_config(example_env["ledger"], **common))
    tally = container_factory(TallyService, service_config(example_env["tally"], **common))
    ledger.start()
    tally.start()
    account = f"acct-{uuid.uuid4().hex[:8]}"
    correlation_id = f"corr-{uuid.uuid4().hex[:8]}"
    with rpc_client(
        amqp_uri, timeout=10, context_data={"correlation_id": correlation_id}
    ) as services:
        for cents in (100, 250, POISON_CENTS, 400):
            services.ledger.deposit(account, cents)
        wait_for(
            lambda: (services.tally.total(account) or {}).get("count") == 3,
            timeout=20,
            what="tally to count the three good deposits",
        )
    queue = "evt-ledger-Deposited--tally.on_deposited"
    # The poison deposit fails MAX_DELIVERY_ATTEMPTS (3) times, then is parked.
    wait_for(
        lambda: (
            metric(metrics_of(tally), "muniportal_dead_letters", service="tally", queue=queue) == 1
        ),
        timeout=30,
        interval=0.5,
        what="the poison deposit to be parked and counted",
    )
    text = metrics_of(tally)
    labels = {
        "service": "tally",
        "consumer": "on_deposited",
        "source": "ledger",
        "event": "Deposited",
    }
    assert metric(text, "muniportal_events_handled_total", **labels) == 3
    assert metric(text, "muniportal_events_failed_total", **labels) == 3
    assert metric(text, "muniportal_consumer_queue_depth", service="tally", queue=queue) == 0
    assert metric(text, "muniportal_projector_lag", service="tally", projection="totals") == 0

    # The consumer's log lines carry the correlation id of the request that caused the event.
    parked = [r for r in caplog.records if r.getMessage().startswith("parked a message")]
    assert parked and parked[0].correlation_id == correlation_id
    assert parked[0].entrypoint == "tally.on_deposited"

    figures = stats.service_stats("tally", amqp_uri)
    assert figures["consumers"] == [{"queue": queue, "lag": 0, "parked": 1}]
    ledger_text = metrics_of(ledger)
    ledger_figures = stats.service_stats("ledger", amqp_uri)
    wait_for(
        lambda: stats.service_stats("ledger", amqp_uri)["relay"]["lag"] == 0,
        timeout=10,
        what="the ledger's relay to publish everything",
    )
    assert metric(ledger_text, "muniportal_log_head", service="ledger") == ledger_figures["head"]
    assert metric(ledger_text, "muniportal_outbox_backlog", service="ledger") is not None
    history = next(p for p in ledger_figures["projectors"] if p["projection"] == "history")
    assert history["mode"] == "async"
    assert (
        metric(ledger_text, "muniportal_projector_lag", service="ledger", projection="history")
        is not None
    )

    # The ops tool, as an operator runs it, reads the same figures.
    env = {**os.environ, "AMQP_URI": amqp_uri, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [str(BIN / "muniportal-ops"), "stats", "tally", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    (row,) = (
        json.loads(out.stdout) if out.stdout.lstrip().startswith("[") else [json.loads(out.stdout)]
    )
    assert row["consumers"] == figures["consumers"]
    assert row["head"] == figures["head"]


def test_emails_by_status_come_from_the_delivery_log(tmp_path):
    from services.notifications.projections import PROJECTIONS
    from shared.uow import ServiceStore

    store = ServiceStore("notifications", f"sqlite:///{tmp_path / 'n.db'}", PROJECTIONS)
    store.migrate()
    try:
        for i, outcome in enumerate(["sent", "sent", None]):
            message_id = str(uuid.uuid4())
            events = [
                NewEvent(
                    "EmailQueued",
                    {
                        "message_id": message_id,
                        "kind": "payment_receipt",
                        "to": f"r{i}@example.test",
                        "subject": "Your receipt",
                        "city": "pleasanton",
                        "context": {},
                        "secure": False,
                    },
                )
            ]
            if outcome == "sent":
                events.append(
                    NewEvent(
                        "EmailSent",
                        {
                            "message_id": message_id,
                            "attempt": 1,
                            "sent_at": "2026-11-22T10:00:00+00:00",
                        },
                    )
                )
            with store.unit_of_work() as uow:
                uow.append(f"message-{message_id}", events, 0)
        figures = stats.store_figures(store, "notifications", None)
        assert figures["emails"] == {"sent": 2, "queued": 1}
        assert "emails: 1 queued, 2 sent" in stats.render(figures)
    finally:
        store.dispose()


def test_the_gateway_reports_its_requests_and_readiness(container_factory, service_config):
    from services.gateway.service import GatewayService

    web_port = testing.free_port()
    gateway = container_factory(
        GatewayService,
        service_config(None, METRICS_PORT=0, WEB_SERVER_ADDRESS=f"127.0.0.1:{web_port}"),
    )
    gateway.start()
    provider = next(d for d in gateway.dependencies if isinstance(d, Metrics))
    base = f"http://127.0.0.1:{provider.port}"
    # No service runs in this test: the portal's health says so, and the gateway counts it.
    health = requests.get(f"http://127.0.0.1:{web_port}/api/v1/health", timeout=10)
    assert health.status_code == 503
    text = requests.get(base + "/metrics", timeout=5).text
    assert (
        metric(
            text,
            "muniportal_http_request_duration_seconds_count",
            service="gateway",
            entrypoint="/api/v1/health",  # the route template
            status="503",
        )
        == 1
    )
    ready = requests.get(base + "/health/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["broker"] == "ok"
    assert "database" not in ready.json()  # the gateway keeps no store
