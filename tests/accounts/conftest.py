"""Accounts fixtures: the service on real RabbitMQ with a real store, and registry data.

Provides:
- ``accounts_service`` (module scope): one AccountsService container on a SQLite
  store of its own; ``.store`` is the container's own ServiceStore (use it, never a
  second engine on the same SQLite file: two writers in one eventlet process
  would block each other), ``.add_utility(...)`` / ``.add_customer(...)`` load
  registry rows through the import.
- ``cluster``: a standalone RPC client (``cluster.accounts.link_account(...)``).
- ``store``: a fresh ServiceStore per test, on SQLite or PostgreSQL (``db_url``).
Nothing is faked.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from services.accounts import handlers
from services.accounts.projections import PROJECTIONS
from shared.nameko import Store
from shared.rpc import rpc_client
from shared.uow import ServiceStore
from tests.accounts.helpers import customer_fields, plan_of, service_rows, unique_number


def load_rows(store: ServiceStore, rows: list[dict]) -> dict[str, Any]:
    plan = plan_of(rows)
    if plan.errors:
        raise AssertionError(f"test data has bad rows: {plan.report()}")
    return handlers.import_registry(store, plan, actor="staff:test")


class Registry:
    """Adds customers and accounts with fresh IDs to a store, through the import."""

    def __init__(self, store: ServiceStore) -> None:
        self.store = store

    def add_utility(self, name: str = "CITY OF PLEASANTON", **extra: Any) -> tuple[str, str]:
        account, customer = unique_number(), unique_number()
        load_rows(self.store, service_rows(customer, account, name=name, **extra))
        return account, customer

    def add_customer(self, name: str = "EXAMPLE CUSTOMER", **extra: Any) -> str:
        customer = unique_number()
        fields = customer_fields(customer, name, **extra)
        fields.update(mailing_line1="123 MAIN ST", mailing_city="ANY TOWN", mailing_state="IL")
        fields["mailing_zip"] = "00000"
        load_rows(self.store, [fields])
        return customer


def service_config_for(amqp_uri: str, database_url: str, **extra: Any) -> dict[str, Any]:
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": database_url,
        "RPC_TIMEOUT": 5,
        "MAX_DELIVERY_ATTEMPTS": 3,
        "QUEUE_TYPE": "classic",
        "max_workers": 10,
        "serializer": "json",
    }
    config.update(extra)
    return config


def container_store(container: Any) -> ServiceStore:
    for dep in container.dependencies:
        if isinstance(dep, Store):
            return dep.store
    raise AssertionError("AccountsService has no Store dependency")


@pytest.fixture(scope="module")
def accounts_service(amqp_uri, tmp_path_factory):
    from nameko.containers import ServiceContainer

    from services.accounts.service import AccountsService

    db = f"sqlite:///{tmp_path_factory.mktemp('accounts') / 'accounts.db'}"
    container = ServiceContainer(AccountsService, service_config_for(amqp_uri, db))
    container.start()
    store = container_store(container)
    yield types.SimpleNamespace(
        container=container,
        store=store,
        db=db,
        registry=Registry(store),
        add_utility=Registry(store).add_utility,
        add_customer=Registry(store).add_customer,
    )
    container.kill()


@pytest.fixture
def cluster(amqp_uri):
    with rpc_client(amqp_uri) as c:
        yield c


@pytest.fixture
def store(db_url):
    s = ServiceStore("accounts", db_url, PROJECTIONS)
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(sqlite_url):
    s = ServiceStore("accounts", sqlite_url, PROJECTIONS)
    s.migrate()
    yield s
    s.dispose()
