"""Event store appends: single events and batches of 100, on PostgreSQL and SQLite.

Reference, measured in the same run through the same driver (psycopg2 or
sqlite3, no SQLAlchemy): a raw multi-row INSERT of the same rows into an exact
copy of the events table (same columns, defaults and indexes), so the ratio is
the store's own overhead (envelopes, version checks, SQLAlchemy). The same into
a bare table (primary key only) is printed too, to show what the indexes an
event store needs cost. Targets (issue 2): PostgreSQL single-event appends >= 3,000/s;
batched appends >= 50% of the raw INSERT rate.
"""

from __future__ import annotations

import json
import uuid

import eventlet
import sqlalchemy as sa

from bench.common import pg_database, rate, show, sqlite_database, timed
from shared.events import NewEvent
from shared.store import EventStore

WRITERS = 8
SINGLE = 6000
BATCHES = 100
BATCH = 100


def _single(store: EventStore, writers: int, total: int) -> float:
    per = total // writers

    def writer(w: int) -> None:
        for i in range(per):
            store.append(f"single{writers}-{w}-{i}", [NewEvent("Benched", {"w": w, "i": i})], 0)

    pool = eventlet.GreenPool(writers)
    _, seconds = timed(lambda: [pool.spawn(writer, w) for w in range(writers)] and pool.waitall())
    return rate(per * writers, seconds)


def _batched(store: EventStore) -> float:
    def run() -> None:
        for b in range(BATCHES):
            store.append(
                f"batch-{b}", [NewEvent("Benched", {"b": b, "i": i}) for i in range(BATCH)], 0
            )

    _, seconds = timed(run)
    return rate(BATCHES * BATCH, seconds)


def _raw_table(url: str, like_events: bool) -> str:
    """The reference table: an exact copy of `events` (same columns, defaults, indexes),
    or a bare table with a primary key only. Returns its name."""
    pg = url.startswith("postgresql")
    name = "raw_like_events" if like_events else "raw_bare"
    engine = sa.create_engine(url, connect_args={"options": "-csearch_path=bench"} if pg else {})
    with engine.begin() as conn:
        if like_events and pg:
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} (LIKE events INCLUDING ALL)")
        elif like_events:
            ddl = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).scalar_one()
            copy = ddl.replace('"events"', name).replace("events", name, 1)
            conn.exec_driver_sql(copy.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        else:
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {name} (id {'BIGSERIAL' if pg else 'INTEGER'} "
                "PRIMARY KEY, event_id VARCHAR(36), stream_id VARCHAR(200), version INTEGER, "
                f"type VARCHAR(100), schema_version INTEGER, data {'JSONB' if pg else 'TEXT'}, "
                "occurred_at VARCHAR(40))"
            )
    engine.dispose()
    return name


def _raw_connect(url: str):
    if url.startswith("postgresql"):
        import psycopg2

        return psycopg2.connect(url, options="-csearch_path=bench"), "%s"
    import sqlite3

    conn = sqlite3.connect(url.split("///", 1)[1])
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn, "?"


COLUMNS = "event_id, stream_id, version, type, schema_version, data, occurred_at"


def _row(stream: str, version: int, payload: dict) -> list[object]:
    return [
        str(uuid.uuid4()),
        stream,
        version,
        "Benched",
        1,
        json.dumps(payload),
        "2026-11-22T10:00:00+00:00",
    ]


def _raw_multirow(url: str, like_events: bool) -> float:
    """The reference: one multi-row INSERT per 100 rows straight through the driver."""
    table = _raw_table(url, like_events)
    conn, mark = _raw_connect(url)
    cur = conn.cursor()
    row_sql = "(" + ", ".join([mark] * 7) + ")"
    sql = f"INSERT INTO {table} ({COLUMNS}) VALUES "

    def run() -> None:
        for b in range(BATCHES):
            params: list[object] = []
            for i in range(BATCH):
                params += _row(f"raw-{b}", i + 1, {"b": b, "i": i})
            cur.execute(sql + ", ".join([row_sql] * BATCH), params)
            conn.commit()

    _, seconds = timed(run)
    conn.close()
    return rate(BATCHES * BATCH, seconds)


def _raw_single(url: str, like_events: bool, writers: int, total: int) -> float:
    """Single-row INSERT + COMMIT through the driver, `writers` at once."""
    table = _raw_table(url, like_events)
    per = total // writers

    def writer(w: int) -> None:
        conn, mark = _raw_connect(url)
        cur = conn.cursor()
        sql = f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join([mark] * 7)})"
        for i in range(per):
            cur.execute(sql, _row(f"rs-{w}-{i}", 1, {"w": w, "i": i}))
            conn.commit()
        conn.close()

    pool = eventlet.GreenPool(writers)
    _, seconds = timed(lambda: [pool.spawn(writer, w) for w in range(writers)] and pool.waitall())
    return rate(per * writers, seconds)


def measure(url: str, label: str) -> dict[str, float]:
    store = EventStore("bench", url, pool_size=WRITERS)
    store.migrate()
    figures = {
        "single_appends_per_s_1_writer": _single(store, 1, SINGLE // 4),
        f"single_appends_per_s_{WRITERS}_writers": _single(store, WRITERS, SINGLE),
        "batched_events_per_s": _batched(store),
        "raw_multirow_insert_per_s": _raw_multirow(url, like_events=True),
        f"raw_single_insert_commit_per_s_{WRITERS}_writers": _raw_single(
            url, True, WRITERS, SINGLE
        ),
        "bare_table_multirow_insert_per_s": _raw_multirow(url, like_events=False),
        f"bare_table_single_insert_commit_per_s_{WRITERS}_writers": _raw_single(
            url, False, WRITERS, SINGLE
        ),
    }
    figures["batched_vs_raw"] = round(
        figures["batched_events_per_s"] / figures["raw_multirow_insert_per_s"], 3
    )
    figures["single_vs_raw"] = round(
        figures[f"single_appends_per_s_{WRITERS}_writers"]
        / figures[f"raw_single_insert_commit_per_s_{WRITERS}_writers"],
        3,
    )
    store.dispose()
    for key, value in figures.items():
        show(f"{label} {key}", value)
    return figures


def main() -> dict[str, object]:
    with pg_database() as url:
        pg = measure(url, "postgresql")
    with sqlite_database() as url:
        lite = measure(url, "sqlite")
    return {
        "postgresql": pg,
        "sqlite": lite,
        "targets": {"postgresql_single_per_s": 3000, "batched_vs_raw": 0.5},
    }


if __name__ == "__main__":
    main()
