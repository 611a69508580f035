"""Projection rebuild: events/s rebuilding a simple projection over 200,000 events.

The projection is insert-only (one row per event, like a history list): the
shape the issue names. Target (issue 2): >= 20,000 events/s, on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from bench.common import pg_database, rate, show, sqlite_database, timed
from shared.events import NewEvent
from shared.projection import Projection, Writer, handles, rebuild
from shared.uow import ServiceStore

EVENTS = 200_000

metadata = sa.MetaData()
history = sa.Table(
    "bench_history",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("account", sa.String(50), nullable=False, index=True),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
)


class BenchHistory(Projection):
    name = "bench_history"
    mode = "async"  # built by the rebuild only, so filling the log stays cheap
    tables = (history,)

    @handles("BenchDeposited")
    def deposited(self, w: Writer, e) -> None:
        w.insert(
            self.t.bench_history,
            {
                "event_id": e.event_id,
                "account": e.data["account"],
                "amount_cents": e.data["amount_cents"],
            },
        )


def measure(url: str, label: str) -> dict[str, float]:
    store = ServiceStore("benchrebuild", url, [BenchHistory])
    store.migrate()
    for start in range(0, EVENTS, 2000):
        with store.events.transaction() as conn:
            store.events.append_many(
                [
                    (
                        f"acct-{i}",
                        [
                            NewEvent(
                                "BenchDeposited", {"account": f"acct-{i % 5000}", "amount_cents": i}
                            )
                        ],
                        0,
                    )
                    for i in range(start, start + 2000)
                ],
                conn=conn,
            )
    store.events.sequence()
    applied, seconds = timed(rebuild, store.events, BenchHistory, batch=5000)
    with store.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(history)).scalar()
    assert applied == EVENTS == rows  # noqa: S101 - a rebuild that lost rows is no result
    figures = {
        "events": EVENTS,
        "seconds": round(seconds, 2),
        "rebuild_events_per_s": rate(EVENTS, seconds),
    }
    store.dispose()
    for key, value in figures.items():
        show(f"{label} {key}", value)
    return figures


def main() -> dict[str, object]:
    with pg_database() as url:
        pg = measure(url, "postgresql")
    with sqlite_database() as url:
        lite = measure(url, "sqlite")
    return {"postgresql": pg, "sqlite": lite, "targets": {"rebuild_events_per_s": 20000}}


if __name__ == "__main__":
    main()
