"""Projections: read models built from events, checkpointed and rebuildable.

A projection declares its tables and one handler per event type::

    class BillsProjection(Projection):
        name = "bills"
        version = 1
        tables = (bills,)

        @handles("BillIssued")
        def issued(self, w: Writer, e: Envelope) -> None:
            w.insert(self.t.bills, {"bill_number": e.data["bill_number"], ...})

        @handles("payments.PaymentSucceeded")     # an event of another service
        def paid(self, w: Writer, e: Envelope) -> None: ...

Modes:

* ``inline`` (default): updated in the same transaction that appends the
  events (or claims a consumed foreign event), so a reader sees its own writes.
* ``async``: updated after commit by a checkpointed runner that tails the
  service's own log; for heavy or derived read models.

Handlers receive a `Writer`, never a mailer or a processor: a projection cannot
cause a side effect, which is why rebuilding one is always safe.

Rebuild builds into fresh shadow tables while reads keep using the live ones,
then swaps them in one short transaction that briefly holds back writers.
"""

from __future__ import annotations

import heapq
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shared.events import Envelope
from shared.store import EventStore, event_order_table, events_table

log = logging.getLogger(__name__)

Handler = Callable[[Any, "Writer", Envelope], None]

# The inbox name under which projections claim a foreign event, once per event.
PROJECTIONS_CONSUMER = "projections"


def handles(*keys: str) -> Callable[[Handler], Handler]:
    """Mark a projection method as the handler of these event types.

    An own event is named by its type (``"BillIssued"``); another service's by
    ``"source.Type"`` (``"payments.PaymentSucceeded"``).
    """

    def mark(fn: Handler) -> Handler:
        fn.__handles__ = keys  # type: ignore[attr-defined]
        return fn

    return mark


