"""A replay (`muniportal-ops republish`) or a rebuild (`muniportal-ops rebuild`) sends nothing.

identity's events come from a real identity event store and reach RabbitMQ once through a
publisher, as its relay would publish them; then the ops tool republishes the whole log,
flagged as a replay, including an event notifications has never seen.
"""

from __future__ import annotations

import uuid

import pytest

from shared.events import NewEvent
from shared.ops import cli
from shared.relay import ConfirmingPublisher, events_exchange
from shared.store import EventStore
from shared.testing import wait_for
from tests.notifications.conftest import to, unique_email

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(start_notifications):
    return start_notifications("postgresql", max_workers=1)


@pytest.fixture
def identity_log(tmp_path, amqp_uri, monkeypatch):
    """identity's event store (SQLite), its relay-like publisher, and the ops tool's env."""
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    store = EventStore("identity", url)
    store.migrate()
    publisher = ConfirmingPublisher(amqp_uri, events_exchange("identity"), name="test-relay")
    monkeypatch.setenv("IDENTITY_DATABASE_URL", url)
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    yield store, publisher
    publisher.close()
    store.dispose()


def register(store: EventStore, user_id: str, email: str) -> None:
    store.append(
        f"user-{user_id}",
        [
            NewEvent(
                "UserRegistered",
                {"user_id": user_id, "display_user_id": user_id, "email": email, "via": "password"},
                1,
            ),
            NewEvent("EmailVerified", {"user_id": user_id, "email": email}, 1),
        ],
        None,
    )


def changed_password(store: EventStore, user_id: str) -> None:
    store.append(f"user-{user_id}", [NewEvent("PasswordChanged", {"user_id": user_id}, 1)], None)


def marker(svc, smtp, producer) -> str:
    """A fresh user's password notice, published normally: arrives after everything before."""
    user_id = f"m{uuid.uuid4().hex[:8]}"
    email = unique_email("marker")
    stream = f"user-{user_id}"
    producer.emit(
        "identity",
        "UserRegistered",
        {"user_id": user_id, "email": email, "via": "oidc"},
        stream_id=stream,
    )
    wait_for(lambda: svc.store.events.inbox_count("notifications.on_user_registered"))
    wait_for(
        lambda: _known(svc, user_id), what="the marker user to be known before the marker event"
    )
    producer.emit("identity", "PasswordChanged", {"user_id": user_id}, stream_id=stream, version=2)
    smtp.wait_for_message(to(email), what="the marker email")
    wait_for(
        lambda: [m["status"] for m in svc.messages_to(email)] == ["sent"],
        what="the marker recorded as sent",
    )
    return email


def _known(svc, user_id: str) -> bool:
    import sqlalchemy as sa

    from services.notifications.projections import users

    with svc.store.read() as conn:
        return bool(conn.execute(sa.select(users).where(users.c.user_id == user_id)).first())


def test_a_republished_log_sends_nothing_not_even_for_events_never_seen(
    svc, smtp, producer, identity_log
):
    store, publisher = identity_log
    user_id = f"r{uuid.uuid4().hex[:8]}"
    email = unique_email("replayed")
    register(store, user_id, email)
    changed_password(store, user_id)
    publisher.publish(store.read_all(0))  # what identity's relay does, once
    smtp.wait_for_message(to(email), what="the original notice")

    changed_password(store, user_id)  # a fact notifications never received
    assert cli.main(["republish", "identity", "--from", "1"]) == 0
    marker(svc, smtp, producer)

    never_seen = store.read_all(0)[-1]
    consumed = svc.store.events.read_inbox(0, 100000)
    assert never_seen.event_id in {env.event_id for _, env in consumed}  # it was handled...
    assert [m for m in smtp.messages() if m["To"] == email].__len__() == 1  # ...and sent nothing
    assert len(svc.messages_to(email)) == 1


def test_rebuilding_every_projection_sends_nothing_and_keeps_the_log(
    svc, smtp, producer, monkeypatch
):
    email = marker(svc, smtp, producer)
    before = len(smtp.messages())
    statuses = {m["message_id"]: m["status"] for m in svc.messages_to(email)}
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", svc.database_url)
    assert cli.main(["rebuild", "notifications"]) == 0
    assert {m["message_id"]: m["status"] for m in svc.messages_to(email)} == statuses
    marker(svc, smtp, producer)  # the service still works after the swap...
    assert len(smtp.messages()) == before + 1  # ...and only the marker was sent
