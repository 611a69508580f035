"""Identity test rig.

Provides:

- ``smtp``: the real SMTP server of the rig (``shared.testing.SmtpServer``, the
  class behind the root ``smtp_server`` fixture), one for the session;
- ``oidc_provider``: a real OpenID Connect provider (Authlib server components,
  tests/identity/oidc_provider.py) in its own process, one for the session;
- ``identity``: the identity service on a real store and RabbitMQ, next to the
  real notifications service (which turns identity's secure mail and events into
  SMTP), with helpers to call it and to read links out of the delivered mail.
  Modules with the same settings share one running service (``rigs``); a module
  sets ``IDENTITY_CONFIG = {...}`` to change settings (laid over TEST_CONFIG) and
  ``IDENTITY_DB = "postgresql"`` for PostgreSQL. Tests use their own users,
  addresses and IPs, so sharing is safe.

Nothing is faked here: unit tests that need a mailer use `FakeMailer`, a fake of
our own `Mailer` protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
import requests

from shared import testing
from shared.rpc import rpc_client
from shared.testing import wait_for

PUBLIC_URL = "https://portal.test"
CLIENT_ID = "muniportal-test"
CLIENT_SECRET = "test-client-secret-0123456789"
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8192, "ARGON2_PARALLELISM": 1}


class FakeMailer:
    """Collects secure mail in unit tests (a fake of services.identity.mail.Mailer)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def token(self, to: str | None = None, kind: str | None = None) -> str:
        for message in reversed(self.sent):
            if (to is None or message.to == to) and (kind is None or message.kind == kind):
                return message.secret_url.split("token=", 1)[1]
        raise LookupError(f"no mail to {to} of kind {kind}")


