import sqlalchemy as sa

from shared.projection import Projection, Writer, handles

metadata = sa.MetaData()
totals = sa.Table(
    "totals",
    metadata,
    sa.Column("account", sa.String(50), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("sum_cents", sa.BigInteger, nullable=False),
)


class TotalsProjection(Projection):
    """Fed by another service's events (ledger.Deposited)."""

    name = "totals"
    tables = (totals,)

    @handles("ledger.Deposited")
    def deposited(self, w: Writer, e) -> None:
        w.upsert(
            self.t.totals,
            {"account": e.data["account"], "count": 1, "sum_cents": e.data["amount_cents"]},
            key=["account"],
            add=["count", "sum_cents"],
        )


PROJECTIONS = [TotalsProjection]
