"""Rebuilding a projection whose tables carry named constraints and indexes."""

import uuid

import pytest
import sqlalchemy as sa

from shared.projection import Projection, apply_inline, handles, rebuild
from shared.store import EventStore

pytestmark = pytest.mark.integration

md = sa.MetaData()
pairs = sa.Table(
    "r_pairs",
    md,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("a", sa.String(20), nullable=False),
    sa.Column("b", sa.String(20), nullable=False),
    sa.UniqueConstraint("a", "b", name="uq_r_pairs_a_b"),
    sa.CheckConstraint("a <> b", name="ck_r_pairs_differ"),
    sa.Index("ix_named_pairs_b", "b"),
)


class PairsProjection(Projection):
    name = "pairs"
    tables = (pairs,)

    @handles("Paired")
    def paired(self, w, e):
        w.insert(self.t.r_pairs, {"id": e.event_id, "a": e.data["a"], "b": e.data["b"]})


def test_named_constraints_survive_two_rebuilds(db_url):
    store = EventStore("rebuilding", db_url)
    store.migrate(md)
    with store.transaction() as conn:
        from shared.events import NewEvent

        envs = store.append(
            "s-1", [NewEvent("Paired", {"a": "x", "b": str(i)}) for i in range(3)], 0, conn=conn
        )
        apply_inline(store, [PairsProjection()], conn, envs)
    for _ in range(2):
        assert rebuild(store, PairsProjection) == 3
    with store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pairs)).scalar_one() == 3
    # The constraint still holds on the swapped-in table.
    with pytest.raises(sa.exc.IntegrityError):
        with store.transaction() as conn:
            conn.execute(pairs.insert(), {"id": str(uuid.uuid4()), "a": "x", "b": "0"})
    store.dispose()
