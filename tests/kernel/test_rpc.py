"""RPC: every call times out, and domain errors keep their meaning across services."""

import time

import pytest
from nameko.containers import ServiceContainer

from shared.errors import InvalidInput, Unavailable
from shared.nameko import KernelService
from shared.rpc import RpcProxy, rpc, rpc_client

pytestmark = pytest.mark.integration


def test_a_domain_error_arrives_as_its_kind_with_fields(pair, amqp_uri):
    pair("sqlite")
    with rpc_client(amqp_uri) as cluster, pytest.raises(InvalidInput) as caught:
        cluster.ledger.deposit("acct-err", 0)
    assert caught.value.errors == {"amount_cents": "must be more than zero"}
    assert caught.value.status == 422


def test_a_bug_is_reported_without_internals(pair, amqp_uri):
    pair("sqlite")
    with rpc_client(amqp_uri) as cluster, pytest.raises(Exception) as caught:
        cluster.ledger.deposit("acct-bug", "not a number")
    assert "Traceback" not in str(caught.value)
    assert "not a number" not in str(caught.value)


class Caller(KernelService):
    name = "caller"
    ledger = RpcProxy("ledger", timeout=0.5)

    @rpc
    def call_slow(self, seconds):
        return self.ledger.slow(seconds)


def test_a_slow_service_times_out_with_a_clear_error(
    pair, amqp_uri, service_config, container_factory
):
    pair("sqlite")
    caller = container_factory(Caller, service_config(None, TOPOLOGY_FILE=None))
    caller.start()
    with rpc_client(amqp_uri) as cluster:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            cluster.caller.call_slow(3)
        assert time.monotonic() - started < 2.5
    assert "ledger" in caught.value.detail and "0.5" in caught.value.detail
    assert caught.value.code == "service_timeout"


def test_a_stopped_service_is_unavailable_not_a_hang(amqp_uri):
    with rpc_client(amqp_uri, timeout=0.5) as cluster, pytest.raises(Unavailable) as caught:
        cluster.nobody_home.ping()
    assert caught.value.extra["service"] == "nobody_home"


def test_container_type_is_plain_nameko():
    # The services run under plain `nameko run`: no custom container class.
    assert ServiceContainer.__module__ == "nameko.containers"


def test_error_extras_keep_their_types_over_rpc():
    from nameko.exceptions import deserialize, serialize

    from shared.errors import RateLimited

    sent = RateLimited("slow down", extra={"retry_after": 3600, "account_number": "028624"})
    back = deserialize(serialize(sent))
    assert isinstance(back, RateLimited)
    assert back.extra == {"retry_after": 3600, "account_number": "028624"}
    assert back.retry_after == 3600


def test_a_broker_that_is_gone_makes_the_call_unavailable_not_a_crash():
    from shared.rpc import ServiceClient

    class BrokerGone:  # nameko's proxy as seen when the broker resets the connection
        def __getattr__(self, method):
            class Method:
                def call_async(self, *args, **kwargs):
                    raise ConnectionResetError(104, "Connection reset by peer")

            return Method()

    client = ServiceClient(BrokerGone(), "billing", timeout=1)
    with pytest.raises(Unavailable) as caught:
        client.bill("98465")
    assert caught.value.code == "broker_unavailable"
    assert caught.value.extra == {"service": "billing"}
