"""The whole portal as real processes, for API and browser tests.

    from tests.stack import stack_fixture
    stack = stack_fixture()                  # in a conftest.py: one stack per session

    def test_health(stack):
        assert requests.get(stack.base_url + "/api/v1/health").status_code == 200

`Stack.start()` creates a RabbitMQ vhost of its own and fresh stores (SQLite
files under a temporary MUNIPORTAL_VAR by default: a PostgreSQL stack holds some
50 connections, half of a default server's limit; ``database="postgresql"`` makes
a new database for it), runs ``muniportal-ops migrate``,
loads the demo city, then starts as subprocesses: a test SMTP server
(`shared.testing.SmtpServer`, read it with ``stack.smtp.messages()``), the
local mailbox API (for ``/dev/mail``), the processor sandbox, a test OpenID
Connect provider (``stack.oidc_url``, provider key ``mock``), every service
under ``nameko run`` and the gateway on free ports. It returns when
``GET /api/v1/health`` answers 200. ``stop()`` ends everything (SIGTERM, then
SIGKILL after a timeout) and removes the vhost and the database.

Each process logs to ``<directory>/logs/<name>.log``; a start that fails says
which process died and shows the end of its log.

Nothing is faked: RabbitMQ, PostgreSQL, SMTP and the processor's HTTP are real.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from shared import testing

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVICES = ("identity", "accounts", "billing", "payments", "notifications")
OIDC_CLIENT = ("portal-tests", "portal-tests-secret")
SANDBOX_API_KEY = "sk_sandbox_muniportal"
WEBHOOK_SECRET = "whsec_stack_tests"
# Demo accounts (account number -> customer ID) that tests may issue bills for.
DEMO_ACCOUNTS = {
    "28624": "405583",
    "45469": "448598",
    "49876": "487083",
    "36761": "420499",
    "77265": "490940",
    "55956": "493233",
}
BILL_COLUMNS = (
    "bill_number,row_type,bill_type,account_number,customer_id,customer_name,service_address,"
    "cycle,statement_date,due_date,previous_balance,late_penalty,service_code,meter_number,"
    "previous_read_date,read_date,previous_reading,reading,usage_units,read_type,description,"
    "amount,date,reference"
).split(",")
# The gateway's per-address throttles in the stack (COUNT/SECONDS).
THROTTLES = {
    "THROTTLE_SIGNIN": "30/60",
    "THROTTLE_REGISTRATION": "30/600",
    "THROTTLE_LINKING": "30/600",
    "THROTTLE_QUICKPAY": "30/600",
    "THROTTLE_RECOVERY": "30/600",
}


class StackError(RuntimeError):
    """A part of the stack did not start; the message names it and shows its log."""


class _Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)  # type: ignore[union-attr]

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(max(0.1, timeout))
            return True
        except subprocess.TimeoutExpired:
            return False

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class Stack:
    """Every service, the gateway, the processor sandbox and a test SMTP server."""

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        database: str = "sqlite",
        env: dict[str, str] | None = None,
        health_timeout: float = 120.0,
    ) -> None:
        if database not in ("postgresql", "sqlite"):
            raise ValueError("database must be 'postgresql' or 'sqlite'")
        self.directory = Path(directory or tempfile.mkdtemp(prefix="muniportal-stack-"))
        self.database = database
        self.extra_env = dict(env or {})
        self.health_timeout = health_timeout
        self.gateway_port = testing.free_port()
        self.sandbox_port = testing.free_port()
        self.oidc_port = testing.free_port()
        self.mailbox_smtp_port = testing.free_port()
        self.mailbox_http_port = testing.free_port()
        self.base_url = f"http://127.0.0.1:{self.gateway_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.oidc_url = f"http://127.0.0.1:{self.oidc_port}"
        self.mailbox_url = f"http://127.0.0.1:{self.mailbox_http_port}"
        self.amqp_uri = ""
        self.database_url: str | None = None
        self.smtp: testing.SmtpServer | None = None
        self.env: dict[str, str] = {}
        self.processes: dict[str, _Process] = {}
        self._bill_counter = 0
        self._cleanup = contextlib.ExitStack()

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        var = self.directory / "var"
        var.mkdir(exist_ok=True)
        self._infrastructure()
        self.smtp = testing.SmtpServer(self.directory / "smtp").start()
        self._cleanup.callback(self.smtp.stop)
        self.env = self._environment(var)
        self._prepare_stores()
        self._start_helpers()
        for service in (*SERVICES, "gateway"):
            self._spawn(service, self._nameko_argv(service))
        self.wait_healthy()

    def _infrastructure(self) -> None:
        base_amqp, container = testing.amqp_base_uri()
        if container is not None:
            self._cleanup.callback(container.stop)
        vhost = testing.create_vhost(base_amqp)
        if vhost is None:
            raise StackError(f"could not create a RabbitMQ vhost on {base_amqp}")
        self._cleanup.callback(testing.delete_vhost, base_amqp, vhost)
        self.amqp_uri = testing.with_vhost(base_amqp, vhost)
        if self.database == "postgresql":
            pg_base, pg_container = testing.pg_base_url()
            if pg_container is not None:
                self._cleanup.callback(pg_container.stop)
            self.database_url = testing.create_database(pg_base)
            self._cleanup.callback(testing.drop_database, pg_base, self.database_url)

    def _environment(self, var: Path) -> dict[str, str]:
        assert self.smtp is not None
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith("DATABASE_URL") and k not in ("AMQP_URI", "SMTP_HOST")
        }
        env.update(
            MUNIPORTAL_VAR=str(var),
            AMQP_URI=self.amqp_uri,
            ENV="development",
            CAPTCHA="off",
            RPC_TIMEOUT="5",
            PYTHONWARNINGS="ignore",
            PYTHONUNBUFFERED="1",
            GATEWAY_ADDRESS=f"127.0.0.1:{self.gateway_port}",
            PUBLIC_URL=self.base_url,
            PROCESSOR_URL=self.sandbox_url,
            PROCESSOR_API_KEY=SANDBOX_API_KEY,
            PROCESSOR_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            SMTP_HOST=self.smtp.host,
            SMTP_PORT=str(self.smtp.port),
            SMTP_SECURITY="none",
            MAIL_RETRY_BASE="1",
            MAIL_POLL_INTERVAL="0.2",
            MAILBOX_URL=self.mailbox_url,
            OIDC_PROVIDERS=json.dumps(
                [
                    {
                        "key": "mock",
                        "name": "Mock ID",
                        "issuer": self.oidc_url,
                        "client_id": OIDC_CLIENT[0],
                        "client_secret": OIDC_CLIENT[1],
                    }
                ]
            ),
            # Browser tests all come from 127.0.0.1: the gateway's own throttles are what
            # the API tests exercise (per X-Forwarded-For address, trusted here).
            TRUST_FORWARDED_FOR="true",
            **THROTTLES,
            IDENTITY_REGISTER_IP_LIMIT="1000",
            IDENTITY_REGISTER_EMAIL_LIMIT="20",
            IDENTITY_SIGNIN_IP_LIMIT="1000",
            # Cheap hashes: the tests sign in often on a small machine.
            ARGON2_TIME_COST="1",
            ARGON2_MEMORY_KIB="8192",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def _prepare_stores(self) -> None:
        log = self.directory / "logs" / "prepare.log"
        steps = [
            ("migrate", [str(BIN / "muniportal-ops"), "migrate"]),
            (
                "demo city",
                [
                    sys.executable,
                    "-c",
                    "import warnings; warnings.simplefilter('ignore');"
                    "from shared.demo import load_demo_city; load_demo_city()",
                ],
            ),
        ]
        for what, argv in steps:
            with open(log, "ab") as out:
                done = subprocess.run(
                    argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=300
                )
            if done.returncode != 0:
                raise StackError(
                    f"{what} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}"
                )

    def _start_helpers(self) -> None:
        self._spawn(
            "sandbox",
            [
                str(BIN / "muniportal"),
                "processor-sandbox",
                "--port",
                str(self.sandbox_port),
                "--public-url",
                self.sandbox_url,
                "--db",
                str(self.directory / "sandbox.db"),
                "--webhook-url",
                f"{self.base_url}/api/v1/webhooks/processor",
                "--webhook-secret",
                WEBHOOK_SECRET,
                "--api-key",
                SANDBOX_API_KEY,
                "--retry-base",
                "0.5",
                "--retry-max",
                "5",
                "--delay-seconds",
                "2",
                "--quiet",
            ],
        )
        self._spawn(
            "mailbox",
            [
                str(BIN / "muniportal"),
                "mailbox",
                "--smtp-port",
                str(self.mailbox_smtp_port),
                "--http-port",
                str(self.mailbox_http_port),
                "--dir",
                str(self.directory / "mailbox"),
            ],
        )
        self._spawn(
            "oidc",
            [
                sys.executable,
                "-m",
                "tests.identity.oidc_provider",
                "--port",
                str(self.oidc_port),
                "--client",
                ":".join(OIDC_CLIENT),
            ],
        )
        for name, url in (
            ("sandbox", f"{self.sandbox_url}/health"),
            ("mailbox", f"{self.mailbox_url}/health"),
            ("oidc", f"{self.oidc_url}/.well-known/openid-configuration"),
        ):
            self._wait_http(name, url, timeout=30)

    def _nameko_argv(self, service: str) -> list[str]:
        return [
            str(BIN / "nameko"),
            "run",
            "--config",
            f"services/{service}/config.yaml",
            f"services.{service}.service",
        ]

    def _spawn(self, name: str, argv: list[str]) -> None:
        process = _Process(name, argv, self.env, self.directory / "logs" / f"{name}.log")
        process.start()
        self.processes[name] = process

    def _wait_http(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.processes[name].alive:
                raise StackError(f"{name} exited:\n{self.processes[name].tail()}")
            try:
                if requests.get(url, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise StackError(
            f"{name} did not answer {url} in {timeout:g}s:\n{self.processes[name].tail()}"
        )

    def wait_healthy(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until GET /api/v1/health is 200; fail naming dead or unhealthy services."""
        deadline = time.monotonic() + (timeout or self.health_timeout)
        last: Any = None
        while time.monotonic() < deadline:
            dead = [p for p in self.processes.values() if p.proc is not None and not p.alive]
            if dead:
                raise StackError(
                    "stopped during start: "
                    + ", ".join(p.name for p in dead)
                    + "\n"
                    + "\n".join(f"--- {p.name}\n{p.tail()}" for p in dead)
                )
            try:
                response = requests.get(f"{self.base_url}/api/v1/health", timeout=5)
                last = response.text
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise StackError(f"the stack was not healthy in time; last answer: {last}")

    def stop_service(self, name: str, timeout: float = 15.0) -> None:
        """Stop one process (an outage); `start_service` brings it back."""
        process = self.processes[name]
        process.signal(signal.SIGTERM)
        if not process.wait(timeout):
            process.signal(signal.SIGKILL)
            process.wait(5)

    def start_service(self, name: str) -> None:
        self.processes[name].start()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every process, SIGKILL what is left after `timeout`; drop vhost and database."""
        for process in self.processes.values():
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            if not process.wait(deadline - time.monotonic()):
                process.signal(signal.SIGKILL)
                process.wait(5)
        self.processes.clear()
        self._cleanup.close()

    # -- helpers for tests ---------------------------------------------------------------

    def store_url(self, service: str) -> str:
        """The database URL of a service's store in this stack."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.directory / 'var' / (service + '.db')}"

    def log(self, name: str) -> str:
        return self.processes[name].tail(20000)

    def mails_to(self, address: str) -> list[Any]:
        assert self.smtp is not None
        return [m for m in self.smtp.messages() if address.lower() in str(m["To"]).lower()]

    def wait_for_mail(self, address: str, subject_contains: str = "", timeout: float = 20.0) -> Any:
        """The first email to `address` whose subject contains `subject_contains`."""
        assert self.smtp is not None
        return self.smtp.wait_for_message(
            lambda m: (
                address.lower() in str(m["To"]).lower()
                and subject_contains.lower() in str(m["Subject"]).lower()
            ),
            timeout=timeout,
            what=f"an email to {address} about {subject_contains!r}",
        )

    def issue_bills(
        self, account_number: str, *amounts: str, customer_id: str | None = None
    ) -> list[str]:
        """Import new open bills for a demo account (``muniportal-ops import bills``).

        Each gets a bill number of its own, so a test that pays them changes nothing
        another test reads. Returns the bill numbers. Demo accounts with customers:
        ``DEMO_ACCOUNTS``.
        """
        customer = customer_id or DEMO_ACCOUNTS[account_number]
        self._bill_counter += len(amounts)
        first = 700000 + self.gateway_port % 1000 * 1000 + self._bill_counter - len(amounts)
        numbers = [str(first + i) for i in range(len(amounts))]
        path = self.directory / f"bills-{numbers[0]}.csv"
        with open(path, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(BILL_COLUMNS)
            today = dt.date.today()
            for number, amount in zip(numbers, amounts, strict=True):
                row = dict.fromkeys(BILL_COLUMNS, "")
                row.update(
                    bill_number=number,
                    row_type="bill",
                    bill_type="UTILITY",
                    account_number=account_number,
                    customer_id=customer,
                    customer_name="TEST RESIDENT",
                    service_address="1 TEST ST, PLEASANTON, CA 94566",
                    cycle="1",
                    statement_date=(today - dt.timedelta(days=5)).isoformat(),
                    due_date=(today + dt.timedelta(days=25)).isoformat(),
                    previous_balance="0.00",
                    late_penalty="no",
                )
                out.writerow([row[c] for c in BILL_COLUMNS])
                charge = dict.fromkeys(BILL_COLUMNS, "")
                charge.update(
                    bill_number=number,
                    row_type="charge",
                    service_code="10000",
                    description="PLEASANTON WATER FIXED CHARGE",
                    amount=amount,
                )
                out.writerow([charge[c] for c in BILL_COLUMNS])
        done = subprocess.run(
            [str(BIN / "muniportal-ops"), "import", "bills", str(path)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise StackError(f"bill import failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return numbers

    def sandbox(self, method: str, path: str, body: Any = None) -> Any:
        """Call the processor sandbox's API (e.g. GET /sandbox/webhooks)."""
        response = requests.request(
            method,
            self.sandbox_url + path,
            json=body,
            headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
            timeout=10,
        )
        return response.json()


@contextlib.contextmanager
def running_stack(**options: Any) -> Iterator[Stack]:
    """A started stack for a `with` block."""
    stack = Stack(**options).start()
    try:
        yield stack
    finally:
        stack.stop()


_SHARED: dict[str, list[Any]] = {}


def stack_fixture(scope: str = "session", **options: Any) -> Callable[..., Any]:
    """A pytest fixture yielding a started `Stack`; failures to start fail the tests.

    Fixtures made with the same options share one stack while any of them is in use
    (tests/gateway and tests/browser in one session start the portal once).
    """
    import pytest

    key = json.dumps(options, sort_keys=True, default=str)

    @pytest.fixture(scope=scope)
    def stack(tmp_path_factory: Any) -> Iterator[Stack]:
        entry = _SHARED.get(key)
        if entry is None:
            directory = tmp_path_factory.mktemp("stack")
            try:
                started = Stack(directory, **options).start()
            except (StackError, testing.MissingInfrastructure) as exc:
                pytest.fail(f"the portal stack did not start: {exc}", pytrace=False)
            entry = _SHARED[key] = [started, 0]
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del _SHARED[key]
                entry[0].stop()

    return stack
