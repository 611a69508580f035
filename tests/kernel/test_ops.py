"""muniportal-ops: the operator's verbs, their output, and their refusals (exit status 2)."""

import json
import subprocess
import sys

import pytest

from shared.ops import cli
from shared.uow import ServiceStore
from tests.kernel.example.ledger.domain import LedgerAccount
from tests.kernel.example.ledger.projections import PROJECTIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_store(db_url, monkeypatch, amqp_uri):
    monkeypatch.setenv("LEDGER_DATABASE_URL", db_url)
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    store = ServiceStore("ledger", db_url, PROJECTIONS)
    store.migrate()
    for account, cents in [("a", 1), ("b", 2), ("a", 3)]:
        store.run(lambda uow, a=account, c=cents: uow.load(LedgerAccount, a).deposit(c))
    yield store
    store.dispose()


def run(capsys, *argv):
    capsys.readouterr()
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_streams_show_and_tail(ledger_store, capsys):
    code, out, _ = run(capsys, "streams", "ledger", "--json")
    assert code == 0
    assert [(s["stream_id"], s["version"]) for s in json.loads(out)] == [
        ("account-a", 2),
        ("account-b", 1),
    ]
    code, out, _ = run(capsys, "show", "ledger", "account-a", "--json")
    events = json.loads(out)
    assert [e["data"]["amount_cents"] for e in events] == [1, 3]
    assert {
        "event_id",
        "type",
        "schema_version",
        "position",
        "occurred_at",
        "correlation_id",
        "causation_id",
        "actor",
    } <= set(events[0])
    code, out, _ = run(capsys, "tail", "ledger", "--from", "1")
    assert code == 0 and len(out.splitlines()) == 2 and "Deposited" in out


def test_rebuild_and_stats(ledger_store, capsys):
    code, out, _ = run(capsys, "rebuild", "ledger", "balances", "--json")
    assert code == 0 and json.loads(out)[0]["events"] == 3
    code, out, _ = run(capsys, "stats", "ledger", "--json")
    (row,) = json.loads(out)
    assert row["head"] == 3
    assert row["relay"] == {"position": 0, "lag": 3}
    by_name = {p["projection"]: p for p in row["projectors"]}
    assert by_name["balances"]["lag"] == 0
    assert by_name["history"]["mode"] == "async"
    ledger_store.catch_up()
    code, out, _ = run(capsys, "stats", "ledger", "--json")
    assert {p["projection"]: p["lag"] for p in json.loads(out)[0]["projectors"]}["history"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["streams", "nosuch"], "unknown service 'nosuch'"),
        (["show", "ledger", "account-zzz"], "no stream 'account-zzz'"),
        (["rebuild", "ledger", "nosuch"], "has no projection 'nosuch'"),
        (["republish", "ledger", "--from", "-1"], "--from must be 0 or more"),
        (["republish", "ledger", "--from", "3", "--to", "2"], "--to 2 is before --from 3"),
        (["republish", "ledger", "--from", "99"], "past the end of the log"),
        (["tail", "ledger", "--from", "-5"], "--from must be 0 or more"),
    ],
)
def test_bad_names_and_ranges_exit_2_with_one_line(ledger_store, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_the_installed_command_exits_2_too(ledger_store):
    result = subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", "show", "nosuch", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("muniportal-ops: unknown service 'nosuch'")


def test_json_works_before_and_after_the_verb(ledger_store, capsys):
    for argv in (["--json", "streams", "ledger"], ["streams", "ledger", "--json"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert [s["stream_id"] for s in json.loads(out)] == ["account-a", "account-b"]
