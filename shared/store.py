"""The event store: an append-only log per service, on SQLite or PostgreSQL.

Ordering is the heart of it. `read_all` must return events in the order of the
log and never skip one that commits late. The two backends get there
differently:

* SQLite serializes writers (one writer lock per database and process, held
  for the whole transaction, plus BEGIN IMMEDIATE across processes). The rowid
  is assigned inside that lock, so rowid order *is* commit order.
* PostgreSQL lets writers commit concurrently, because a global lock caps
  appends at roughly one fsync at a time (measured: 1.7k/s with a lock against
  4.5k/s without). Each row records the writing transaction's id (xid8). A
  sequencer gives global positions, in an append-only `event_order` table, only
  to rows whose transaction is older than every transaction still running
  (`pg_snapshot_xmin`), ordered by (transaction id, row id). A row of a
  transaction still in flight can therefore never be overtaken by a later
  position: readers see a contiguous, final sequence.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from shared.errors import ConcurrencyError, TransientError
from shared.events import Envelope, NewEvent, json_dumps, new_event_id, upcast, utcnow

log = logging.getLogger(__name__)

ANY_VERSION = None  # append without a version check (still never reorders a stream)

kernel_metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

events_table = sa.Table(
    "events",
    kernel_metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("stream_id", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("correlation_id", sa.String(100)),
    sa.Column("causation_id", sa.String(100)),
    sa.Column("actor", sa.String(200)),
    sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    sqlite_autoincrement=True,
)

# PostgreSQL only: the commit-ordered positions (see the module docstring).
event_order_table = sa.Table(
    "event_order",
    sa.MetaData(),
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("event_pk", sa.BigInteger, nullable=False, unique=True),
)

checkpoints_table = sa.Table(
    "checkpoints",
    kernel_metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

inbox_table = sa.Table(
    "inbox",
    kernel_metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("consumer", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("envelope", JSONType, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("consumer", "event_id", name="uq_inbox_consumer_event"),
    sa.Index("ix_inbox_consumer_id", "consumer", "id"),
    sqlite_autoincrement=True,
)

_PG_EXTRA_DDL = (
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX IF NOT EXISTS ix_events_tx_order ON events (tx_id, id)",
    "CREATE TABLE IF NOT EXISTS event_order ("
    " position bigint PRIMARY KEY, event_pk bigint NOT NULL UNIQUE REFERENCES events(id))",
)

_green_psycopg2 = False


def _make_psycopg2_green() -> None:
    """psycopg2 cooperates with eventlet through a wait callback; install it once."""
    global _green_psycopg2
    if _green_psycopg2:
        return
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover
        return
    if not eventlet.patcher.is_monkey_patched("socket"):
        return
    import psycopg2.extensions
    from eventlet.hubs import trampoline

    def wait(conn: Any, timeout: float | None = None) -> None:
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            if state == psycopg2.extensions.POLL_READ:
                trampoline(conn.fileno(), read=True)
            elif state == psycopg2.extensions.POLL_WRITE:
                trampoline(conn.fileno(), write=True)
            else:  # pragma: no cover
                raise psycopg2.OperationalError(f"bad poll state {state}")

    psycopg2.extensions.set_wait_callback(wait)
    _green_psycopg2 = True


def default_database_url(service: str) -> str:
    """The embedded default: one SQLite file per service under var/."""
    var_dir = os.environ.get("MUNIPORTAL_VAR", "var")
    return f"sqlite:///{os.path.abspath(os.path.join(var_dir, service + '.db'))}"


def database_url_for(service: str, configured: str | None = None) -> str:
    """Resolve a service's store: <SERVICE>_DATABASE_URL, DATABASE_URL, else SQLite."""
    return (
        configured
        or os.environ.get(f"{service.upper()}_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or default_database_url(service)
    )


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class EventStore:
    """One service's event log, checkpoints and inbox."""

    def __init__(self, service: str, url: str | None = None, *, pool_size: int = 10) -> None:
        self.service = service
        self.url = database_url_for(service, url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = None if self.is_sqlite else service
        self._writer_lock = threading.RLock()  # green under eventlet's monkey patching
        self._sequencer_key = lock_key(service, "sequencer")
        self._writer_key = lock_key(service, "writers")
        self.engine = self._create_engine(pool_size)
        self._listeners: list[Any] = []

    # -- engine -------------------------------------------------------------------------

    def _create_engine(self, pool_size: int) -> Engine:
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
            engine = sa.create_engine(
                self.url,
                json_serializer=json_dumps,
                # Errors must never log bound values (password hashes, emails).
                hide_parameters=True,
                connect_args={"check_same_thread": False, "timeout": 15},
                pool_size=pool_size,
                max_overflow=20,
            )

            @sa_event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=15000")
                cur.close()

            @sa_event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
                conn.exec_driver_sql(f"BEGIN {mode}")

            return engine

        _make_psycopg2_green()
        return sa.create_engine(
            self.url,
            json_serializer=json_dumps,
            # Errors must never log bound values (password hashes, emails).
            hide_parameters=True,
            pool_size=pool_size,
            max_overflow=20,
            # No pre-ping: it costs a round trip per checkout. A dropped connection
            # fails its statement (a TransientError callers retry) and SQLAlchemy
            # then invalidates the pool.
            pool_recycle=1800,
            # Other executemanys (updates, upserts) go 100 statements per round trip.
            executemany_mode="values_plus_batch",
            connect_args={
                "options": f"-csearch_path={self.schema}",
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------

    def migrate(self, *metadatas: sa.MetaData) -> None:
        """Create the kernel tables and the given projection tables (idempotent)."""
        if not self.is_sqlite:
            admin = sa.create_engine(self.url)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            admin.dispose()
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Several replicas may migrate at once; take turns.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"),
                    {"k": lock_key(self.service, "migrate")},
                )
            kernel_metadata.create_all(conn)
            if not self.is_sqlite:
                for ddl in _PG_EXTRA_DDL:
                    conn.execute(sa.text(ddl))
            for md in metadatas:
                md.create_all(conn)

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, writer_lock: bool = True) -> Iterator[Connection]:
        """A write transaction. On SQLite it holds the writer lock throughout.

        `writer_lock=False` is for a caller that takes the PostgreSQL writers' lock
        itself in its first write (append's own transaction does, saving a round trip).
        """
        lock = self._writer_lock if self.is_sqlite else contextlib.nullcontext()
        with lock, _transient_errors(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if not self.is_sqlite and writer_lock:
                    # First statement, before this transaction can have an xid: the
                    # sequencer waits only for holders of this lock (see sequence()).
                    conn.execute(_WRITER_LOCK_SQL, {"k": self._writer_key})
                yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection (no writer lock; WAL readers never block writers)."""
        with _transient_errors(), self.engine.connect() as conn:
            with conn.begin():
                yield conn

    # -- append -------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        conn: Connection | None = None,
        actor: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> list[Envelope]:
        """Append events to a stream; `expected_version` 0 means the stream must be new."""
        if conn is None:
            with self.transaction(writer_lock=False) as own:
                envelopes = self._append(
                    stream_id,
                    events,
                    expected_version,
                    own,
                    actor,
                    correlation_id,
                    causation_id,
                    lock_in_insert=not self.is_sqlite,
                )
            self.notify_appended()
            return envelopes
        return self._append(
            stream_id, events, expected_version, conn, actor, correlation_id, causation_id
        )

    def _append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        conn: Connection,
        actor: str | None,
        correlation_id: str | None,
        causation_id: str | None,
        *,
        lock_in_insert: bool = False,
    ) -> list[Envelope]:
        if not events:
            return []
        # A new stream needs no read: the unique (stream_id, version) catches a race.
        current = 0 if expected_version == 0 else self.stream_version(stream_id, conn=conn)
        if expected_version is not None and current != expected_version:
            raise ConcurrencyError(
                f"stream {stream_id} is at version {current}, expected {expected_version}",
                extra={"stream_id": stream_id, "current": current, "expected": expected_version},
            )
        now = utcnow()
        rows = []
        envelopes = []
        for offset, ev in enumerate(events, start=1):
            envelope = Envelope(
                event_id=new_event_id(),
                type=ev.type,
                schema_version=ev.resolved_version(),
                stream_id=stream_id,
                version=current + offset,
                position=None,
                occurred_at=now,
                correlation_id=correlation_id,
                causation_id=causation_id,
                actor=actor,
                source=self.service,
                data=ev.data,
            )
            envelopes.append(envelope)
            rows.append(
                {
                    "event_id": envelope.event_id,
                    "stream_id": stream_id,
                    "version": envelope.version,
                    "type": ev.type,
                    "schema_version": envelope.schema_version,
                    "data": ev.data,
                    "occurred_at": now,
                    "correlation_id": correlation_id,
                    "causation_id": causation_id,
                    "actor": actor,
                }
            )
        self._insert_events(conn, rows, stream_id, lock_in_insert=lock_in_insert)
        if self.is_sqlite:
            envelopes = self._with_sqlite_positions(conn, envelopes)
        return envelopes

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        conn: Connection,
        actor: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        loaded: bool = False,
    ) -> list[Envelope]:
        """Append to many streams in one statement (bulk loads, billing runs).

        `loaded=True` says each expected version was read in this same transaction
        (a unit of work's aggregates): the stream can only have grown since, which
        the unique (stream_id, version) detects, so no version read is needed.
        """
        if not batch:
            return []
        ids = [stream_id for stream_id, _, _ in batch]
        if loaded or all(expected == 0 for _, _, expected in batch):
            currents = {sid: expected for sid, _, expected in batch if expected is not None}
        else:
            currents = self.stream_versions(ids, conn=conn)
        now = utcnow()
        rows: list[dict[str, Any]] = []
        envelopes: list[Envelope] = []
        for stream_id, events, expected in batch:
            current = currents.get(stream_id, 0)
            if expected is not None and current != expected:
                raise ConcurrencyError(
                    f"stream {stream_id} is at version {current}, expected {expected}",
                    extra={"stream_id": stream_id, "current": current, "expected": expected},
                )
            for offset, ev in enumerate(events, start=1):
                env = Envelope(
                    event_id=new_event_id(),
                    type=ev.type,
                    schema_version=ev.resolved_version(),
                    stream_id=stream_id,
                    version=current + offset,
                    position=None,
                    occurred_at=now,
                    correlation_id=correlation_id,
                    causation_id=causation_id,
                    actor=actor,
                    source=self.service,
                    data=ev.data,
                )
                envelopes.append(env)
                rows.append(
                    {
                        "event_id": env.event_id,
                        "stream_id": stream_id,
                        "version": env.version,
                        "type": ev.type,
                        "schema_version": env.schema_version,
                        "data": ev.data,
                        "occurred_at": now,
                        "correlation_id": correlation_id,
                        "causation_id": causation_id,
                        "actor": actor,
                    }
                )
            currents[stream_id] = current + len(events)
        self._insert_events(conn, rows, ids[0] if len(ids) == 1 else "(several streams)")
        if self.is_sqlite:
            envelopes = self._with_sqlite_positions(conn, envelopes)
        return envelopes

    def _insert_events(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        what: str,
        *,
        lock_in_insert: bool = False,
    ) -> None:
        try:
            if self.is_sqlite:
                self._insert_events_sqlite(conn, rows)
            else:
                self._insert_events_pg(conn, rows, lock_in_insert=lock_in_insert)
        except (sa.exc.IntegrityError, _pg_integrity_error(), sqlite3.IntegrityError) as exc:
            raise ConcurrencyError(
                f"stream {what} was appended to concurrently", extra={"stream_id": what}
            ) from exc

    def _insert_events_pg(
        self, conn: Connection, rows: list[dict[str, Any]], *, lock_in_insert: bool = False
    ) -> None:
        """The hot write path: one positional multi-row INSERT straight through psycopg2.

        Measured against SQLAlchemy's executemany for the same rows into the same
        table, this is about twice as fast (bench/kernel_appends.py). With
        `lock_in_insert`, the writers' lock goes in the same round trip, as the
        statement before the INSERT: still taken before the transaction has an xid.
        """
        cursor = conn.connection.cursor()
        try:
            for start in range(0, len(rows), 1000):
                chunk = rows[start : start + 1000]
                params: list[Any] = []
                sql = _PG_INSERT_SQL + ", ".join([_PG_ROW] * len(chunk))
                if lock_in_insert and start == 0:
                    sql = _PG_WRITER_LOCK_PREFIX + sql
                    params.append(self._writer_key)
                for row in chunk:
                    params.extend(
                        row[c] if c != "data" else json_dumps(row[c]) for c in _PG_INSERT_COLUMNS
                    )
                cursor.execute(sql, params)
        finally:
            cursor.close()

    def _insert_events_sqlite(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Multi-row INSERTs through sqlite3, timestamps in SQLAlchemy's SQLite format
        (naive UTC "YYYY-MM-DD HH:MM:SS.ffffff"), so SQLAlchemy reads them back."""
        cursor = conn.connection.cursor()
        try:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                params: list[Any] = []
                for row in chunk:
                    for column in _PG_INSERT_COLUMNS:
                        value = row[column]
                        if column == "data":
                            value = json_dumps(value)
                        elif column == "occurred_at":
                            value = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                        params.append(value)
                cursor.execute(_SQLITE_INSERT_SQL + ", ".join([_SQLITE_ROW] * len(chunk)), params)
        finally:
            cursor.close()

    def _with_sqlite_positions(self, conn: Connection, envelopes: list[Envelope]) -> list[Envelope]:
        # Under the writer lock rowids are consecutive, so the last one gives them all.
        last = conn.execute(sa.text("SELECT last_insert_rowid()")).scalar_one()
        first = last - len(envelopes) + 1
        return [_replace_position(env, first + i) for i, env in enumerate(envelopes)]

    # -- listeners (wake the relay and async projectors after a commit) ------------------

    def on_append(self, callback: Any) -> None:
        self._listeners.append(callback)

    def notify_appended(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # pragma: no cover - a listener must never break a write
                log.exception("append listener failed")

    # -- reads --------------------------------------------------------------------------

    def stream_version(self, stream_id: str, *, conn: Connection | None = None) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(events_table.c.version), 0)).where(
            events_table.c.stream_id == stream_id
        )
        if conn is not None:
            return int(conn.execute(query).scalar_one())
        with self.reading() as own:
            return int(own.execute(query).scalar_one())

    def stream_versions(self, stream_ids: Iterable[str], *, conn: Connection) -> dict[str, int]:
        ids = list(dict.fromkeys(stream_ids))
        out: dict[str, int] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            query = (
                sa.select(events_table.c.stream_id, sa.func.max(events_table.c.version))
                .where(events_table.c.stream_id.in_(chunk))
                .group_by(events_table.c.stream_id)
            )
            out.update({sid: int(v) for sid, v in conn.execute(query)})
        return out

    def read_stream(
        self, stream_id: str, after_version: int = 0, *, conn: Connection | None = None
    ) -> list[Envelope]:
        """Every event of one stream, oldest first, upcast to current versions."""
        e = events_table
        if self.is_sqlite:
            query = sa.select(e, e.c.id.label("position"))
        else:
            o = event_order_table
            query = sa.select(e, o.c.position).select_from(e.outerjoin(o, o.c.event_pk == e.c.id))
        query = query.where(e.c.stream_id == stream_id, e.c.version > after_version).order_by(
            e.c.version
        )
        if conn is not None:
            return [self._envelope(row) for row in conn.execute(query).mappings()]
        with self.reading() as own:
            return [self._envelope(row) for row in own.execute(query).mappings()]

    def read_all(
        self, after_position: int = 0, limit: int = 1000, *, types: Sequence[str] | None = None
    ) -> list[Envelope]:
        """Events after a global position, in log order, never skipping a late commit.

        With `types`, only those; an empty answer always means the end of the log.
        """
        if after_position < 0 or limit <= 0:
            raise ValueError("after_position must be >= 0 and limit > 0")
        if self.is_sqlite:
            e = events_table
            query = sa.select(e, e.c.id.label("position")).where(e.c.id > after_position)
            if types:
                query = query.where(e.c.type.in_(list(types)))
            with self.reading() as conn:
                rows = conn.execute(query.order_by(e.c.id).limit(limit)).mappings()
                return [self._envelope(row) for row in rows]
        self.sequence()
        with self.reading() as conn:
            if not types:
                return self._window(conn, after_position, limit, None)
            # Positions are dense, so windows of positions read by the primary key
            # whatever the planner's statistics say; walk them until something matches.
            head = conn.execute(sa.select(sa.func.max(event_order_table.c.position))).scalar()
            out: list[Envelope] = []
            position = after_position
            while len(out) < limit and position < (head or 0):
                out += self._window(conn, position, limit, types)[: limit - len(out)]
                position += limit
            return out

    def _window(
        self, conn: Connection, after: int, size: int, types: Sequence[str] | None
    ) -> list[Envelope]:
        # The log's hottest read (relay, projectors, rebuilds): plain tuples through
        # the driver, without SQLAlchemy's row machinery.
        sql = _WINDOW_SQL + (" AND e.type = ANY(%s)" if types else "") + " ORDER BY o.position"
        params: list[Any] = [after, after + size]
        if types:
            params.append(list(types))
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [self._envelope_from_tuple(row) for row in rows]

    def _envelope_from_tuple(self, row: Sequence[Any]) -> Envelope:
        (
            position,
            event_id,
            stream_id,
            version,
            type_,
            schema_version,
            data,
            occurred,
            correlation_id,
            causation_id,
            actor,
        ) = row
        if isinstance(data, str):
            data = json.loads(data)
        schema_version, data = upcast(type_, schema_version, data)
        return Envelope(
            event_id,
            type_,
            schema_version,
            stream_id,
            version,
            position,
            occurred,
            correlation_id,
            causation_id,
            actor,
            self.service,
            data,
        )

    def read_all_wire(self, after_position: int, limit: int) -> list[WireEvent]:
        """Like read_all, for the relay: each event's message body ready to publish.

        The stored JSON is spliced in as text, never decoded and encoded again,
        and goes out as stored (consumers upcast with their own upcasters).
        """
        if self.is_sqlite:
            sql = _SQLITE_WIRE_SQL
            params: list[Any] = [after_position, limit]
            with self.reading() as conn:
                cursor = conn.connection.cursor()
                try:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
        else:
            self.sequence()
            with self.reading() as conn:
                cursor = conn.connection.cursor()
                try:
                    cursor.execute(_PG_WIRE_SQL, [after_position, after_position + limit])
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
        return [self._wire(row) for row in rows]

    def _wire(self, row: Sequence[Any]) -> WireEvent:
        (
            position,
            event_id,
            stream_id,
            version,
            type_,
            schema_version,
            data,
            occurred,
            correlation_id,
            causation_id,
            actor,
        ) = row
        if isinstance(occurred, str):  # SQLite keeps UTC as "YYYY-MM-DD HH:MM:SS.ffffff"
            occurred_iso = occurred.replace(" ", "T") + "+00:00"
        else:
            occurred_iso = occurred.isoformat()
        dumps = _json_scalar
        body = (
            f'{{"event_id":"{event_id}","type":{dumps(type_)},"schema_version":{schema_version},'
            f'"stream_id":{dumps(stream_id)},"version":{version},"position":{position},'
            f'"occurred_at":"{occurred_iso}","correlation_id":{dumps(correlation_id)},'
            f'"causation_id":{dumps(causation_id)},"actor":{dumps(actor)},'
            f'"source":{dumps(self.service)},"data":{data}}}'
        )
        return WireEvent(position, event_id, type_, correlation_id, actor, body)

    def head_position(self) -> int:
        """The position of the newest event readers can see."""
        if self.is_sqlite:
            query = sa.select(sa.func.coalesce(sa.func.max(events_table.c.id), 0))
        else:
            self.sequence()
            query = sa.select(sa.func.coalesce(sa.func.max(event_order_table.c.position), 0))
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def sequence(self, limit: int = 20000) -> int:
        """PostgreSQL: give positions to every event whose transaction is settled.

        The horizon is the oldest transaction still writing to *this* store (they
        all hold the writers' advisory lock), not the oldest in the whole cluster,
        so unrelated long transactions never delay this log's readers.
        """
        if self.is_sqlite:
            return 0
        total = 0
        hi, lo = (self._writer_key >> 32) & 0xFFFFFFFF, self._writer_key & 0xFFFFFFFF
        while True:
            with _transient_errors(), self.engine.connect() as conn, conn.begin():
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._sequencer_key}
                )
                # One statement: its snapshot is taken when it starts, before it reads
                # pg_locks. A writer that takes the lock after the snapshot gets an xid
                # beyond the snapshot's xmax, so it cannot be overtaken.
                snapshot, holder_xids = conn.execute(_HORIZON_SQL, {"hi": hi, "lo": lo}).one()
                holders = set(holder_xids or ())
                horizon = _horizon(snapshot, holders)
                n = conn.execute(
                    sa.text(_SEQUENCE_SQL), {"limit": limit, "horizon": str(horizon)}
                ).rowcount
            total += n
            if n < limit:
                return total

    def unsequenced_count(self) -> int:
        if self.is_sqlite:
            return 0
        with self.reading() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM events e WHERE NOT EXISTS "
                        "(SELECT 1 FROM event_order o WHERE o.event_pk = e.id)"
                    )
                ).scalar_one()
            )

    def streams(self, prefix: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        e = events_table
        query = (
            sa.select(
                e.c.stream_id,
                sa.func.max(e.c.version).label("version"),
                sa.func.min(e.c.occurred_at).label("first"),
                sa.func.max(e.c.occurred_at).label("last"),
            )
            .group_by(e.c.stream_id)
            .order_by(e.c.stream_id)
            .limit(limit)
        )
        if prefix:
            query = query.where(e.c.stream_id.like(prefix.replace("%", r"\%") + "%", escape="\\"))
        with self.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _envelope(self, row: Any) -> Envelope:
        data = row["data"]
        if isinstance(data, str):
            data = json.loads(data)
        version, data = upcast(row["type"], row["schema_version"], data)
        occurred = row["occurred_at"]
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=dt.UTC)
        return Envelope(
            event_id=row["event_id"],
            type=row["type"],
            schema_version=version,
            stream_id=row["stream_id"],
            version=row["version"],
            position=row["position"],
            occurred_at=occurred,
            correlation_id=row["correlation_id"],
            causation_id=row["causation_id"],
            actor=row["actor"],
            source=self.service,
            data=data,
        )

    # -- checkpoints --------------------------------------------------------------------

    def checkpoint(self, name: str, *, conn: Connection | None = None) -> int:
        query = sa.select(checkpoints_table.c.position).where(checkpoints_table.c.name == name)
        if conn is not None:
            value = conn.execute(query).scalar_one_or_none()
        else:
            with self.reading() as own:
                value = own.execute(query).scalar_one_or_none()
        return int(value or 0)

    def checkpoints(self) -> dict[str, int]:
        with self.reading() as conn:
            rows = conn.execute(sa.select(checkpoints_table.c.name, checkpoints_table.c.position))
            return {name: int(pos) for name, pos in rows}

    def set_checkpoint(self, name: str, position: int, *, conn: Connection) -> None:
        values = {"name": name, "position": position, "updated_at": utcnow()}
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        stmt = dialect_insert(checkpoints_table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"position": position, "updated_at": values["updated_at"]}
        )
        conn.execute(stmt)

    def delete_checkpoint(self, name: str, *, conn: Connection) -> None:
        conn.execute(checkpoints_table.delete().where(checkpoints_table.c.name == name))

    # -- inbox --------------------------------------------------------------------------

    def claim(self, consumer: str, envelope: Envelope, *, conn: Connection) -> bool:
        """Record that `consumer` handles this event; False if it already has."""
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        stmt = (
            dialect_insert(inbox_table)
            .values(
                consumer=consumer,
                event_id=envelope.event_id,
                source=envelope.source,
                type=envelope.type,
                envelope=envelope.to_wire(),
                received_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        )
        return conn.execute(stmt).rowcount == 1

    def inbox_count(self, consumer: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(inbox_table)
        if consumer:
            query = query.where(inbox_table.c.consumer == consumer)
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def read_inbox(
        self,
        after_id: int = 0,
        limit: int = 1000,
        types: Sequence[tuple[str, str]] | None = None,
        *,
        conn: Connection | None = None,
        consumer: str | None = None,
    ) -> list[tuple[int, Envelope]]:
        """Consumed foreign events (one per event id), for rebuilding projections.

        With `consumer`, only that consumer's rows: one per event by construction, read
        in primary-key order (a rebuild passes the projections' consumer). Without it,
        the first row of each event, which groups the whole inbox on every call.
        """
        i = inbox_table
        query = sa.select(i.c.id, i.c.envelope).where(i.c.id > after_id)
        if consumer is not None:
            query = query.where(i.c.consumer == consumer)
        else:
            first = sa.select(sa.func.min(i.c.id).label("id")).group_by(i.c.event_id).subquery()
            query = query.join(first, first.c.id == i.c.id)
        if types:
            query = query.where(
                sa.or_(*[sa.and_(i.c.source == source, i.c.type == name) for source, name in types])
            )
        query = query.order_by(i.c.id).limit(limit)
        if conn is None:
            with self.reading() as own:
                return self.read_inbox(after_id, limit, types, conn=own, consumer=consumer)
        out = []
        for row_id, payload in conn.execute(query):
            if isinstance(payload, str):
                payload = json.loads(payload)
            # Validated when it was consumed: only upcast.
            out.append((int(row_id), Envelope.from_stored(payload)))
        return out


_PG_INSERT_COLUMNS = (
    "event_id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "data",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "actor",
)
_PG_INSERT_SQL = f"INSERT INTO events ({', '.join(_PG_INSERT_COLUMNS)}) VALUES "
_SQLITE_INSERT_SQL = _PG_INSERT_SQL
_SQLITE_ROW = "(" + ", ".join(["?"] * len(_PG_INSERT_COLUMNS)) + ")"
_PG_ROW = "(" + ", ".join(["%s"] * len(_PG_INSERT_COLUMNS)) + ")"


def _pg_integrity_error() -> type[BaseException]:
    import psycopg2

    return psycopg2.IntegrityError


_WINDOW_SQL = (
    "SELECT o.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data,"
    " e.occurred_at, e.correlation_id, e.causation_id, e.actor"
    " FROM event_order o JOIN events e ON e.id = o.event_pk"
    " WHERE o.position > %s AND o.position <= %s"
)

_PG_WIRE_SQL = (
    "SELECT o.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version,"
    " e.data::text, e.occurred_at, e.correlation_id, e.causation_id, e.actor"
    " FROM event_order o JOIN events e ON e.id = o.event_pk"
    " WHERE o.position > %s AND o.position <= %s ORDER BY o.position"
)
_SQLITE_WIRE_SQL = (
    "SELECT id, event_id, stream_id, version, type, schema_version, data, occurred_at,"
    " correlation_id, causation_id, actor FROM events WHERE id > ? ORDER BY id LIMIT ?"
)


class WireEvent(NamedTuple):
    """An event as the relay publishes it: routing facts and the message body."""

    position: int
    event_id: str
    type: str
    correlation_id: str | None
    actor: str | None
    body: str


_PLAIN_JSON_STRING = re.compile(r"[A-Za-z0-9_.:@/+ -]*").fullmatch


def _json_scalar(value: Any) -> str:
    """json.dumps for the relay's hot path: ids and names need no escaping, so skip it."""
    if value is None:
        return "null"
    if type(value) is str and _PLAIN_JSON_STRING(value):
        return f'"{value}"'
    return json.dumps(value)


_WRITER_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock_shared(:k)")
_PG_WRITER_LOCK_PREFIX = "SELECT pg_advisory_xact_lock_shared(%s); "

# The statement's snapshot, and the sessions holding this store's writers' lock with
# their (32-bit) transaction ids.
_HORIZON_SQL = sa.text("""
SELECT pg_current_snapshot()::text, ARRAY(
    SELECT t.transactionid::text::bigint
    FROM pg_locks a JOIN pg_locks t ON t.pid = a.pid AND t.locktype = 'transactionid'
    WHERE a.locktype = 'advisory' AND a.classid = CAST(:hi AS bigint)::oid
      AND a.objid = CAST(:lo AS bigint)::oid AND a.objsubid = 1 AND a.granted)
""")


def _horizon(snapshot: str, holder_xids32: set[int]) -> int:
    """The oldest in-progress writer's xid8, or the snapshot's xmax when none writes."""
    _xmin, xmax, xip = snapshot.split(":")
    writing = [int(x) for x in xip.split(",") if x and int(x) % 2**32 in holder_xids32]
    return min(writing, default=int(xmax))


_SEQUENCE_SQL = """
WITH last AS (
    SELECT o.position, e.tx_id, e.id FROM event_order o JOIN events e ON e.id = o.event_pk
    ORDER BY o.position DESC LIMIT 1
), ready AS (
    SELECT e.tx_id, e.id FROM events e
    WHERE e.tx_id < CAST(CAST(:horizon AS text) AS xid8)
      AND (NOT EXISTS (SELECT 1 FROM last)
           OR (e.tx_id, e.id) > (SELECT tx_id, id FROM last))
    ORDER BY e.tx_id, e.id
    LIMIT :limit
)
INSERT INTO event_order (position, event_pk)
SELECT coalesce((SELECT position FROM last), 0)
       + row_number() OVER (ORDER BY ready.tx_id, ready.id), ready.id
FROM ready
"""


def _replace_position(env: Envelope, position: int) -> Envelope:
    import dataclasses

    return dataclasses.replace(env, position=position)


@contextlib.contextmanager
def _transient_errors() -> Iterator[None]:
    """A lost, refused or locked database is transient: say so, so callers retry."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        message = str(exc.orig).lower()
        if "no such table" in message or "no such column" in message:
            raise  # a missing migration is a bug, not weather
        raise TransientError(f"database unavailable: {exc.orig}") from exc
