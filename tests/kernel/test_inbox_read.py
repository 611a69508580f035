"""Reading the inbox for rebuilds: one envelope per consumed event, in arrival order."""

import datetime as dt
import uuid

import pytest

from shared.events import Envelope
from shared.store import EventStore
from shared.uow import PROJECTIONS_CONSUMER

pytestmark = pytest.mark.integration


def envelope(n: int) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        type="InboxReadProbe" if n % 2 else "Withdrawn",
        schema_version=1,
        stream_id=f"acct-{n}",
        version=1,
        position=n,
        occurred_at=dt.datetime(2026, 11, 22, 10, n % 60, tzinfo=dt.UTC),
        correlation_id="c",
        causation_id=None,
        actor="system",
        source="ledger",
        data={"account": f"a{n}", "amount_cents": n},
    )


def test_the_projections_consumer_reads_each_event_once_like_the_grouped_read(db_url):
    store = EventStore("inboxreader", db_url)
    store.migrate()
    sent = [envelope(n) for n in range(1, 12)]
    with store.transaction() as conn:
        for env in sent:
            # As ServiceStore.consume does: the handler's claim, then the projections' claim.
            store.claim("svc.on_event", env, conn=conn)
            store.claim(PROJECTIONS_CONSUMER, env, conn=conn)
            if env.type == "InboxReadProbe":  # a second consumer of the same event
                store.claim("svc.other", env, conn=conn)
    grouped = store.read_inbox(0, 100)
    by_consumer = store.read_inbox(0, 100, consumer=PROJECTIONS_CONSUMER)
    assert [e.event_id for _, e in by_consumer] == [e.event_id for _, e in grouped]
    assert [e.event_id for _, e in by_consumer] == [e.event_id for e in sent]
    assert [e.to_wire() for _, e in by_consumer] == [e.to_wire() for e in sent]
    # Paging by row id, with a type filter.
    first = store.read_inbox(
        0, 3, types=[("ledger", "InboxReadProbe")], consumer=PROJECTIONS_CONSUMER
    )
    rest = store.read_inbox(
        first[-1][0], 100, types=[("ledger", "InboxReadProbe")], consumer=PROJECTIONS_CONSUMER
    )
    assert [e.event_id for _, e in first + rest] == [
        e.event_id for e in sent if e.type == "InboxReadProbe"
    ]
    store.dispose()


def test_a_stored_envelope_reads_back_as_the_validated_one():
    env = envelope(7)
    assert Envelope.from_stored(env.to_wire()) == Envelope.from_wire(env.to_wire())
