"""Events cross RabbitMQ for real: identity's claim comes in, accounts' facts go out."""

import datetime as dt
import uuid

import kombu
import pytest

from shared.events import Envelope
from shared.relay import ConfirmingPublisher
from shared.testing import wait_for
from tests.accounts.helpers import stored_events, unique_user

pytestmark = pytest.mark.integration


def identity_claim(user, account_numbers):
    """LegacyAccountsClaimed as identity publishes it (identity is built in parallel)."""
    return Envelope(
        event_id=str(uuid.uuid4()),
        type="LegacyAccountsClaimed",
        schema_version=1,
        stream_id=f"user-{user}",
        version=4,
        position=42,
        occurred_at=dt.datetime.now(dt.UTC),
        correlation_id=f"req-{user}",
        causation_id=None,
        actor=f"user:{user}",
        source="identity",
        data={"user_id": user, "legacy_ids": ["CSS-77"], "account_numbers": account_numbers},
    )


def test_a_legacy_claim_restores_the_links_once(accounts_service, cluster, amqp_uri):
    first, _ = accounts_service.add_utility()
    second, _ = accounts_service.add_utility()
    user, sentinel_user = unique_user(), unique_user()
    claim = identity_claim(user, [first, f"00{second} ", "99999999", "not a number"])
    publisher = ConfirmingPublisher(amqp_uri, "identity.events", name="test-identity")
    try:
        publisher.publish([claim])
        publisher.publish([claim])  # at-least-once delivery: a duplicate
        publisher.publish([identity_claim(sentinel_user, [first])])
    finally:
        publisher.close()
    wait_for(lambda: cluster.accounts.list_links(sentinel_user), what="the sentinel claim")
    links = wait_for(
        lambda: len(cluster.accounts.list_links(user)) == 2 and cluster.accounts.list_links(user),
        what="the restored links",
    )
    assert sorted(link["account_number"] for link in links) == sorted([first, second])
    assert {link["via"] for link in links} == {"legacy"}
    created = [
        e for e in stored_events(accounts_service.store, "LinkCreated") if e.data["user_id"] == user
    ]
    assert len(created) == 2  # the duplicate changed nothing
    assert {e.actor for e in created} == {f"user:{user}"}
    assert {e.causation_id for e in created} == {claim.event_id}


def test_link_events_are_published_for_other_services(accounts_service, cluster, amqp_uri):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    exchange = kombu.Exchange("accounts.events", type="topic", durable=True)
    with kombu.Connection(amqp_uri) as conn:
        queue = kombu.Queue(
            f"test-accounts-{uuid.uuid4().hex[:8]}",
            exchange=exchange,
            routing_key="LinkCreated",
            exclusive=True,
        )(conn.channel())
        queue.declare()
        cluster.accounts.link_account(
            user, {"type": "utility", "account_number": account, "customer_id": customer}
        )

        def mine():
            message = queue.get(no_ack=True)
            while message is not None:
                body = message.decode()
                if body["data"]["user_id"] == user:
                    return body
                message = queue.get(no_ack=True)
            return None

        body = wait_for(mine, what="LinkCreated on accounts.events")
    assert body["source"] == "accounts" and body["type"] == "LinkCreated"
    assert body["data"]["account_number"] == account and body["actor"] == f"user:{user}"
