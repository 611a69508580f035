"""A replay never repeats a side effect, even for a consumer that has never seen the events."""

import pika
import pytest

from shared.ops import cli
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.kernel.conftest import EXAMPLE, notices

pytestmark = pytest.mark.integration


def test_replayed_events_update_projections_but_send_nothing(
    container_factory, service_config, amqp_uri, tmp_path, monkeypatch
):
    from tests.kernel.example.ledger.service import LedgerService
    from tests.kernel.example.tally.service import TallyService

    ledger_db = f"sqlite:///{tmp_path / 'ledger.db'}"
    common = dict(
        TOPOLOGY_FILE=str(EXAMPLE / "topology.yaml"), NOTIFY_FILE=str(tmp_path / "notices.txt")
    )
    ledger = container_factory(LedgerService, service_config(ledger_db, **common))
    ledger.start()
    with rpc_client(amqp_uri) as cluster:
        cluster.ledger.deposit("acct-r", 10)
        cluster.ledger.deposit("acct-r", 20)
    # tally was never running: drop what its queue holds, as if it were added later.
    queue = "evt-ledger-Deposited--tally.on_deposited"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    wait_for(lambda: conn.channel().queue_declare(queue, passive=True).method.message_count == 2)
    conn.channel().queue_purge(queue)
    conn.close()

    tally = container_factory(
        TallyService, service_config(f"sqlite:///{tmp_path / 'tally.db'}", **common)
    )
    tally.start()
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    monkeypatch.setenv("LEDGER_DATABASE_URL", ledger_db)
    assert cli.main(["republish", "ledger", "--from", "1", "--type", "Deposited"]) == 0
    with rpc_client(amqp_uri) as cluster:
        total = wait_for(lambda: (t := cluster.tally.total("acct-r")) and t["count"] == 2 and t)
        assert total == {"count": 2, "sum_cents": 30}
        assert notices(tmp_path / "notices.txt") == [], "a replay sends nothing"
        cluster.ledger.deposit("acct-r", 5)  # live again: the side effect runs
        wait_for(lambda: len(notices(tmp_path / "notices.txt")) == 1, what="a live notice")
