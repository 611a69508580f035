import os

import sqlalchemy as sa
from nameko.dependency_providers import Config

from shared.messaging import consumes
from shared.nameko import KernelService, SideEffect, Store
from shared.rpc import rpc
from tests.kernel.example.ledger import domain  # noqa: F401 - registers ledger's schemas
from tests.kernel.example.tally.projections import PROJECTIONS, totals

POISON_CENTS = 13


class FileNotifier:
    def __init__(self, path: str) -> None:
        self.path = path

    def notify(self, line: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(line + "\n")


class Notifier(SideEffect):
    """The outside world, for the tests: a line in a file per notice."""

    def live(self, worker_ctx):
        return FileNotifier(self.container.config["NOTIFY_FILE"])


class TallyService(KernelService):
    name = "tally"
    store = Store(PROJECTIONS, poll_interval=0.05)
    notifier = Notifier()
    config = Config()

    @consumes("ledger", "Deposited")
    def on_deposited(self, event, uow) -> None:
        """Count the deposit (the projection does it) and send a notice."""
        poison_switch = self.config.get("POISON_FILE")
        if event.data["amount_cents"] == POISON_CENTS and (
            poison_switch is None or os.path.exists(poison_switch)
        ):
            raise ValueError("13 cents is poison to this consumer")
        self.notifier.notify(f"{event.event_id} {event.data['account']}")

    @rpc
    def total(self, account: str) -> dict | None:
        """Count and sum of the deposits seen for an account."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(totals).where(totals.c.account == account)).first()
            return {"count": row.count, "sum_cents": row.sum_cents} if row else None
