"""The aggregate base: state changes only by applying events, whatever subclasses call things."""

import pytest

from shared.aggregate import Aggregate, applies
from shared.errors import InvalidInput


class Counter(Aggregate):
    stream_type = "counter"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.total = 0

    def add(self, n: int) -> None:
        if n <= 0:
            raise InvalidInput(errors={"n": "must be positive"})
        self.record("CounterIncreased", {"n": n})

    # Names a subclass might well choose; the base's own state must not collide.
    @applies("CounterIncreased")
    def _pending(self, data: dict) -> None:
        self.total += data["n"]

    def _loaded_version(self) -> str:
        return "mine"


def test_recorded_events_apply_and_wait_for_saving():
    counter = Counter("c1")
    counter.add(2)
    counter.add(3)
    assert counter.total == 5
    assert counter.version == 2
    assert [e.data for e in counter.pending_events()] == [{"n": 2}, {"n": 3}]
    counter.mark_saved()
    assert counter.pending_events() == [] and counter.loaded_version == 2
    assert counter._loaded_version() == "mine"


def test_a_broken_rule_records_nothing():
    counter = Counter("c2")
    with pytest.raises(InvalidInput) as caught:
        counter.add(0)
    assert caught.value.errors == {"n": "must be positive"}
    assert counter.pending_events() == [] and counter.version == 0
