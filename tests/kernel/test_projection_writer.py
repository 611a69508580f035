"""The projection Writer batches per table and keeps the order of writes that matter."""

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from shared.projection import Writer
from shared.store import EventStore

pytestmark = pytest.mark.integration

md = sa.MetaData()
parents = sa.Table(
    "w_parents",
    md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20)),
)
children = sa.Table(
    "w_children",
    md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("parent", sa.Integer),
)


@pytest.fixture
def store(db_url):
    s = EventStore("writer", db_url)
    s.migrate(md)
    yield s
    s.dispose()


def _count_statements(conn):
    """Insert statements by table; on PostgreSQL an executemany counts once per row, since
    psycopg2 sends it one row per round trip (SQLite's runs in-process)."""
    seen = []
    per_row = conn.dialect.name != "sqlite"

    @event.listens_for(conn, "before_cursor_execute")
    def count(conn_, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            rows = len(params) if per_row and isinstance(params, list | tuple) else 1
            seen.extend([statement.split("(")[0].split()[-1].strip('"')] * rows)

    return seen


def test_interleaved_inserts_go_out_as_one_batch_per_table(store):
    with store.transaction() as conn:
        seen = _count_statements(conn)
        w = Writer(conn, store.is_sqlite)
        for i in range(50):
            w.insert(parents, {"id": i, "name": f"p{i}"})
            w.insert(children, {"id": i, "parent": i})
        w.flush()
        assert conn.execute(sa.select(sa.func.count()).select_from(children)).scalar() == 50
    # SQLAlchemy may split a very large batch, never one row per statement.
    assert seen.count("w_parents") < 5 and seen.count("w_children") < 5


def test_same_table_in_two_modes_keeps_the_order(store):
    with store.transaction() as conn:
        w = Writer(conn, store.is_sqlite)
        w.insert(parents, {"id": 1, "name": "first"})
        w.insert(children, {"id": 1, "parent": 1})
        w.upsert(parents, {"id": 1, "name": "second"}, key=["id"])
        w.flush()
        assert conn.execute(sa.select(parents.c.name)).scalar() == "second"


def test_a_read_sees_every_pending_write(store):
    with store.transaction() as conn:
        w = Writer(conn, store.is_sqlite)
        w.insert(parents, {"id": 7, "name": "seven"})
        w.upsert(children, {"id": 7, "parent": 7}, key=["id"])
        assert w.one(sa.select(parents).where(parents.c.id == 7))["name"] == "seven"
        assert w.scalar(sa.select(children.c.parent).where(children.c.id == 7)) == 7


def test_upserts_go_out_in_pages_not_one_row_per_round_trip(store, monkeypatch):
    pages = []
    if not store.is_sqlite:
        import psycopg2.extras

        real = psycopg2.extras.execute_batch

        def counting(cur, sql, argslist, page_size=100):
            argslist = list(argslist)
            pages.append(-(-len(argslist) // page_size))
            return real(cur, sql, argslist, page_size=page_size)

        monkeypatch.setattr(psycopg2.extras, "execute_batch", counting)
    with store.transaction() as conn:
        w = Writer(conn, store.is_sqlite)
        for i in range(600):
            w.upsert(parents, {"id": i, "name": f"p{i}"}, key=["id"])
        w.flush()
        for i in range(600):
            w.upsert(parents, {"id": i, "name": f"again{i}"}, key=["id"])
        w.flush()
        names = dict(conn.execute(sa.select(parents.c.id, parents.c.name)).all())
    assert len(names) == 600 and names[599] == "again599"
    if not store.is_sqlite:
        assert pages == [6, 6]  # 100 statements per round trip, not 600


versioned = sa.Table(
    "w_versioned",
    md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20)),
    sa.Column("at", sa.Integer, nullable=False),
)


def test_with_newer_the_latest_record_wins_in_any_order(db_url):
    s = EventStore("writer2", db_url)
    s.migrate(md)
    with s.transaction() as conn:
        w = Writer(conn, s.is_sqlite)
        w.upsert(versioned, {"id": 1, "name": "v2", "at": 2}, key=["id"], newer="at")
        w.upsert(versioned, {"id": 1, "name": "v1", "at": 1}, key=["id"], newer="at")  # same batch
        w.flush()
        w.upsert(versioned, {"id": 1, "name": "v0", "at": 0}, key=["id"], newer="at")  # later batch
        w.upsert(versioned, {"id": 2, "name": "first", "at": 5}, key=["id"], newer="at")
        w.flush()
        w.upsert(versioned, {"id": 2, "name": "same time, later", "at": 5}, key=["id"], newer="at")
        w.flush()
        rows = dict(conn.execute(sa.select(versioned.c.id, versioned.c.name)).all())
    s.dispose()
    assert rows == {1: "v2", 2: "same time, later"}
