"""The customers CSV: every bad row reported as file:line: reason; the rest planned."""

import io

import pytest

from services.accounts.importer import REQUIRED_COLUMNS, ImportFileError, parse, read_file
from tests.accounts.helpers import csv_text, customer_fields, plan_of, service_rows


def test_rows_group_into_customers_accounts_and_services():
    plan = plan_of(service_rows("405583", "28624") + [customer_fields("12345", "EXAMPLE CUSTOMER")])
    assert plan.errors == []
    assert set(plan.customers) == {"405583", "12345"}
    account = plan.accounts["28624"]
    assert account["customer_id"] == "405583"
    assert account["cycle"] == "1"
    assert [s["code"] for s in account["services"]] == ["10000", "15000"]
    assert account["services"][0] == {
        "code": "10000",
        "name": "PLEASANTON WATER FIXED CHARGE",
        "start_date": "1995-11-13",
        "stop_date": None,
        "status": "ACTIVE",
        "meter_number": "68596455",
        "meter_size": "1-1/2",
    }
    assert plan.customers["405583"]["mailing_address"] == {
        "line1": "123 MAIN STREET",
        "line2": None,
        "city": "PLEASANTON",
        "state": "CA",
        "zip": "94566-7320",
    }


def test_identifiers_in_the_file_are_normalized():
    plan = plan_of(service_rows(" 0405583", "0028624 "))
    assert list(plan.accounts) == ["28624"]
    assert plan.accounts["28624"]["customer_id"] == "405583"


def test_a_bad_row_is_reported_with_file_and_line_and_holds_back_its_account():
    rows = service_rows("405583", "28624") + service_rows("500001", "30001")
    rows[1]["service_start"] = "13/45/1995"  # line 3
    rows[3]["meter_size"] = "7/8"  # line 5
    plan = plan_of(rows, filename="city.csv")
    assert plan.report() == [
        "city.csv:3: service_start: must be a date (YYYY-MM-DD or MM/DD/YYYY)",
        "city.csv:5: meter_size: must be a meter size in inches: "
        "5/8, 5/8x3/4, 3/4, 1, 1-1/2, 2, 3, 4, 6, 8, 10, 12",
    ]
    # Both accounts had a bad row; their customers are fine and still load.
    assert plan.accounts == {}
    assert set(plan.customers) == {"405583", "500001"}
    assert [p.render("city.csv") for p in plan.held_back] == [
        "city.csv:2: not loaded: account 28624 has a bad row (line 3)",
        "city.csv:4: not loaded: account 30001 has a bad row (line 5)",
    ]


def test_good_accounts_load_beside_bad_ones():
    rows = service_rows("405583", "28624") + service_rows("500002", "30002")
    rows[2]["account_status"] = "MAYBE"
    plan = plan_of(rows)
    assert list(plan.accounts) == ["28624"]
    assert len(plan.errors) == 1 and "account_status: must be one of" in plan.errors[0].reason


def test_a_customer_that_differs_between_rows_is_held_back_with_all_its_accounts():
    rows = service_rows("405583", "28624") + service_rows("405583", "28625")
    rows[2]["customer_name"] = "CITY OF PLEASANTON CA"
    plan = plan_of(rows)
    assert plan.report() == ["test.csv:4: customer 405583: customer_name differs from line 2"]
    assert plan.customers == {} and plan.accounts == {}
    assert len(plan.held_back) == 3


def test_an_account_listed_under_two_customers_is_refused():
    rows = service_rows("405583", "28624") + service_rows("500003", "28624")
    plan = plan_of(rows)
    assert "account 28624: belongs to customer 405583 on line 2" in plan.report()[0]
    assert "28624" not in plan.accounts


def test_a_service_listed_twice_is_refused():
    rows = service_rows("405583", "28624") + service_rows("405583", "28624")[:1]
    plan = plan_of(rows)
    assert plan.report() == ["test.csv:4: account 28624: service 10000 is already on line 2"]


def test_a_stop_date_before_the_start_is_refused():
    rows = service_rows("405583", "28624")
    rows[0]["service_stop"] = "01/01/1990"
    plan = plan_of(rows)
    assert "service_stop: 1990-01-01 is before service_start 1995-11-13" in plan.report()[0]


def test_a_row_reports_every_problem_it_has():
    rows = [customer_fields("405583", "", mailing_zip="nope")]
    rows[0]["customer_id"] = "40-55"
    plan = plan_of(rows)
    reason = plan.errors[0].reason
    assert "customer_id: may contain only letters and digits" in reason
    assert "customer_name: is required" in reason
    assert "mailing_zip: must be a ZIP code" in reason


def test_service_columns_without_an_account_are_refused():
    row = customer_fields("405583")
    row["service_code"] = "10000"
    plan = plan_of([row])
    assert "account_number is empty" in plan.errors[0].reason


def test_line_numbers_count_quoted_newlines_and_blank_lines():
    rows = service_rows("405583", "28624")
    rows[0]["mailing_line2"] = "ATTN: UTILITIES\nDEPT"  # one quoted field over two lines
    rows[1]["service_status"] = "SOMETIMES"
    header, first, second = csv_text(rows).split("\n", 1)[0], *_records(csv_text(rows))
    text = f"{header}\n{first}\n\n{second}\n"
    plan = parse(io.StringIO(text, newline=""), filename="f.csv")
    # header 1, first record lines 2-3, blank line 4, second record line 5.
    assert plan.report() == [
        "f.csv:2: mailing_line2: must not contain control characters",
        "f.csv:5: service_status: must be one of ACTIVE, INACTIVE, CLOSED",
    ]


def _records(text: str) -> list[str]:
    body = text.split("\n", 1)[1].rstrip("\n")
    first_end = body.index("\n", body.index("DEPT"))
    return [body[:first_end], body[first_end + 1 :]]


def test_an_unknown_column_refuses_the_file():
    text = ",".join([*REQUIRED_COLUMNS, "meter_sise"]) + "\n"
    with pytest.raises(ImportFileError) as caught:
        parse(io.StringIO(text), filename="f.csv")
    assert str(caught.value).startswith("f.csv:1: unknown column 'meter_sise'")


def test_a_missing_required_column_refuses_the_file():
    with pytest.raises(ImportFileError) as caught:
        parse(io.StringIO("customer_id,customer_name\n1,A\n"), filename="f.csv")
    assert "missing column(s): mailing_line1" in str(caught.value)


def test_an_empty_file_is_refused():
    with pytest.raises(ImportFileError):
        parse(io.StringIO(""), filename="f.csv")


def test_a_file_in_another_encoding_says_so(tmp_path):
    path = tmp_path / "latin.csv"
    rows = service_rows("405583", "28624", name="JOSÉ NIÑO")
    path.write_bytes(csv_text(rows).encode("cp1252"))
    with pytest.raises(ImportFileError) as caught:
        read_file(str(path))
    assert "not utf-8 text" in str(caught.value)
    plan = read_file(str(path), encoding="cp1252")
    assert plan.customers["405583"]["name"] == "JOSÉ NIÑO"


def test_a_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(service_rows("405583", "28624")).encode())
    assert list(read_file(str(path)).accounts) == ["28624"]
