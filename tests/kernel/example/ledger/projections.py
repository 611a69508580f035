import sqlalchemy as sa

from shared.projection import Projection, Writer, handles
from tests.kernel.example.ledger import upcasters  # noqa: F401 - registers upcasters

metadata = sa.MetaData()
balances = sa.Table(
    "balances",
    metadata,
    sa.Column("account", sa.String(50), primary_key=True),
    sa.Column("balance_cents", sa.BigInteger, nullable=False),
    sa.Column("deposits", sa.Integer, nullable=False),
)
history = sa.Table(
    "history",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("account", sa.String(50), nullable=False, index=True),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
)


class BalancesProjection(Projection):
    name = "balances"
    tables = (balances,)

    @handles("Deposited")
    def deposited(self, w: Writer, e) -> None:
        w.upsert(
            self.t.balances,
            {"account": e.data["account"], "balance_cents": e.data["amount_cents"], "deposits": 1},
            key=["account"],
            add=["balance_cents", "deposits"],
        )


class HistoryProjection(Projection):
    """Insert-only: the shape of the rebuild benchmark."""

    name = "history"
    mode = "async"
    tables = (history,)

    @handles("Deposited")
    def deposited(self, w: Writer, e) -> None:
        w.insert(
            self.t.history,
            {
                "event_id": e.event_id,
                "account": e.data["account"],
                "amount_cents": e.data["amount_cents"],
            },
        )


PROJECTIONS = [BalancesProjection, HistoryProjection]
