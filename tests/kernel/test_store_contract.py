"""The event store's contract, run against both backends (SQLite and PostgreSQL)."""

import datetime as dt
import uuid

import pytest
from marshmallow import Schema, fields

from shared.errors import ConcurrencyError, InvalidInput
from shared.events import Envelope, NewEvent, event_type, upcast, upcaster
from shared.store import EventStore

pytestmark = pytest.mark.integration


@event_type("ContractNoted", version=3)
class ContractNoted(Schema):
    text = fields.Str(required=True)
    lang = fields.Str(required=True)
    words = fields.Int(required=True)


@upcaster("ContractNoted", from_version=1)
def _v1_to_v2(data):
    return {**data, "lang": "en"}


@upcaster("ContractNoted", from_version=2)
def _v2_to_v3(data):
    return {**data, "words": len(data["text"].split())}


@pytest.fixture
def store(db_url):
    s = EventStore("contract", db_url)
    s.migrate()
    yield s
    s.dispose()


def ev(n, type_="Happened"):
    return NewEvent(type_, {"n": n})


def test_append_then_read_stream_in_version_order(store):
    envs = store.append(
        "s-1",
        [ev(1), ev(2), ev(3)],
        expected_version=0,
        actor="user:ana",
        correlation_id="req-1",
        causation_id="cause-1",
    )
    assert [e.version for e in envs] == [1, 2, 3]
    read = store.read_stream("s-1")
    assert [e.data["n"] for e in read] == [1, 2, 3]
    first = read[0]
    assert uuid.UUID(first.event_id)
    assert first.actor == "user:ana"
    assert first.correlation_id == "req-1"
    assert first.causation_id == "cause-1"
    assert first.source == "contract"
    assert first.occurred_at.tzinfo is not None
    assert abs(first.occurred_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_expected_version_is_enforced(store):
    store.append("s-2", [ev(1)], expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        store.append("s-2", [ev(2)], expected_version=0)
    assert caught.value.extra["stream_id"] == "s-2"
    with pytest.raises(ConcurrencyError):
        store.append("s-2", [ev(2)], expected_version=5)
    store.append("s-2", [ev(2)], expected_version=1)
    store.append("s-2", [ev(3)], expected_version=None)  # any version: appended after the last
    assert [e.version for e in store.read_stream("s-2")] == [1, 2, 3]


def test_a_failed_append_writes_nothing(store):
    store.append("s-3", [ev(1)], expected_version=0)
    with pytest.raises(ConcurrencyError):
        store.append("s-3", [ev(2), ev(3)], expected_version=0)
    assert len(store.read_stream("s-3")) == 1
    assert store.head_position() == 1


def test_read_all_is_the_log_in_order_with_dense_positions(store):
    store.append("a", [ev(1), ev(2)], 0)
    store.append("b", [ev(3)], 0)
    store.append("a", [ev(4)], 2)
    envs = store.read_all(0, 100)
    assert [e.data["n"] for e in envs] == [1, 2, 3, 4]
    assert [e.position for e in envs] == [1, 2, 3, 4]
    assert [e.data["n"] for e in store.read_all(2, 1)] == [3]
    assert store.read_all(4, 10) == []
    assert [e.data["n"] for e in store.read_all(0, 10, types=["Other"])] == []
    assert store.head_position() == 4


def test_read_all_rejects_bad_ranges(store):
    with pytest.raises(ValueError):
        store.read_all(-1, 10)
    with pytest.raises(ValueError):
        store.read_all(0, 0)


def test_append_many_is_one_atomic_batch(store):
    store.append("m-1", [ev(0)], 0)
    with pytest.raises(ConcurrencyError):
        with store.transaction() as conn:
            store.append_many([("m-2", [ev(1)], 0), ("m-1", [ev(2)], 0)], conn=conn)
    assert store.read_stream("m-2") == []
    with store.transaction() as conn:
        envs = store.append_many([("m-2", [ev(1), ev(2)], 0), ("m-1", [ev(3)], 1)], conn=conn)
    assert [(e.stream_id, e.version) for e in envs] == [("m-2", 1), ("m-2", 2), ("m-1", 2)]


def test_old_schema_versions_are_upcast_on_read(store):
    store.append("doc-1", [NewEvent("ContractNoted", {"text": "two words"}, schema_version=1)], 0)
    store.append(
        "doc-1", [NewEvent("ContractNoted", {"text": "a b c", "lang": "fr"}, schema_version=2)], 1
    )
    read = store.read_stream("doc-1")
    assert [(e.schema_version, e.data) for e in read] == [
        (3, {"text": "two words", "lang": "en", "words": 2}),
        (3, {"text": "a b c", "lang": "fr", "words": 3}),
    ]
    assert store.read_all(0, 10)[0].data["words"] == 2


def test_upcast_without_a_path_is_an_error():
    with pytest.raises(LookupError):
        upcast("ContractNoted", 0, {})


def test_envelopes_from_the_wire_are_validated_and_upcast():
    good = {
        "event_id": str(uuid.uuid4()),
        "type": "ContractNoted",
        "schema_version": 1,
        "stream_id": "doc-9",
        "version": 1,
        "position": 7,
        "occurred_at": "2026-11-22T10:00:00+00:00",
        "source": "elsewhere",
        "data": {"text": "hello"},
    }
    env = Envelope.from_wire(good)
    assert env.data == {"text": "hello", "lang": "en", "words": 1}
    assert env.to_wire()["occurred_at"] == "2026-11-22T10:00:00+00:00"
    for broken in (
        {**good, "event_id": "nope"},
        {**good, "version": 0},
        {k: v for k, v in good.items() if k != "type"},
    ):
        with pytest.raises(InvalidInput):
            Envelope.from_wire(broken)


def test_checkpoints_and_inbox(store):
    assert store.checkpoint("relay") == 0
    with store.transaction() as conn:
        store.set_checkpoint("relay", 5, conn=conn)
        store.set_checkpoint("relay", 7, conn=conn)
    assert store.checkpoint("relay") == 7
    env = store.append("inbox-test", [ev(1)], 0)[0]
    with store.transaction() as conn:
        assert store.claim("svc.handler", env, conn=conn) is True
        assert store.claim("svc.handler", env, conn=conn) is False
        assert store.claim("svc.other", env, conn=conn) is True
    assert store.inbox_count("svc.handler") == 1
    ((_, back),) = store.read_inbox(0, 10)
    assert back.event_id == env.event_id and back.data == {"n": 1}


def test_a_rolled_back_transaction_leaves_no_trace(store):
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.append("rb", [ev(1)], 0, conn=conn)
        raise RuntimeError("boom")
    assert store.read_stream("rb") == []
    assert store.head_position() == 0
    store.append("rb", [ev(2)], 0)
    assert [e.position for e in store.read_all(0, 10)] == [1]


def test_streams_listing(store):
    store.append("bill-1", [ev(1), ev(2)], 0)
    store.append("bill-2", [ev(1)], 0)
    store.append("user-1", [ev(1)], 0)
    listed = store.streams(prefix="bill-")
    assert [(s["stream_id"], s["version"]) for s in listed] == [("bill-1", 2), ("bill-2", 1)]


def test_postgresql_readers_wait_for_this_stores_writers_only(pg_url, pg_base):
    import sqlalchemy as sa

    store = EventStore("horizon", pg_url)
    store.migrate()
    other = sa.create_engine(pg_base)
    with other.connect() as unrelated:
        unrelated.begin()
        unrelated.execute(sa.text("SELECT pg_current_xact_id()"))  # holds an xid, open
        store.append("h-1", [ev(1)], 0)
        assert store.head_position() == 1, "an unrelated open transaction must not delay us"
        with store.transaction() as slow:
            store.append("h-2", [ev(2)], 0, conn=slow)  # our own writer, still open
            store.append("h-3", [ev(3)], 0)  # commits first
            assert store.head_position() == 1, "a later commit waits for our open writer"
        assert [e.stream_id for e in store.read_all(0, 10)] == ["h-1", "h-2", "h-3"]
    other.dispose()
    store.dispose()


def test_relay_wire_bodies_are_the_envelopes_json(store):
    import json

    store.append(
        "w-1",
        [NewEvent("Happened", {"n": 1, "text": 'quote " and \\ é'})],
        0,
        actor="user:ana",
        correlation_id="req-9",
    )
    store.append("w-2", [ev(2)], 0)
    # Names that need escaping take json.dumps's path, not the plain-string shortcut.
    store.append('w-"3" é', [ev(3)], 0, actor='staff:"pat"\\x', correlation_id="req\n9")
    wire = store.read_all_wire(0, 10)
    full = store.read_all(0, 10)
    assert [json.loads(w.body) for w in wire] == [e.to_wire() for e in full]
    assert [(w.position, w.event_id, w.type) for w in wire] == [
        (e.position, e.event_id, e.type) for e in full
    ]
    assert len(wire) == 3
    assert store.read_all_wire(3, 10) == []
