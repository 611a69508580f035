"""Units of work: load aggregates, record events, commit them with the projections.

A handler does its work inside one unit of work::

    with store.unit_of_work(actor="user:ana") as uow:
        bill = uow.get(Bill, "98465")
        bill.apply_payment(amount)
    # committed: events appended with optimistic concurrency, inline projections
    # updated in the same transaction, the relay woken up.

`ServiceStore` bundles one service's event store with its projections; it is
what the nameko `Store` dependency and the ops tool both use.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.aggregate import Aggregate
from shared.errors import ConcurrencyError, NotFound
from shared.events import Envelope, NewEvent
from shared.projection import (
    PROJECTIONS_CONSUMER,
    Projection,
    apply_inline,
    catch_up_async,
    ensure_current,
)
from shared.store import EventStore

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


class UnitOfWork:
    """One transaction's worth of aggregate changes."""

    def __init__(
        self,
        store: ServiceStore,
        conn: Connection,
        *,
        actor: str | None,
        correlation_id: str | None,
        causation_id: str | None,
    ) -> None:
        self.store = store
        self.conn = conn
        self.actor = actor
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self._tracked: dict[str, Aggregate] = {}
        self.appended: list[Envelope] = []

    # -- aggregates ---------------------------------------------------------------------

    def find(self, cls: type[A], id: str) -> A | None:
        """The aggregate with this id, or None if its stream is empty."""
        agg = self.load(cls, id)
        return agg if agg.exists else None

    def get(self, cls: type[A], id: str) -> A:
        """The aggregate with this id; NotFound if it has no events."""
        agg = self.load(cls, id)
        if not agg.exists:
            raise NotFound(
                f"{cls.__name__} {id} not found", code=f"{cls.__name__.lower()}_not_found"
            )
        return agg

    def load(self, cls: type[A], id: str) -> A:
        """The aggregate with this id, new and empty if it has no events yet."""
        stream_id = cls.stream_id_for(id)
        tracked = self._tracked.get(stream_id)
        if tracked is not None:
            if not isinstance(tracked, cls):
                raise TypeError(f"{stream_id} is already loaded as {type(tracked).__name__}")
            return tracked
        agg = cls.from_events(id, self.store.events.read_stream(stream_id, conn=self.conn))
        self._tracked[stream_id] = agg
        return agg

    def add(self, agg: A) -> A:
        """Track a new aggregate; its stream must not exist yet."""
        existing = self._tracked.get(agg.stream_id)
        if existing is not None and existing is not agg:
            raise ConcurrencyError(f"{agg.stream_id} is already loaded in this unit of work")
        self._tracked[agg.stream_id] = agg
        return agg

    # -- raw events ---------------------------------------------------------------------

    def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int | None
    ) -> list[Envelope]:
        """Append events without an aggregate (imports, process managers)."""
        envelopes = self.store.events.append(
            stream_id,
            events,
            expected_version,
            conn=self.conn,
            actor=self.actor,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        self._project(envelopes)
        return envelopes

    def append_many(
        self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], *, loaded: bool = False
    ) -> list[Envelope]:
        """Append to many streams at once (bulk imports, billing runs)."""
        envelopes = self.store.events.append_many(
            batch,
            conn=self.conn,
            actor=self.actor,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            loaded=loaded,
        )
        self._project(envelopes)
        return envelopes

    def flush(self) -> list[Envelope]:
        """Append every tracked aggregate's new events; inline projections follow."""
        batch = []
        for agg in self._tracked.values():
            pending = agg.pending_events()
            if pending:
                batch.append((agg.stream_id, pending, agg.loaded_version))
        if not batch:
            return []
        envelopes = self.append_many(batch, loaded=True)
        for agg in self._tracked.values():
            agg.mark_saved()
        return envelopes

    def _project(self, envelopes: list[Envelope]) -> None:
        apply_inline(self.store.events, self.store.projections, self.conn, envelopes)
        self.appended.extend(envelopes)

    # -- queries inside the transaction ------------------------------------------------

    def execute(self, stmt: Any, params: Any = None) -> Any:
        self.flush()
        return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)


class ServiceStore:
    """One service's event store, projections and units of work."""

    def __init__(
        self,
        service: str,
        url: str | None = None,
        projections: Sequence[type[Projection]] = (),
        *,
        pool_size: int = 10,
    ) -> None:
        self.service = service
        self.events = EventStore(service, url, pool_size=pool_size)
        self.projection_classes = list(projections)
        self.projections = [cls() for cls in self.projection_classes]

    @property
    def metadatas(self) -> list[sa.MetaData]:
        seen: list[sa.MetaData] = []
        for cls in self.projection_classes:
            for table in cls.tables:
                if table.metadata not in seen:
                    seen.append(table.metadata)
        return seen

    def migrate(self) -> list[str]:
        """Create tables; rebuild projections whose version changed. Returns those rebuilt."""
        self.events.migrate(*self.metadatas)
        return ensure_current(self.events, self.projection_classes)

    def projection(self, name: str) -> Projection:
        for projection in self.projections:
            if projection.name == name:
                return projection
        raise KeyError(name)

    @contextlib.contextmanager
    def unit_of_work(
        self,
        *,
        actor: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Iterator[UnitOfWork]:
        """A transaction that commits the recorded events and their inline projections."""
        with self.events.transaction() as conn:
            uow = UnitOfWork(
                self, conn, actor=actor, correlation_id=correlation_id, causation_id=causation_id
            )
            yield uow
            uow.flush()
        if uow.appended:
            self.events.notify_appended()

    def run(self, work: Callable[[UnitOfWork], T], *, attempts: int = 3, **meta: Any) -> T:
        """Run `work` in a unit of work, retrying it when a concurrent write won."""
        for attempt in range(1, attempts + 1):
            try:
                with self.unit_of_work(**meta) as uow:
                    return work(uow)
            except ConcurrencyError:
                if attempt == attempts:
                    raise
                time.sleep(0.005 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover  # noqa: S101

    def consume(
        self,
        consumer: str,
        envelope: Envelope,
        work: Callable[[UnitOfWork], T] | None,
        *,
        actor: str | None = None,
    ) -> bool:
        """Handle a foreign event exactly once: inbox row, effects and projections commit together.

        Returns False when this consumer had already handled the event.
        """
        with self.events.transaction() as conn:
            if not self.events.claim(consumer, envelope, conn=conn):
                return False
            uow = UnitOfWork(
                self,
                conn,
                actor=actor or envelope.actor,
                correlation_id=envelope.correlation_id or envelope.event_id,
                causation_id=envelope.event_id,
            )
            # Projections see a foreign event once, however many consumers handle it.
            if self.events.claim(PROJECTIONS_CONSUMER, envelope, conn=conn):
                apply_inline(self.events, self.projections, conn, [envelope])
            if work is not None:
                work(uow)
            uow.flush()
        if uow.appended:
            self.events.notify_appended()
        return True

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection for queries on projection tables."""
        with self.events.reading() as conn:
            yield conn

    def catch_up(self) -> int:
        """Bring every async projection up to the head of the log (tests, ops)."""
        return sum(catch_up_async(self.events, p) for p in self.projections if p.mode == "async")

    def dispose(self) -> None:
        self.events.dispose()
