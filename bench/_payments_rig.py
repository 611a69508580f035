"""What the payments benchmarks run against, each part in its own process as `make run` has it.

The processor sandbox (`muniportal processor-sandbox`), the payments service (`nameko run`
with services/payments/config.yaml) on a fresh PostgreSQL database, and, in one more
process, the stand-ins for the parts built in parallel (see tests/payments/standins.py):
the gateway's webhook route and billing. RabbitMQ gets a vhost of its own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from shared import testing
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.payments.standins import API_KEY, SECRET, Sandbox

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Rig:
    def __init__(self, amqp_uri: str, sandbox: Sandbox, directory: Path) -> None:
        self.amqp_uri = amqp_uri
        self.sandbox = sandbox
        self.directory = directory

    def client(self, timeout: float = 30) -> Any:
        return rpc_client(self.amqp_uri, timeout=timeout)


def _start(name: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT
    )


@contextlib.contextmanager
def payments_rig(**payments_env: str) -> Iterator[Rig]:
    amqp_base, _ = testing.amqp_base_uri()
    vhost = testing.create_vhost(amqp_base)
    amqp_uri = testing.with_vhost(amqp_base, vhost) if vhost else amqp_base
    pg_base, _ = testing.pg_base_url()
    db_url = testing.create_database(pg_base)
    directory = Path(tempfile.mkdtemp(prefix="bench-payments-"))
    gateway_port = testing.free_port()
    procs: list[subprocess.Popen] = []
    sandbox = Sandbox(
        directory,
        f"http://127.0.0.1:{gateway_port}/api/v1/webhooks/processor",
        ["--delay-seconds", "1"],
    )
    try:
        env = {
            **os.environ,
            "AMQP_URI": amqp_uri,
            "PAYMENTS_DATABASE_URL": db_url,
            "PROCESSOR_URL": sandbox.url,
            "PROCESSOR_API_KEY": API_KEY,
            "PROCESSOR_WEBHOOK_SECRETS": SECRET,
            "LOG_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore",
            **payments_env,
        }
        procs.append(
            _start(
                "payments",
                [
                    str(BIN / "nameko"),
                    "run",
                    "--config",
                    "services/payments/config.yaml",
                    "services.payments.service",
                ],
                env,
                directory / "payments.log",
            )
        )
        standins = directory / "standins.yaml"
        standins.write_text(
            yaml.safe_dump(
                {
                    "AMQP_URI": amqp_uri,
                    "WEB_SERVER_ADDRESS": f"127.0.0.1:{gateway_port}",
                    "RPC_TIMEOUT": 10,
                    "serializer": "json",
                    "max_workers": 20,
                    "LOGGING": {"version": 1, "root": {"level": "WARNING"}},
                }
            )
        )
        procs.append(
            _start(
                "standins",
                [
                    str(BIN / "nameko"),
                    "run",
                    "--config",
                    str(standins),
                    "tests.payments.standins:GatewayStandIn",
                    "tests.payments.standins:BillingStandIn",
                ],
                env,
                directory / "standins.log",
            )
        )
        rig = Rig(amqp_uri, sandbox, directory)
        with rig.client(timeout=3) as cluster:

            def up() -> bool:
                for proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a service exited; see {directory}")
                cluster.payments.ping()
                cluster.billing_standin.bill_brief("none")
                return True

            wait_for(up, timeout=60, interval=0.5, what="payments and the stand-ins to start")
        yield rig
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        sandbox.stop()
        testing.drop_database(pg_base, db_url)
        if vhost:
            testing.delete_vhost(amqp_base, vhost)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def issue_bills(rig: Rig, count: int, balance: str = "50.00") -> list[str]:
    """Billing issues `count` bills; returns their numbers once payments knows all of them."""
    import random

    base = random.randint(10**8, 9 * 10**8)
    numbers = [str(base + i) for i in range(count)]
    with rig.client() as cluster:
        for i in range(0, count, 250):
            chunk = numbers[i : i + 250]
            cluster.billing_standin.issue_bills(
                [{"bill_number": n, "account_number": f"A{n}", "balance": balance} for n in chunk]
            )

        def known() -> bool:
            return all(
                len(cluster.payments.bill_status(numbers[i : i + 500])) == len(numbers[i : i + 500])
                for i in range(0, count, 500)
            )

        wait_for(known, timeout=180, interval=0.5, what="payments to learn the bills")
    return numbers
