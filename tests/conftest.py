"""Test rig: real RabbitMQ and PostgreSQL, isolated per session and per test.

Provides:
- ``amqp_uri``: a RabbitMQ vhost of its own for this session (from AMQP_URI, else
  localhost, else testcontainers), deleted at the end.
- ``pg_url``: a fresh PostgreSQL database per test (from DATABASE_URL, else
  localhost, else testcontainers), dropped afterwards.
- ``sqlite_url``: a fresh SQLite file per test.
- ``db_url``: parametrized over both backends, for contract tests.
- ``container_factory`` / ``runner_factory``: nameko containers, killed after the test.
- ``service_config``: a nameko config for a service under test.

Nothing is faked, and nothing is skipped: when RabbitMQ or PostgreSQL is missing,
the run fails with a message naming what is missing and how to start it.
"""

from __future__ import annotations

import os

import pytest

from shared import testing


@pytest.fixture(scope="session")
def amqp_base():
    try:
        uri, container = testing.amqp_base_uri()
    except testing.MissingInfrastructure as exc:
        pytest.fail(str(exc), pytrace=False)
    yield uri
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
def amqp_uri(amqp_base):
    vhost = testing.create_vhost(amqp_base)
    if vhost is None:
        # A shared broker we may not administer: run in its vhost, and say so.
        print(f"\nNOTE: could not create a vhost; tests share {amqp_base}")
        yield amqp_base
        return
    yield testing.with_vhost(amqp_base, vhost)
    testing.delete_vhost(amqp_base, vhost)


@pytest.fixture(scope="session")
def pg_base():
    try:
        url, container = testing.pg_base_url()
    except testing.MissingInfrastructure as exc:
        pytest.fail(str(exc), pytrace=False)
    yield url
    if container is not None:
        container.stop()


@pytest.fixture
def pg_url(pg_base):
    url = testing.create_database(pg_base)
    yield url
    testing.drop_database(pg_base, url)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def service_config(amqp_uri):
    """Build a nameko config: service_config(database_url=..., **extra)."""

    def make(database_url: str | None = None, **extra):
        config = {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": database_url,
            "RPC_TIMEOUT": 5,
            "MAX_DELIVERY_ATTEMPTS": 3,
            "QUEUE_TYPE": os.environ.get("QUEUE_TYPE", "classic"),
            "max_workers": 10,
            "serializer": "json",
        }
        config.update(extra)
        return config

    return make


@pytest.fixture
def container_factory():
    from nameko.containers import ServiceContainer

    made = []

    def make(service_cls, config):
        container = ServiceContainer(service_cls, config)
        made.append(container)
        return container

    yield make
    for container in made:
        try:
            container.kill()
        except Exception:  # noqa: S110 - already dead is fine at teardown
            pass


@pytest.fixture
def runner_factory():
    from nameko.runners import ServiceRunner

    made = []

    def make(config, *service_classes):
        runner = ServiceRunner(config)
        for cls in service_classes:
            runner.add_service(cls)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        try:
            runner.kill()
        except Exception:  # noqa: S110
            pass


@pytest.fixture
def smtp_server(tmp_path):
    """A real SMTP server (aiosmtpd, own process) for this test: .messages(), .set_mode(),
    .stop()/.start() for an outage, .wait_for_message(predicate)."""
    server = testing.SmtpServer(tmp_path / "smtp").start()
    yield server
    server.stop()
