"""An event goes from one service's log to another's projection exactly once."""

import pytest

from shared.ops import cli
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.kernel.conftest import notices

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_deposit_reaches_the_other_service_once(pair, amqp_uri, db):
    services = pair(db)
    with rpc_client(amqp_uri) as cluster:
        assert cluster.ledger.deposit("acct-1", 500) == 500
        assert cluster.ledger.deposit("acct-1", 250, "rent") == 750
        assert cluster.ledger.balance("acct-1") == 750
        total = wait_for(
            lambda: (t := cluster.tally.total("acct-1")) and t["count"] == 2 and t,
            what="tally to see both deposits",
        )
    assert total == {"count": 2, "sum_cents": 750}
    assert len(notices(services["notices"])) == 2


def test_republished_events_change_nothing_and_send_nothing(pair, amqp_uri, monkeypatch):
    services = pair("sqlite")
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    monkeypatch.setenv("LEDGER_DATABASE_URL", services["ledger_db"])
    with rpc_client(amqp_uri) as cluster:
        cluster.ledger.deposit("acct-2", 100)
        cluster.ledger.deposit("acct-2", 200)
        wait_for(lambda: (cluster.tally.total("acct-2") or {}).get("count") == 2)
        assert cli.main(["republish", "ledger", "--from", "1"]) == 0
        # A third deposit after the replay proves the replayed ones were consumed first.
        cluster.ledger.deposit("acct-2", 300)
        total = wait_for(lambda: (t := cluster.tally.total("acct-2")) and t["count"] == 3 and t)
    assert total == {"count": 3, "sum_cents": 600}
    assert len(notices(services["notices"])) == 3
