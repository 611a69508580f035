"""A poison message is parked after N attempts and never blocks its queue."""

import json

import pytest

from shared.ops import cli
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.kernel.example.tally.service import POISON_CENTS

pytestmark = pytest.mark.integration


def ops_json(capsys, *argv):
    capsys.readouterr()
    assert cli.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_poison_is_parked_and_the_queue_keeps_flowing(
    pair, amqp_uri, tmp_path, monkeypatch, capsys
):
    poison_switch = tmp_path / "poison-on"
    poison_switch.write_text("1")
    pair("sqlite", POISON_FILE=str(poison_switch))
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    with rpc_client(amqp_uri) as cluster:
        cluster.ledger.deposit("acct-p", POISON_CENTS)
        cluster.ledger.deposit("acct-p", 100)
        cluster.ledger.deposit("acct-p", 200)
        # The good events behind the poison get through while it is retried.
        total = wait_for(
            lambda: (t := cluster.tally.total("acct-p")) and t["count"] == 2 and t,
            timeout=30,
            what="the good deposits",
        )
        assert total == {"count": 2, "sum_cents": 300}

        parked = wait_for(
            lambda: ops_json(capsys, "dead-letters", "tally", "list"),
            timeout=30,
            what="the poison to be parked",
        )
        assert len(parked) == 1
        assert parked[0]["type"] == "Deposited"
        assert parked[0]["attempts"] == 3  # MAX_DELIVERY_ATTEMPTS in the test config
        assert "13 cents is poison" in parked[0]["error"]
        assert parked[0]["queue"] == "evt-ledger-Deposited--tally.on_deposited.parked"

        # Listing is read-only: the message is still parked.
        assert len(ops_json(capsys, "dead-letters", "tally", "list")) == 1

        # Once the cause is fixed, a retry gets it handled, exactly once.
        poison_switch.unlink()
        done = ops_json(capsys, "dead-letters", "tally", "retry", "--id", parked[0]["message_id"])
        assert done["messages"] == [parked[0]["message_id"]]
        total = wait_for(
            lambda: (t := cluster.tally.total("acct-p")) and t["count"] == 3 and t,
            timeout=30,
            what="the retried deposit",
        )
        assert total == {"count": 3, "sum_cents": 313}
        assert ops_json(capsys, "dead-letters", "tally", "list") == []

        # Another poison, dropped this time: gone, and never counted.
        poison_switch.write_text("1")
        cluster.ledger.deposit("acct-p", POISON_CENTS)
        parked = wait_for(lambda: ops_json(capsys, "dead-letters", "tally", "list"), timeout=30)
        dropped = ops_json(capsys, "dead-letters", "tally", "drop", "--all")
        assert dropped["messages"] == [parked[0]["message_id"]]
        assert ops_json(capsys, "dead-letters", "tally", "list") == []
        assert cluster.tally.total("acct-p") == {"count": 3, "sum_cents": 313}


def test_dead_letter_verbs_refuse_bad_input(pair, amqp_uri, monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    assert cli.main(["dead-letters", "nosuch", "list"]) == 2
    assert "unknown service 'nosuch'" in capsys.readouterr().err
    assert cli.main(["dead-letters", "tally", "list", "--queue", "evt-x"]) == 2
    assert "no consumer queue" in capsys.readouterr().err
    assert cli.main(["dead-letters", "tally", "retry"]) == 2
    assert "needs --id MESSAGE_ID or --all" in capsys.readouterr().err
