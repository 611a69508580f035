"""The aggregate base class: check a rule, record an event, apply it.

Domain code stays plain Python with no I/O::

    class Counter(Aggregate):
        stream_type = "counter"

        def __init__(self, id: str) -> None:
            super().__init__(id)
            self.total = 0

        def add(self, n: int) -> None:
            if n <= 0:
                raise InvalidInput(errors={"n": "must be positive"})
            self.record("CounterIncreased", {"n": n})

        @applies("CounterIncreased")
        def _increased(self, data: dict) -> None:
            self.total += data["n"]

State changes only when an event is applied, whether it was just recorded or
read back from the log, so replaying a stream rebuilds the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from shared.events import Envelope, NewEvent, validate_data

A = TypeVar("A", bound="Aggregate")
Applier = Callable[[Any, dict[str, Any]], None]


def applies(*event_types: str) -> Callable[[Applier], Applier]:
    """Mark a method as the state change for the given event types."""

    def mark(fn: Applier) -> Applier:
        fn.__applies__ = event_types  # type: ignore[attr-defined]
        return fn

    return mark


class Aggregate:
    """A consistency boundary stored as one event stream."""

    stream_type: ClassVar[str] = ""
    _appliers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        appliers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                for event_type in getattr(member, "__applies__", ()):
                    appliers[event_type] = name
        cls._appliers = appliers

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self.__pending: list[NewEvent] = []
        self.__loaded_version = 0

    @classmethod
    def stream_id_for(cls, id: str) -> str:
        return f"{cls.stream_type}-{id}" if cls.stream_type else id

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    @property
    def exists(self) -> bool:
        return self.version > 0

    def record(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Validate, apply and keep an event for the next save."""
        clean = validate_data(event_type, data)
        self._apply(event_type, clean)
        self.__pending.append(NewEvent(event_type, clean))
        self.version += 1

    def _apply(self, event_type: str, data: dict[str, Any]) -> None:
        name = self._appliers.get(event_type)
        if name is not None:
            getattr(self, name)(data)

    def replay(self, envelopes: Iterable[Envelope]) -> None:
        for env in envelopes:
            self._apply(env.type, env.data)
            self.version = env.version
        self.__loaded_version = self.version

    def pending_events(self) -> list[NewEvent]:
        return list(self.__pending)

    def mark_saved(self) -> None:
        self.__pending.clear()
        self.__loaded_version = self.version

    @property
    def loaded_version(self) -> int:
        return self.__loaded_version

    @classmethod
    def from_events(cls: type[A], id: str, envelopes: Iterable[Envelope]) -> A:
        agg = cls(id)
        agg.replay(envelopes)
        return agg