@pytest.fixture(scope="session")
def smtp(tmp_path_factory):
    server = testing.SmtpServer(tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oidc_provider():
    port = testing.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.identity.oidc_provider",
            "--port",
            str(port),
            "--client",
            f"{CLIENT_ID}:{CLIENT_SECRET}",
            "--client",
            f"{CLIENT_ID}-rotating:{CLIENT_SECRET}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{base}/.well-known/openid-configuration", timeout=1).ok,
            timeout=20,
            what="the test OIDC provider",
        )
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def providers_config(issuer: str) -> list[dict[str, str]]:
    """Two clients of the same provider; the second one's signing key gets rotated."""
    return [
        {
            "key": "mock",
            "name": "Mock ID",
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        {
            "key": "mock-rotating",
            "name": "Mock ID (rotating keys)",
            "issuer": issuer,
            "client_id": f"{CLIENT_ID}-rotating",
            "client_secret": CLIENT_SECRET,
        },
    ]


class BusTap:
    """Every event identity publishes during the module, read from RabbitMQ itself."""

    def __init__(self, amqp_uri: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._conn = kombu.Connection(amqp_uri)
        exchange = kombu.Exchange("identity.events", type="topic", durable=True)
        self._queue = kombu.Queue(
            f"test-tap-{uuid.uuid4().hex[:8]}",
            exchange=exchange,
            routing_key="#",
            exclusive=True,
            auto_delete=True,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)

    def _on_message(self, body: Any, message: Any) -> None:
        raw = body if isinstance(body, str) else json.dumps(body)
        self.raw.append(raw)
        self.events.append(body if isinstance(body, dict) else json.loads(body))
        message.ack()

    def _run(self) -> None:
        with self._conn.Consumer(self._queue, callbacks=[self._on_message]):
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self._conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
                except OSError:
                    return

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == event_type and all(e["data"].get(k) == v for k, v in match.items())
        ]

    def wait(self, event_type: str, **match: Any) -> dict[str, Any]:
        return wait_for(
            lambda: (self.of(event_type, **match) or [None])[-1],
            timeout=15,
            what=f"{event_type} {match} on the bus",
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.release()


@dataclasses.dataclass
class Rig:
    """The running identity service and helpers for the tests of one module."""

    cluster: Any
    smtp: Any
    db_url: str
    bus: BusTap
    oidc_issuer: str

    @property
    def rpc(self) -> Any:
        return self.cluster.identity

    @staticmethod
    def new_user(prefix: str = "u") -> tuple[str, str]:
        tag = uuid.uuid4().hex[:10]
        return f"{prefix}{tag}"[:20], f"{prefix}.{tag}@example.org"

    @staticmethod
    def ip() -> str:
        raw = uuid.uuid4().bytes
        return f"10.{raw[0]}.{raw[1]}.{raw[2]}"

    def __post_init__(self) -> None:
        self._mails: dict[str, Any] = {}
        self._store: Any = None

    def messages(self) -> list[Any]:
        """Every mail delivered so far, in order (each file parsed once: a module sends many)."""
        import email
        import email.policy

        paths = sorted(self.smtp.directory.glob("*.eml"), key=lambda p: int(p.stem))
        for path in paths:
            if path.name not in self._mails:
                self._mails[path.name] = email.message_from_bytes(
                    path.read_bytes(), policy=email.policy.default
                )
        return [self._mails[p.name] for p in paths]

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.messages() if address.lower() in str(m["To"]).lower()]

    def wait_mail(self, address: str, contains: str = "", after: int = 0) -> Any:
        """The first mail to `address` beyond the first `after` ones that contains `contains`."""

        def found() -> Any:
            mails = self.mails_to(address)[after:]
            return next((m for m in mails if contains in body_of(m)), None)

        return wait_for(found, timeout=20, what=f"mail to {address} with {contains!r}")

    def link_tokens(self, address: str, path: str) -> list[str]:
        """The tokens of every `{PUBLIC_URL}{path}?token=...` link mailed to `address`."""
        pattern = re.compile(re.escape(f"{PUBLIC_URL}{path}?token=") + r"([A-Za-z0-9_-]+)")
        found = [t for m in self.mails_to(address) for t in pattern.findall(body_of(m))]
        return list(dict.fromkeys(found))  # a mail shows its link in the text and HTML parts

    def link_token(self, address: str, path: str, after: int = 0) -> str:
        """The token of the newest such link, once more than `after` mails have come."""
        self.wait_mail(address, f"{PUBLIC_URL}{path}?token=", after)
        return self.link_tokens(address, path)[-1]

    def register(self, user_id: str, email: str, password: str, **extra: Any) -> dict:
        payload = {"user_id": user_id, "email": email, "password": password, "client_ip": self.ip()}
        payload.update(extra)
        return self.rpc.register(payload)

    def register_verified(self, prefix: str = "u", password: str = "quiet river lantern 42"):
        user_id, email = self.new_user(prefix)
        self.register(user_id, email, password)
        self.rpc.verify_email(self.link_token(email, "/verify-email"))
        return user_id, email, password

    def sign_in(self, login: str, password: str, **extra: Any) -> dict:
        payload = {"login": login, "password": password, "client_ip": self.ip()}
        payload.update(extra)
        return self.rpc.sign_in(payload)

    def store(self) -> Any:
        """The identity store, opened beside the service (for reads; kept for the module)."""
        from services.identity.projections import PROJECTIONS
        from shared.uow import ServiceStore

        if self._store is None:
            self._store = ServiceStore("identity", self.db_url, PROJECTIONS, pool_size=2)
        return self._store

    def stream(self, stream_id: str) -> list[Any]:
        return self.store().events.read_stream(stream_id)

    def event_count(self) -> int:
        return self.store().events.head_position()

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


def body_of(message: Any) -> str:
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def notifications_config(amqp_uri: str, db_url: str, smtp: Any) -> dict:
    from cryptography.fernet import Fernet

    return {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": db_url,
        "RPC_TIMEOUT": 5,
        "MAX_DELIVERY_ATTEMPTS": 3,
        "QUEUE_TYPE": "classic",
        "max_workers": 10,
        "serializer": "json",
        "PUBLIC_URL": PUBLIC_URL,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": smtp.port,
        "MAIL_SPOOL_KEY": Fernet.generate_key().decode(),
        "MAIL_RETRY_BASE": 0.3,
        "MAIL_RETRY_MAX": 1.0,
        "MAIL_RETRY_JITTER": 0,
        "MAIL_POLL_INTERVAL": 0.1,
    }


def identity_config(amqp_uri: str, db_url: str, smtp: Any, issuer: str, **extra: Any) -> dict:
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": db_url,
        "RPC_TIMEOUT": 5,
        "MAX_DELIVERY_ATTEMPTS": 3,
        "QUEUE_TYPE": "classic",
        "max_workers": 10,
        "serializer": "json",
        "PUBLIC_URL": PUBLIC_URL,
        "CAPTCHA": "off",
        "OIDC_PROVIDERS": providers_config(issuer),
        **FAST_ARGON2,
    }
    config.update(extra)
    return config


