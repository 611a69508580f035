import sqlalchemy as sa

from shared.nameko import KernelService, Store
from shared.rpc import rpc
from tests.kernel.example.ledger.domain import LedgerAccount
from tests.kernel.example.ledger.projections import PROJECTIONS, balances


class LedgerService(KernelService):
    name = "ledger"
    store = Store(PROJECTIONS, poll_interval=0.05)

    @rpc
    def deposit(self, account: str, amount_cents: int, memo: str = "") -> int:
        """Deposit into an account; returns the new balance."""

        def work(uow):
            acct = uow.load(LedgerAccount, account)
            acct.deposit(amount_cents, memo)
            return acct.balance_cents

        return self.store.run(work)

    @rpc
    def balance(self, account: str) -> int | None:
        """The projected balance of an account."""
        with self.store.read() as conn:
            return conn.execute(
                sa.select(balances.c.balance_cents).where(balances.c.account == account)
            ).scalar()

    @rpc
    def slow(self, seconds: float) -> str:
        """Sleeps: lets the tests see an RPC timeout."""
        import eventlet

        eventlet.sleep(seconds)
        return "done"
