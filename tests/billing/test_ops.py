"""muniportal-ops billing verbs: what an operator types, sees, and gets back as exit status."""

import json

import pytest

from services.billing import demo
from shared.ops import cli
from tests.billing.conftest import (
    account_imported,
    deliver,
    open_billing_store,
    payment_succeeded,
    seed_copy,
    unique,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('ops') / 'billing.db'}"


@pytest.fixture
def ops(url, monkeypatch, capsys):
    monkeypatch.setenv("BILLING_DATABASE_URL", url)

    def run(*argv):
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_bad_bills_file_lists_every_error_and_exits_2(ops, tmp_path):
    path = tmp_path / "bills.csv"
    path.write_text("bill_number,row_type,amount\n1,charge,abc\n2,bill,\n")
    code, out, err = ops("import", "bills", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert any("line 2" in line and "amount" in line for line in lines)
    assert lines[-1].startswith("muniportal-ops: bills.csv:") and "nothing was loaded" in lines[-1]


def test_reads_import_reports_what_it_did(ops, tmp_path):
    acct, meter = unique(), unique("M")
    path = tmp_path / "reads.csv"
    path.write_text(
        "account_number,service_code,meter_number,previous_read_date,previous_reading,read_date,reading\n"
        f"{acct},15100,{meter},2026-09-01,10,2026-11-01,30\n"
    )
    code, out, _ = ops("import", "reads", str(path), "--json")
    assert code == 0 and json.loads(out)["recorded"] == 1
    code, out, _ = ops("import", "reads", str(path))
    assert code == 0 and "recorded 0, 1 already on record" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--cycle", "1", "--statement-date", "11/30/2016"],
            "--statement-date: '11/30/2016' is not a date",
        ),
        (["--cycle", "1", "--statement-date", "2016-11-31"], "is not a date"),
        (["--cycle", "1", "--statement-date", "2026-11-01", "--due-days", "400"], "--due-days"),
        (["--cycle", "1", "--statement-date", "2026-11-01", "--batch-size", "0"], "--batch-size"),
        (
            ["--cycle", "no-such-cycle", "--statement-date", "2026-11-01"],
            "no active accounts in cycle no-such-cycle",
        ),
    ],
)
def test_bad_run_options_get_one_clear_line_and_status_2(ops, argv, message):
    code, out, err = ops("billing-run", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_a_run_from_the_command_line_and_its_listing(ops, url, schedule):
    store = open_billing_store(url)
    cycle = unique("c")
    sewer = [
        {
            "code": "20000",
            "name": "SEWER",
            "start_date": "1990-01-01",
            "stop_date": None,
            "status": "ACTIVE",
        }
    ]
    for _ in range(3):
        deliver(store, account_imported(unique(), "1", cycle=cycle, services=sewer), schedule)
    store.dispose()
    code, out, err = ops("billing-run", "--cycle", cycle, "--statement-date", "2026-11-01")
    assert code == 0, err
    assert f"run {cycle}-2026-11-01 completed: 3 bills" in out and "total 136.80" in out
    assert "due 2026-12-25" in out and "batch 1: 3 billed" in err
    code, out, _ = ops("billing-runs", "--json")
    runs = {r["run_id"]: r for r in json.loads(out)}
    assert runs[f"{cycle}-2026-11-01"]["status"] == "completed"
    code, _, err = ops("billing-runs", "--exceptions", "nope")
    assert code == 2 and "no billing run 'nope'" in err


def test_the_payments_export_twice_is_the_same_file(ops, url, schedule, tmp_path):
    store = open_billing_store(url)
    n = seed_copy(store, schedule, tmp_path)
    deliver(store, payment_succeeded([(n["98465"], n["28624"], "127.11")]), schedule)
    store.dispose()
    day = schedule.today().isoformat()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert ops("export", "payments", "--date", day, "--output", str(first))[0] == 0
    code, _, err = ops("export", "payments", "--date", day, "--output", str(second))
    assert code == 0 and "postings on" in err
    assert first.read_bytes() == second.read_bytes()
    assert b",payment," in first.read_bytes() and n["98465"].encode() in first.read_bytes()
    code, out, _ = ops("export", "payments", "--date", day)
    assert (
        out.encode() == first.read_bytes().replace(b"\r\n", b"\n")
        or out.encode() == first.read_bytes()
    )
    code, _, err = ops("export", "payments", "--date", "2099-01-01")
    assert code == 2 and "after today" in err


def test_penalties_from_the_command_line(ops):
    code, out, _ = ops("assess-penalties", "--as-of", "2026-11-01", "--json")
    assert code == 0 and json.loads(out)["as_of"] == "2026-11-01"
    code, _, err = ops("assess-penalties", "--as-of", "2099-01-01")
    assert code == 2 and "after today" in err


def test_the_demo_city_loads_once(tmp_path):
    store = open_billing_store(f"sqlite:///{tmp_path / 'demo.db'}")
    first = demo.load(store)
    second = demo.load(store)
    assert first["bills"] == {"issued": 5, "skipped": 0} and first["reads"]["recorded"] > 2000
    assert second["bills"] == {"issued": 0, "skipped": 5} and second["reads"]["recorded"] == 0
    store.dispose()