class Tables:
    """Attribute access to a projection's physical tables by their logical names."""

    def __init__(self, mapping: dict[str, sa.Table]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> sa.Table:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> sa.Table:
        return self._mapping[name]

    def items(self) -> Iterable[tuple[str, sa.Table]]:
        return self._mapping.items()


class Projection:
    """Base class for a read model fed by events."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    mode: ClassVar[str] = "inline"
    tables: ClassVar[Sequence[sa.Table]] = ()
    _handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, member in vars(klass).items():
                for key in getattr(member, "__handles__", ()):
                    found[key] = attr
        cls._handlers = found

    def __init__(self, physical: dict[str, sa.Table] | None = None) -> None:
        self.t = Tables(physical or {t.name: t for t in self.tables})

    @classmethod
    def own_types(cls) -> list[str]:
        return [k for k in cls._handlers if "." not in k]

    @classmethod
    def foreign_types(cls) -> list[tuple[str, str]]:
        out = []
        for key in cls._handlers:
            if "." in key:
                source, _, name = key.partition(".")
                out.append((source, name))
        return out

    @classmethod
    def handler_key(cls, env: Envelope, own_service: str) -> str:
        return env.type if env.source == own_service else f"{env.source}.{env.type}"

    def apply(self, w: Writer, env: Envelope, own_service: str) -> bool:
        attr = self._handlers.get(self.handler_key(env, own_service))
        if attr is None:
            return False
        getattr(self, attr)(w, env)
        return True


class Writer:
    """Writes for projection handlers; inserts and upserts go out in batches.

    Each table keeps its own batch, so a handler that writes several tables per
    event still sends one statement per table, not one per row. Order is kept
    where it matters: tables flush in the order first written, a table used in
    another mode flushes first, and every read, update or delete flushes all.
    """

    def __init__(self, conn: Connection, is_sqlite: bool) -> None:
        self.conn = conn
        self._is_sqlite = is_sqlite
        self._insert = sqlite.insert if is_sqlite else postgresql.insert
        # table -> (mode, pending); mode is None for inserts or (key, add) for upserts
        self._batches: dict[sa.Table, tuple[Any, Any]] = {}

    def insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        self._batch(table, None).append(row)

    def upsert(
        self,
        table: sa.Table,
        row: dict[str, Any],
        key: Sequence[str],
        add: Sequence[str] = (),
        *,
        newer: str | None = None,
    ) -> None:
        """Insert the row, or update the row with this key.

        Columns in `add` are increments: on conflict they are added to the stored
        value (counters, balances), so accumulating projections need no read.
        With `newer` (a column, e.g. the source record's time), a row only replaces
        one whose `newer` is not later: the latest record wins in any order.
        """
        key, add = tuple(key), tuple(add)
        if add and newer:
            raise ValueError("an upsert adds increments or keeps the newest, not both")
        pending = self._batch(table, (key, add, newer))
        ident = tuple(row[k] for k in key)
        merged = pending.get(ident)
        if merged is None:
            pending[ident] = dict(row)
        elif newer is not None:
            older = row[newer] < merged[newer]
            pending[ident] = {**row, **merged} if older else {**merged, **row}
        else:
            for column, value in row.items():
                merged[column] = (
                    merged[column] + value if column in add and column in merged else value
                )

    def _batch(self, table: sa.Table, mode: Any) -> Any:
        current = self._batches.get(table)
        if current is not None and current[0] != mode:
            self.flush()  # the same table in another mode: keep the order of writes
            current = None
        if current is None:
            current = (mode, [] if mode is None else {})
            self._batches[table] = current
        return current[1]

    def update(self, table: sa.Table, where: dict[str, Any], values: dict[str, Any]) -> int:
        self.flush()
        stmt = table.update().where(*[table.c[k] == v for k, v in where.items()]).values(values)
        return self.conn.execute(stmt).rowcount

    def delete(self, table: sa.Table, where: dict[str, Any]) -> int:
        self.flush()
        stmt = table.delete().where(*[table.c[k] == v for k, v in where.items()])
        return self.conn.execute(stmt).rowcount

    def execute(self, stmt: Any, params: Any = None) -> Any:
        self.flush()
        return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)

    def one(self, stmt: Any) -> Any:
        return self.execute(stmt).mappings().first()

    def scalar(self, stmt: Any) -> Any:
        return self.execute(stmt).scalar()

    def flush(self) -> None:
        batches, self._batches = self._batches, {}
        for table, (mode, pending) in batches.items():
            if not pending:
                continue
            if mode is None:
                if self._is_sqlite:
                    self.conn.execute(table.insert(), pending)
                else:
                    self._insert_pg(table, pending)
            else:
                self._flush_upserts(table, mode, list(pending.values()))

    def _flush_upserts(self, table: sa.Table, mode: Any, rows: list[dict[str, Any]]) -> None:
        key, add, newer = mode
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_shape.setdefault(tuple(sorted(row)), []).append(row)
        for shape, group in by_shape.items():
            stmt = self._insert(table)
            updates = {
                c: (table.c[c] + stmt.excluded[c]) if c in add else stmt.excluded[c]
                for c in shape
                if c not in key
            }
            if updates:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(key),
                    set_=updates,
                    where=None if newer is None else table.c[newer] <= stmt.excluded[newer],
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
            self.conn.execute(stmt, group)

    def _insert_pg(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Inserts as positional multi-row statements straight through psycopg2 (about
        twice SQLAlchemy's executemany), with each column type's bind processing."""
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_shape.setdefault(tuple(row), []).append(row)
        dialect = self.conn.dialect
        quote = dialect.identifier_preparer.quote
        cursor = self.conn.connection.cursor()
        try:
            for shape, group in by_shape.items():
                processors = [table.c[c].type._cached_bind_processor(dialect) for c in shape]
                head = (
                    f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                    f"({', '.join(quote(c) for c in shape)}) VALUES "
                )
                row_sql = "(" + ", ".join(["%s"] * len(shape)) + ")"
                for start in range(0, len(group), 1000):
                    chunk = group[start : start + 1000]
                    params: list[Any] = []
                    for row in chunk:
                        for column, proc in zip(shape, processors, strict=True):
                            value = row[column]
                            params.append(proc(value) if proc is not None else value)
                    cursor.execute(head + ", ".join([row_sql] * len(chunk)), params)
        finally:
            cursor.close()


# -- applying and rebuilding ---------------------------------------------------------------


def apply_inline(
    store: EventStore,
    projections: Sequence[Projection],
    conn: Connection,
    envelopes: Iterable[Envelope],
) -> None:
    """Apply events to the inline projections inside the writer's transaction."""
    inline = [p for p in projections if p.mode == "inline"]
    if not inline:
        return
    writer = Writer(conn, store.is_sqlite)
    for env in envelopes:
        for projection in inline:
            projection.apply(writer, env, store.service)
    writer.flush()


def catch_up_async(store: EventStore, projection: Projection, batch: int = 2000) -> int:
    """Apply events after the projection's checkpoint; returns how many were read."""
    name = checkpoint_name(projection)
    position = store.checkpoint(name)
    total = 0
    while True:
        events = store.read_all(position, batch, types=projection.own_types() or None)
        head = events[-1].position if events else None
        if not events:
            return total
        with store.transaction() as conn:
            # A rebuild may have moved the checkpoint under us: trust the store.
            current = store.checkpoint(name, conn=conn)
            if current != position:
                position = current
                continue
            writer = Writer(conn, store.is_sqlite)
            for env in events:
                projection.apply(writer, env, store.service)
            writer.flush()
            store.set_checkpoint(name, head, conn=conn)
        position = head
        total += len(events)
        if len(events) < batch:
            return total


def checkpoint_name(projection: Projection | type[Projection]) -> str:
    return f"projection:{projection.name}"


def version_key(projection: Projection | type[Projection]) -> str:
    return f"projection-version:{projection.name}"


def _shadow_tables(
    projection_cls: type[Projection], token: str
) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    mapping = {}
    for table in projection_cls.tables:
        shadow = table.to_metadata(md, name=f"{table.name}__r{token}")
        for index in shadow.indexes:
            if index.name and not index.name.startswith("ix_" + shadow.name):
                index.name = f"{index.name}_{token}"[:60]
        # A named unique or check constraint is a schema-wide name on PostgreSQL, like an index.
        for constraint in shadow.constraints:
            if isinstance(constraint, sa.UniqueConstraint | sa.CheckConstraint) and isinstance(
                constraint.name, str
            ):
                constraint.name = f"{constraint.name}_{token}"[:60]
        mapping[table.name] = shadow
    return md, mapping


class _History:
    """Own events (by position) and consumed foreign events (by arrival), merged by time.

    Remembers how far it has read in each, so the swap can catch up from there.
    """

    def __init__(self, store: EventStore, projection_cls: type[Projection], batch: int) -> None:
        self.store = store
        self.own_types = projection_cls.own_types()
        self.foreign = projection_cls.foreign_types()
        self.batch = batch
        self.last_position = 0
        self.last_inbox_id = 0

    def _own(self) -> Iterator[Envelope]:
        if not self.own_types:
            return
        # Read the next chunk while the caller applies this one: the database works
        # on the read while Python applies and writes (green thread under eventlet,
        # a real thread otherwise; psycopg2 lets go of the GIL while it waits).
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            pending = prefetch.submit(self._read_own, self.last_position)
            while True:
                chunk = pending.result()
                if len(chunk) == self.batch:
                    pending = prefetch.submit(self._read_own, chunk[-1].position or 0)
                for env in chunk:
                    self.last_position = env.position or self.last_position
                    yield env
                if len(chunk) < self.batch:
                    return

    def _read_own(self, after: int) -> list[Envelope]:
        return self.store.read_all(after, self.batch, types=self.own_types)

    def _inbox(self) -> Iterator[Envelope]:
        while self.foreign:
            chunk = self.store.read_inbox(
                self.last_inbox_id, self.batch, types=self.foreign, consumer=PROJECTIONS_CONSUMER
            )
            for row_id, env in chunk:
                self.last_inbox_id = row_id
                yield env
            if len(chunk) < self.batch:
                return

    def __iter__(self) -> Iterator[Envelope]:
        if not self.foreign:
            return self._own()
        if not self.own_types:
            return self._inbox()
        return heapq.merge(self._own(), self._inbox(), key=lambda e: e.occurred_at)


def rebuild(
    store: EventStore,
    projection_cls: type[Projection],
    *,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild a projection into shadow tables, then swap them in. Returns events applied."""
    token = secrets.token_hex(3)
    md, mapping = _shadow_tables(projection_cls, token)
    with store.transaction() as conn:
        md.create_all(conn)
    shadow = projection_cls(mapping)
    history = _History(store, projection_cls, batch)
    applied = 0
    try:
        pending: list[Envelope] = []
        for env in history:
            pending.append(env)
            if len(pending) >= batch:
                applied += _apply_batch(store, shadow, pending)
                pending = []
                if progress:
                    progress(applied)
        applied += _apply_batch(store, shadow, pending)
        applied += _swap(store, projection_cls, shadow, mapping, token, history)
    except BaseException:
        with store.transaction() as conn:
            md.drop_all(conn)
        raise
    return applied


def _apply_batch(store: EventStore, projection: Projection, envs: Sequence[Envelope]) -> int:
    if not envs:
        return 0
    with store.transaction() as conn:
        writer = Writer(conn, store.is_sqlite)
        for env in envs:
            projection.apply(writer, env, store.service)
        writer.flush()
    return len(envs)


def _swap(
    store: EventStore,
    projection_cls: type[Projection],
    shadow: Projection,
    mapping: dict[str, sa.Table],
    token: str,
    history: _History,
) -> int:
    """Catch up the last events and swap tables while writers wait (a short moment)."""
    with store.transaction() as conn:
        if not store.is_sqlite:
            # Writers that touched these tables finish first, and are then visible to
            # the catch-up below; writers that have not touched them yet wait, and
            # write into the new tables once the swap commits.
            names = ", ".join(f'"{t.name}"' for t in projection_cls.tables)
            conn.execute(sa.text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
        tail = _settled_tail(
            store,
            conn,
            history.last_position,
            history.own_types,
            unsequenced=projection_cls.mode == "inline",
        )
        tail += _inbox_tail(store, conn, history.last_inbox_id, history.foreign)
        writer = Writer(conn, store.is_sqlite)
        for env in tail:
            shadow.apply(writer, env, store.service)
        writer.flush()
        own_positions = [e.position or 0 for e in tail if e.source == store.service]
        position = max([history.last_position, *own_positions])
        for table in projection_cls.tables:
            old = f"{table.name}__old{token}"
            conn.execute(sa.text(f'ALTER TABLE "{table.name}" RENAME TO "{old}"'))
            conn.execute(
                sa.text(f'ALTER TABLE "{mapping[table.name].name}" RENAME TO "{table.name}"')
            )
            conn.execute(sa.text(f'DROP TABLE "{old}"'))
        store.set_checkpoint(checkpoint_name(projection_cls), position, conn=conn)
        store.set_checkpoint(version_key(projection_cls), projection_cls.version, conn=conn)
    return len(tail)


def _settled_tail(
    store: EventStore, conn: Connection, after: int, types: Sequence[str], unsequenced: bool
) -> list[Envelope]:
    """Committed own events after `after`.

    Inline projections take the unsequenced ones too: their writers committed
    them into the old tables. Async projections stop at sequenced events, since
    their runner resumes from the checkpoint the swap sets.
    """
    if not types:
        return []
    e = events_table
    if not store.is_sqlite and not unsequenced:
        store.sequence()
        o = event_order_table
        query = (
            sa.select(e, o.c.position)
            .select_from(o.join(e, e.c.id == o.c.event_pk))
            .where(o.c.position > after, e.c.type.in_(list(types)))
            .order_by(o.c.position)
        )
        return [store._envelope(row) for row in conn.execute(query).mappings()]
    if store.is_sqlite:
        query = (
            sa.select(e, e.c.id.label("position"))
            .where(e.c.id > after, e.c.type.in_(list(types)))
            .order_by(e.c.id)
        )
    else:
        o = event_order_table
        query = (
            sa.select(e, o.c.position)
            .select_from(e.outerjoin(o, o.c.event_pk == e.c.id))
            .where(sa.or_(o.c.position > after, o.c.position.is_(None)), e.c.type.in_(list(types)))
            .order_by(o.c.position.is_(None), o.c.position, sa.text("events.tx_id"), e.c.id)
        )
    return [store._envelope(row) for row in conn.execute(query).mappings()]


def _inbox_tail(
    store: EventStore, conn: Connection, after_id: int, foreign: Sequence[tuple[str, str]]
) -> list[Envelope]:
    if not foreign:
        return []
    tail = store.read_inbox(
        after_id, 10**9, types=foreign, conn=conn, consumer=PROJECTIONS_CONSUMER
    )
    return [env for _, env in tail]


def needs_rebuild(store: EventStore, projection_cls: type[Projection]) -> bool:
    """True when the stored tables were built by another version of the projection."""
    stored = store.checkpoint(version_key(projection_cls))
    return stored != projection_cls.version


def ensure_current(store: EventStore, projections: Sequence[type[Projection]]) -> list[str]:
    """Record versions of new projections; rebuild those whose version changed."""
    rebuilt = []
    for cls in projections:
        stored = store.checkpoint(version_key(cls))
        if stored == cls.version:
            continue
        if stored == 0 and store.head_position() == 0 and not store.inbox_count():
            with store.transaction() as conn:
                store.set_checkpoint(version_key(cls), cls.version, conn=conn)
            continue
        log.warning(
            "projection %s is at version %s, code at %s: rebuilding", cls.name, stored, cls.version
        )
        rebuild(store, cls)
        rebuilt.append(cls.name)
    return rebuilt
