"""The registry import against real stores: idempotent, change events, bad rows, all-or-nothing."""

import datetime as dt
import json

import pytest

from services.accounts import handlers, queries
from shared.ops import cli
from tests.accounts.conftest import load_rows
from tests.accounts.helpers import (
    csv_text,
    customer_fields,
    event_count,
    plan_of,
    service_rows,
    stored_events,
    unique_user,
)

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()


def events(store, *types):
    return stored_events(store, *types)


def test_a_first_import_records_customers_and_accounts(store):
    rows = service_rows("405583", "28624") + [customer_fields("12345", "EXAMPLE CUSTOMER")]
    result = load_rows(store, rows)
    assert result["customers"] == {"new": 2, "changed": 0, "unchanged": 0}
    assert result["accounts"] == {"new": 1, "changed": 0, "unchanged": 0}
    [account] = events(store, "AccountImported")
    assert account.stream_id == "account-28624"
    assert account.actor == "staff:test"
    assert account.data["cycle"] == "1"
    assert account.data["services"][1] == {
        "code": "15000",
        "name": "PLEASANTON WATER VAR CHARGE IRRIGATION",
        "start_date": "1995-11-13",
        "stop_date": None,
        "status": "ACTIVE",
        "meter_number": "68596455",
        "meter_size": "1-1/2",
    }
    with store.read() as conn:
        details = queries.account_details(conn, "28624", TODAY)
    assert details["customer_name"] == "CITY OF PLEASANTON"
    assert details["mailing_address"]["text"] == "123 MAIN STREET, PLEASANTON, CA 94566-7320"


def test_importing_the_same_file_again_changes_nothing(store):
    rows = service_rows("405583", "28624") + service_rows("405584", "28625")
    load_rows(store, rows)
    head = event_count(store)
    again = load_rows(store, rows)
    assert again["customers"] == {"new": 0, "changed": 0, "unchanged": 2}
    assert again["accounts"] == {"new": 0, "changed": 0, "unchanged": 2}
    assert event_count(store) == head


def test_changed_rows_record_change_events_naming_the_fields(store):
    load_rows(store, service_rows("405583", "28624") + service_rows("405584", "28625"))
    rows = service_rows("405583", "28624", cycle="2") + service_rows("405584", "28625")
    for row in rows[:2]:
        row["meter_size"] = "2"
    for row in rows[2:]:
        row["email"] = "new@example.com"
    result = load_rows(store, rows)
    assert result["accounts"] == {"new": 0, "changed": 1, "unchanged": 1}
    assert result["customers"] == {"new": 0, "changed": 1, "unchanged": 1}
    [account] = events(store, "AccountChanged")
    assert account.data["changed"] == ["cycle", "services"]
    assert {s["meter_size"] for s in account.data["services"]} == {"2"}
    [customer] = events(store, "CustomerChanged")
    assert customer.data["changed"] == ["email"] and customer.data["email"] == "new@example.com"
    with store.read() as conn:
        assert queries.account_row(conn, "28624").cycle == "2"


def test_bad_rows_are_reported_and_good_rows_still_load(store):
    rows = service_rows("405583", "28624") + service_rows("405584", "28625")
    rows[3]["service_start"] = "someday"
    result = handlers.import_registry(store, plan_of(rows, "c.csv"))
    assert result["errors"] == ["c.csv:5: service_start: must be a date (YYYY-MM-DD or MM/DD/YYYY)"]
    assert result["loaded"] is True
    assert [e.stream_id for e in events(store, "AccountImported")] == ["account-28624"]
    # The customer of the held-back account is good: it loads.
    assert result["customers"]["new"] == 2


def test_all_or_nothing_loads_nothing_when_a_row_is_bad(store):
    rows = service_rows("405583", "28624") + service_rows("405584", "28625")
    rows[3]["service_start"] = "someday"
    result = handlers.import_registry(store, plan_of(rows), all_or_nothing=True)
    assert result["loaded"] is False and result["bad_rows"] == 1
    assert event_count(store) == 0


def test_all_or_nothing_loads_everything_when_every_row_is_good(store):
    rows = service_rows("405583", "28624") + service_rows("405584", "28625")
    result = handlers.import_registry(store, plan_of(rows), all_or_nothing=True, batch_streams=1)
    assert result["loaded"] is True and result["accounts"]["new"] == 2


def test_a_dry_run_counts_and_records_nothing(store):
    result = handlers.import_registry(store, plan_of(service_rows("405583", "28624")), dry_run=True)
    assert result["accounts"]["new"] == 1
    assert event_count(store) == 0


def test_an_account_that_changes_customer_loses_its_links(store):
    load_rows(store, service_rows("405583", "28624"))
    user = unique_user()
    handlers.link_verified(store, user_id=user, kind="utility", number="28624", via="staff")
    result = load_rows(store, service_rows("777777", "28624", name="NEW OCCUPANT"))
    assert result["links_removed"] == 1
    [removed] = events(store, "LinkRemoved")
    assert removed.data["reason"] == "account_reassigned" and removed.data["user_id"] == user
    with store.read() as conn:
        assert not queries.has_account_link(conn, user, "28624")


def test_the_ops_verb_reports_bad_rows_as_file_line_reason(
    sqlite_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ACCOUNTS_DATABASE_URL", sqlite_url)
    rows = service_rows("405583", "28624") + service_rows("405584", "28625")
    rows[2]["mailing_zip"] = "ABCDE"
    path = tmp_path / "customers.csv"
    path.write_text(csv_text(rows))
    assert cli.main(["import", "customers", str(path), "--by", "kim"]) == 2
    out, err = capsys.readouterr()
    assert f"{path}:4: mailing_zip: must be a ZIP code" in err
    assert f"{path}:5: not loaded: customer 405584 has a bad row (line 4)" in err
    assert "1 bad row(s)" in err and "the other rows were loaded" in err
    assert "accounts:  1 new" in out

    assert cli.main(["import", "customers", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["accounts"] == {"new": 0, "changed": 0, "unchanged": 1}

    rows[2]["mailing_zip"] = "94566-7320"
    path.write_text(csv_text(rows))
    assert cli.main(["import", "customers", str(path), "--all-or-nothing"]) == 0
    assert "accounts:  1 new, 0 changed, 1 unchanged" in capsys.readouterr().out


def test_the_ops_verb_refuses_a_file_it_cannot_read(sqlite_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACCOUNTS_DATABASE_URL", sqlite_url)
    assert cli.main(["import", "customers", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,customer_name\n")
    assert cli.main(["import", "customers", str(bad)]) == 2
    assert f"{bad}:1: missing column(s)" in capsys.readouterr().err
