"""Two replicas on one PostgreSQL store share the throttle: its state lives in the store."""

import pytest
from nameko.containers import ServiceContainer

from services.accounts.service import AccountsService
from shared.errors import InvalidInput, RateLimited
from shared.rpc import rpc_client
from tests.accounts.conftest import Registry, container_store, service_config_for
from tests.accounts.helpers import unique_user

pytestmark = pytest.mark.integration


@pytest.fixture
def replicas(amqp_uri, pg_url):
    made = [ServiceContainer(AccountsService, service_config_for(amqp_uri, pg_url))]
    made.append(ServiceContainer(AccountsService, service_config_for(amqp_uri, pg_url)))
    for container in made:
        container.start()
    yield made
    for container in made:
        container.kill()


def test_the_throttle_counts_failures_on_every_replica(replicas, amqp_uri):
    account, customer = Registry(container_store(replicas[0])).add_utility()
    user = unique_user()
    values = {"type": "utility", "account_number": account}
    with rpc_client(amqp_uri) as cluster:
        # Calls are spread over both replicas; neither could throttle alone.
        for i in range(10):
            with pytest.raises(InvalidInput):
                cluster.accounts.link_account(user, {**values, "customer_id": f"7{i}"})
        with pytest.raises(RateLimited):
            cluster.accounts.link_account(user, {**values, "customer_id": customer})


def test_concurrent_failures_cannot_slip_under_the_limit(replicas, amqp_uri):
    account, _ = Registry(container_store(replicas[0])).add_utility()
    user = unique_user()
    with rpc_client(amqp_uri, timeout=30) as cluster:
        method = cluster._proxy.accounts.link_account
        replies = [
            method.call_async(
                user, {"type": "utility", "account_number": account, "customer_id": f"8{i}"}
            )
            for i in range(13)
        ]
        outcomes = []
        for reply in replies:
            try:
                reply.result()
                outcomes.append("linked")
            except RateLimited:
                outcomes.append("throttled")
            except InvalidInput as exc:
                outcomes.append(exc.code)
    assert outcomes.count("no_account_match") == 10
    assert outcomes.count("throttled") == 3