# What most modules run with; a module's IDENTITY_CONFIG is laid over it.
TEST_CONFIG = {
    "SIGNIN_LOGIN_LIMIT": 100,  # the per-login throttle has a module of its own
    "SIGNIN_IP_LIMIT": 15,
    "REAUTH_LIMIT": 3,
    "REGISTER_IP_LIMIT": 4,
    "REGISTER_EMAIL_LIMIT": 3,
}


class Rigs:
    """Runs one identity service (with notifications) at a time, shared by the modules that
    ask for the same settings: starting and stopping services is most of a module's cost.

    Never two at once: they would share the RPC queue and answer each other's calls."""

    def __init__(self, amqp_uri: str, smtp: Any, issuer: str, pg_base: str, tmp: Any) -> None:
        self.amqp_uri, self.smtp, self.issuer, self.pg_base, self.tmp = (
            amqp_uri,
            smtp,
            issuer,
            pg_base,
            tmp,
        )
        self.key: Any = None
        self.rig: Rig | None = None
        self._stack: contextlib.ExitStack | None = None

    def get(self, db: str, extra: dict[str, Any]) -> Rig:
        key = (db, json.dumps(extra, sort_keys=True))
        if key != self.key:
            self.stop()
            self._stack = contextlib.ExitStack()
            self.rig = self._stack.enter_context(self._running(db, extra))
            self.key = key
        return self.rig  # type: ignore[return-value]

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self.rig, self.key = None, None, None

    @contextlib.contextmanager
    def _running(self, db: str, extra: dict[str, Any]) -> Iterator[Rig]:
        from nameko.containers import ServiceContainer

        from services.identity.service import IdentityService
        from services.notifications.service import NotificationsService

        directory = self.tmp.mktemp("stores")
        if db == "postgresql":
            db_url = notifications_db = testing.create_database(self.pg_base)  # a schema each
        else:
            db_url = f"sqlite:///{directory / 'identity.db'}"
            notifications_db = f"sqlite:///{directory / 'notifications.db'}"
        config = identity_config(self.amqp_uri, db_url, self.smtp, self.issuer, **extra)
        bus = BusTap(self.amqp_uri)
        notifications = ServiceContainer(
            NotificationsService, notifications_config(self.amqp_uri, notifications_db, self.smtp)
        )
        identity = ServiceContainer(IdentityService, config)
        notifications.start()
        identity.start()
        try:
            with rpc_client(self.amqp_uri, timeout=10) as cluster:
                rig = Rig(cluster, self.smtp, db_url, bus, self.issuer)
                yield rig
                rig.close()
        finally:
            identity.kill()
            notifications.kill()
            bus.close()
            if db == "postgresql":
                testing.drop_database(self.pg_base, db_url)


_RUNNING: list[Rigs] = []


@pytest.fixture(scope="session")
def rigs(amqp_uri, smtp, oidc_provider, pg_base, tmp_path_factory):
    manager = Rigs(amqp_uri, smtp, oidc_provider, pg_base, tmp_path_factory)
    _RUNNING.append(manager)
    yield manager
    manager.stop()
    _RUNNING.remove(manager)


def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    """Stop the shared services after the last identity test, not at the end of the session:
    their notifications container shares the session's vhost and would answer the RPCs and
    take the events meant for the notifications tests that follow."""
    here = str(Path(__file__).parent)
    if nextitem is None or not str(nextitem.path).startswith(here):
        for manager in _RUNNING:
            manager.stop()


@pytest.fixture(scope="module")
def identity(request, rigs):
    db = getattr(request.module, "IDENTITY_DB", "sqlite")
    return rigs.get(db, {**TEST_CONFIG, **getattr(request.module, "IDENTITY_CONFIG", {})})


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Run the modules that share the common service first, then the ones with settings of
    their own, then PostgreSQL, then the outbox test (which stops the service): whole
    modules move, each keeps its order, and the service starts as few times as can be."""

    def rank(item: Any) -> tuple[int, int, int]:
        module = getattr(item, "module", None)
        return (
            int(getattr(module, "IDENTITY_DB", "sqlite") != "sqlite"),
            int(bool(getattr(module, "IDENTITY_CONFIG", None))),
            int(getattr(module, "STOPS_THE_SERVICE", False)),
        )

    here = str(Path(__file__).parent)
    slots = [i for i, item in enumerate(items) if str(item.path).startswith(here)]
    ordered = sorted((items[i] for i in slots), key=rank)
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item
