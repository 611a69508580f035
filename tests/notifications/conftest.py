"""Notifications fixtures: the real service on real RabbitMQ, a real store and a real SMTP server.

Provides (module-scoped, so one service serves a whole test module; tests use
their own recipients and ids):
- ``smtp``: an aiosmtpd server in its own process (`shared.testing.SmtpServer`, the
  class behind the root ``smtp_server`` fixture);
- ``start_notifications(db=..., **config)``: starts the service against ``smtp``;
- ``producer``: publishes events as identity, accounts, billing and payments would
  (`ConfirmingPublisher` and envelopes of the right source), replays included.

Nothing is faked: the only stand-ins are the other services' producers, until
their code lands in main.
"""

from __future__ import annotations

import datetime as dt
import email.message
import re
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet

from shared import testing
from shared.events import Envelope
from shared.relay import ConfirmingPublisher, events_exchange

FAST_RETRY = {
    "MAIL_RETRY_BASE": 0.3,
    "MAIL_RETRY_MAX": 1.0,
    "MAIL_RETRY_JITTER": 0,
    "MAIL_MAX_ATTEMPTS": 6,
    "MAIL_POLL_INTERVAL": 0.1,
}
PUBLIC_URL = "https://portal.example.test"


def unique_email(tag: str = "resident") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


class Producer:
    """Publishes envelopes to `<source>.events`, as the producing service's relay would."""

    def __init__(self, amqp_uri: str) -> None:
        self.amqp_uri = amqp_uri
        self._publishers: dict[str, ConfirmingPublisher] = {}

    def envelope(
        self,
        source: str,
        event_type: str,
        data: dict[str, Any],
        *,
        stream_id: str | None = None,
        version: int = 1,
        event_id: str | None = None,
    ) -> Envelope:
        return Envelope(
            event_id=event_id or str(uuid.uuid4()),
            type=event_type,
            schema_version=1,
            stream_id=stream_id or f"{source}-{uuid.uuid4().hex[:8]}",
            version=version,
            position=None,
            occurred_at=dt.datetime.now(dt.UTC),
            correlation_id=str(uuid.uuid4()),
            causation_id=None,
            actor="system",
            source=source,
            data=data,
        )

    def publish(self, *envelopes: Envelope, replay: bool = False) -> None:
        by_source: dict[str, list[Envelope]] = {}
        for env in envelopes:
            by_source.setdefault(env.source, []).append(env)
        for source, batch in by_source.items():
            publisher = self._publishers.get(source)
            if publisher is None:
                publisher = ConfirmingPublisher(
                    self.amqp_uri, events_exchange(source), name=f"test-{source}"
                )
                self._publishers[source] = publisher
            publisher.publish(batch, replay=replay)

    def emit(self, source: str, event_type: str, data: dict[str, Any], **kwargs: Any) -> Envelope:
        env = self.envelope(source, event_type, data, **kwargs)
        self.publish(env)
        return env

    def close(self) -> None:
        for publisher in self._publishers.values():
            publisher.close()


@pytest.fixture(scope="module")
def producer(amqp_uri):
    p = Producer(amqp_uri)
    yield p
    p.close()


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    server = testing.SmtpServer(tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


class Running:
    """A started notifications service and what the tests need to look at it."""

    def __init__(self, container: Any, config: dict[str, Any]) -> None:
        self.container = container
        self.config = config
        self.database_url = config["DATABASE_URL"]

    @property
    def store(self) -> Any:
        from shared.nameko import Store

        for dep in self.container.dependencies:
            if isinstance(dep, Store):
                return dep.store
        raise LookupError("no store")

    def message_status(self, message_id: str) -> str | None:
        from services.notifications import handlers

        try:
            return handlers.get_message(self.store, message_id)["status"]
        except Exception:
            return None

    def wait_status(self, message_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
        from services.notifications import handlers

        return testing.wait_for(
            lambda: (
                (row := handlers.get_message(self.store, message_id))["status"] == status and row
            ),
            timeout=timeout,
            what=f"message {message_id} to be {status}",
        )

    def messages_to(self, address: str) -> list[dict[str, Any]]:
        from services.notifications import handlers

        return handlers.list_messages(self.store, recipient=address, limit=1000)


@pytest.fixture(scope="module")
def start_notifications(amqp_uri, smtp, tmp_path_factory, request):
    """start_notifications(db="sqlite"|"postgresql", **config) -> Running (one per module)."""
    from nameko.containers import ServiceContainer

    from services.notifications.service import NotificationsService

    def start(db: str = "sqlite", database_url: str | None = None, **extra: Any) -> Running:
        if database_url:
            url = database_url
        elif db == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('notifications') / 'notifications.db'}"
        else:
            base = request.getfixturevalue("pg_base")
            url = testing.create_database(base)
            # Finalizers run last-in first-out: the database is dropped after the service stops.
            request.addfinalizer(lambda: testing.drop_database(base, url))
        config = {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": url,
            "RPC_TIMEOUT": 5,
            "MAX_DELIVERY_ATTEMPTS": 3,
            "max_workers": 10,
            "serializer": "json",
            "PUBLIC_URL": PUBLIC_URL,
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": smtp.port,
            "MAIL_SPOOL_KEY": Fernet.generate_key().decode(),
            **FAST_RETRY,
            **extra,
        }
        container = ServiceContainer(NotificationsService, config)
        container.start()
        request.addfinalizer(lambda: _stop(container))
        return Running(container, config)

    return start


def _stop(container: Any) -> None:
    try:
        container.stop()
    except Exception:
        container.kill()


def to(address: str):
    """A predicate for SmtpServer.wait_for_message: the message is addressed to `address`."""
    return lambda m: m["To"] == address


def links_in(message: email.message.EmailMessage) -> list[str]:
    """The portal links in the text part (the city's website in the footer left out)."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    return [u for u in re.findall(r"https?://\S+", text) if u.startswith(PUBLIC_URL)]


def html_of(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
