"""Rebuilding a projection while reads and writes go on: reads never fail, nothing is lost."""

import collections
import random

import eventlet
import pytest
import sqlalchemy as sa

from shared.errors import InvalidInput
from shared.projection import needs_rebuild, rebuild
from shared.uow import ServiceStore
from tests.kernel.example.ledger.domain import LedgerAccount
from tests.kernel.example.ledger.projections import PROJECTIONS, BalancesProjection, balances

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def deposit(store: ServiceStore, account: str, cents: int) -> None:
    def work(uow):
        uow.load(LedgerAccount, account).deposit(cents)

    store.run(work, attempts=10)


def seed(store: ServiceStore, accounts: int, per_account: int) -> None:
    from shared.events import NewEvent

    rng = random.Random(7)
    for start in range(0, accounts, 200):
        with store.unit_of_work() as uow:
            uow.append_many(
                [
                    (
                        LedgerAccount.stream_id_for(f"a{i}"),
                        [
                            NewEvent(
                                "Deposited",
                                {
                                    "account": f"a{i}",
                                    "amount_cents": rng.randint(1, 999),
                                    "memo": "",
                                },
                            )
                            for _ in range(per_account)
                        ],
                        0,
                    )
                    for i in range(start, min(start + 200, accounts))
                ]
            )


def truth(store: ServiceStore) -> dict[str, int]:
    totals: dict[str, int] = collections.defaultdict(int)
    position = 0
    while batch := store.events.read_all(position, 5000):
        for env in batch:
            totals[env.data["account"]] += env.data["amount_cents"]
        position = batch[-1].position
    return dict(totals)


def projected(store: ServiceStore) -> dict[str, int]:
    with store.read() as conn:
        return dict(conn.execute(sa.select(balances.c.account, balances.c.balance_cents)).all())


def test_rebuild_under_reads_and_writes(db_url):
    store = ServiceStore("ledger", db_url, PROJECTIONS)
    store.migrate()
    seed(store, accounts=2000, per_account=10)
    assert projected(store) == truth(store)

    # Break the live projection on purpose: the rebuild must repair it.
    with store.events.transaction() as conn:
        conn.execute(balances.update().where(balances.c.account == "a1").values(balance_cents=0))

    stop = eventlet.event.Event()
    reads: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def reader():
        while not stop.ready():
            try:
                with store.read() as conn:
                    rows, total = conn.execute(
                        sa.select(
                            sa.func.count(),
                            sa.func.coalesce(sa.func.sum(balances.c.balance_cents), 0),
                        )
                    ).one()
                reads.append((rows, total))
            except Exception as exc:  # any failed read fails the test
                errors.append(exc)
            eventlet.sleep(0.001)

    written = []

    def writer():
        i = 0
        while not stop.ready():
            deposit(store, f"w{i % 50}", 5)
            written.append(i)
            i += 1
            eventlet.sleep(0.002)

    threads = [eventlet.spawn(reader), eventlet.spawn(reader), eventlet.spawn(writer)]
    try:
        applied = rebuild(store.events, BalancesProjection, batch=2000)
    finally:
        eventlet.sleep(0.05)
        stop.send(True)
        for t in threads:
            t.wait()

    assert errors == []
    assert applied >= 20_000
    assert len(reads) >= 3, "reads went on during the rebuild"
    assert len(written) >= 1, "writes went on during the rebuild"
    # Readers saw a whole projection at every moment: never fewer than the seeded accounts.
    assert min(rows for rows, _ in reads) >= 2000
    final = projected(store)
    assert final == truth(store), "the rebuilt projection is exactly the log's"
    assert final["a1"] != 0
    assert not needs_rebuild(store.events, BalancesProjection)
    with store.read() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert not any("__r" in n or "__old" in n for n in names), "no shadow tables left behind"
    store.dispose()


def test_a_changed_projection_version_is_rebuilt_at_migrate(sqlite_url, monkeypatch):
    store = ServiceStore("ledger", sqlite_url, PROJECTIONS)
    store.migrate()
    deposit(store, "x", 42)
    with store.events.transaction() as conn:
        conn.execute(balances.delete())
    monkeypatch.setattr(BalancesProjection, "version", 2)
    again = ServiceStore("ledger", sqlite_url, PROJECTIONS)
    assert again.migrate() == ["balances"]
    assert projected(again) == {"x": 42}
    assert again.migrate() == []


def test_a_failed_rebuild_leaves_the_live_projection_alone(sqlite_url, monkeypatch):
    store = ServiceStore("ledger", sqlite_url, PROJECTIONS)
    store.migrate()
    deposit(store, "y", 7)

    def broken(self, w, e):
        raise InvalidInput("cannot project this")

    monkeypatch.setattr(BalancesProjection, "deposited", broken)
    with pytest.raises(InvalidInput):
        rebuild(store.events, BalancesProjection)
    assert projected(store) == {"y": 7}
    with store.read() as conn:
        assert not any("__r" in n for n in sa.inspect(conn).get_table_names())
