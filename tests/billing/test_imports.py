"""`import bills` and `import reads`: exact figures, every bad row named, nothing half-loaded."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.billing import projections as p
from services.billing import queries
from services.billing.csvfile import ImportRejected
from services.billing.import_bills import import_bills
from services.billing.import_reads import import_reads
from tests.billing.conftest import DEMO_BILLS, seed_file, unique

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 18, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 22)

BILL_HEADER = (
    "bill_number,row_type,bill_type,account_number,customer_id,customer_name,service_address,"
    "statement_date,due_date,service_code,meter_number,previous_read_date,read_date,"
    "previous_reading,reading,usage_units,read_type,description,amount,date,reference\n"
)
READ_HEADER = (
    "account_number,service_code,meter_number,read_date,reading,"
    "previous_read_date,previous_reading,usage_units,read_type,note\n"
)


def counts(store) -> dict[str, int]:
    with store.read() as conn:
        return {
            "events": conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one(),
            "bills": conn.execute(sa.select(sa.func.count()).select_from(p.bills)).scalar_one(),
            "reads": conn.execute(
                sa.select(sa.func.count()).select_from(p.meter_reads)
            ).scalar_one(),
        }


def test_the_seed_bill_98465_is_exactly_figure_a(store, schedule):
    result = import_bills(store, DEMO_BILLS, schedule=schedule, today=TODAY)
    assert result["issued"] + result["skipped"] == 5
    with store.read() as conn:
        bill = queries.bill_detail(conn, schedule, "98465", now=NOW)
    charges = [(x["description"], x["amount"]) for x in bill["lines"] if x["amount"] is not None]
    assert charges == [
        ("PLEASANTON WATER FIXED CHARGE", "90.35"),
        ("PLEASANTON WATER VAR CHARGE IRRIGATION", "4.26"),
        ("ZONE 7 COST", "31.50"),
        ("RECYCLED WATER", "1.00"),
    ]
    assert sum(Decimal(a) for _, a in charges) == Decimal("127.11") == Decimal(bill["total"])
    assert [x["description"] for x in bill["lines"] if x["amount"] is None] == [
        "REPLACED METER #1470066610."
    ]
    assert (bill["bill_number"], bill["account_number"], bill["customer_id"]) == (
        "98465",
        "28624",
        "405583",
    )
    assert (bill["statement_date"], bill["due_date"]) == ("2016-11-30", "2017-01-23")
    assert bill["customer_name"] == "CITY OF PLEASANTON"
    assert (bill["meter_number"], bill["previous_read_date"], bill["current_read_date"]) == (
        "68596455",
        "2016-09-19",
        "2016-11-18",
    )
    assert (bill["previous_reading"], bill["current_reading"], bill["usage_units"]) == (
        "0",
        "8",
        "10",
    )
    assert (bill["read_type"], bill["gallons"]) == ("actual", "7480")  # 1 unit = 748 gallons
    assert bill["balance_due"] == "127.11" and bill["status"] == "open"
    assert (
        "3333 Busch Road" in bill["contact"] and bill["unit_note"] == "1 Unit = 1 CCF = 748 Gallons"
    )
    assert bill["issuer"] == "CITY OF PLEASANTON" and bill["bill_year"] == 2017


def test_the_paid_bill_shows_its_posted_payment(store, schedule, tmp_path):
    path, n = seed_file(tmp_path)
    import_bills(store, path, schedule=schedule, today=TODAY)
    with store.read() as conn:
        summary = queries.account_summary(conn, schedule, n["28624"], as_of=TODAY, now=NOW)
        listing = queries.account_bills(conn, schedule, n["28624"], as_of=TODAY, now=NOW)
    assert summary["payments"][0]["bill_number"] == n["35932"]
    assert summary["payments"][0]["last_posted"] == "2016-08-26"
    assert summary["payments"][0]["sum_of_payments"] == "134.46"
    assert summary["amount_due_now"] == "261.57" == listing["total_due"]
    assert summary["payment_due_date"] == "2016-12-10"
    assert [b["bill_number"] for b in listing["bills"]] == [n["98820"], n["98465"]]


def test_importing_the_same_bills_again_changes_nothing(store, schedule, tmp_path):
    path, _ = seed_file(tmp_path)
    assert import_bills(store, path, schedule=schedule, today=TODAY)["issued"] == 5
    before = counts(store)
    again = import_bills(store, path, schedule=schedule, today=TODAY)
    assert (again["issued"], again["skipped"]) == (0, 5)
    assert counts(store) == before


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_bill_rows_are_all_named_and_nothing_is_loaded(store, schedule, tmp_path):
    good, other = unique(), unique()
    text = BILL_HEADER + "\n".join(
        [
            f"{good},bill,UTILITY,1,2,ANA,,2026-01-01,2026-02-01,,,,,,,,,,,,",
            f"{good},charge,,,,,,,,,,,,,,,,FEE,10.00,,",
            f"{other},bill,UTILITY,,2,ANA,,2026-03-01,2026-02-01,,,,,,,,,,,,",  # 4: 2 errors
            f"{other},charge,,,,,,,,,,,,,,,,FEE,1.005,,",  # 5: a fraction of a cent
            f"{other},read,,,,,,,,15000,M1,2026-02-01,2026-01-01,10,5,,,,,,",  # 6: backwards
            f"{other},payment,,,,,,,,,,,,,,,,,9.00,2026-13-01,",  # 7: not a date
            f"{other},refund,,,,,,,,,,,,,,,,,,,",  # 8: unknown row type
        ]
    )
    before = counts(store)
    with pytest.raises(ImportRejected) as err:
        import_bills(
            store, write(tmp_path, "bills.csv", text + "\n"), schedule=schedule, today=TODAY
        )
    errors = err.value.errors
    assert errors["line 4, account_number"] == "is required"
    assert "before the statement date" in errors["line 4, due_date"]
    assert "two decimal places" in errors["line 5, amount"]
    assert "must be after the previous read date" in errors["line 6, read_date"]
    assert "less than the previous reading" in errors["line 6, reading"]
    assert "not a date" in errors["line 7, date"]
    assert "is not one of" in errors["line 8, row_type"]
    assert "nothing was loaded" in err.value.detail
    assert counts(store) == before


def test_a_different_bill_under_an_existing_number_is_refused(store, schedule, tmp_path):
    number = unique()
    first = (
        BILL_HEADER
        + f"{number},bill,CLAIMS,,7,BOB,,2026-01-01,2026-02-01,,,,,,,,,,,,\n"
        + f"{number},charge,,,,,,,,,,,,,,,,FEE,10.00,,\n"
    )
    import_bills(store, write(tmp_path, "a.csv", first), schedule=schedule, today=TODAY)
    changed = first.replace("10.00", "11.00")
    with pytest.raises(ImportRejected) as err:
        import_bills(store, write(tmp_path, "b.csv", changed), schedule=schedule, today=TODAY)
    assert "already exists with other figures" in err.value.errors["line 2, bill_number"]


def test_a_bad_header_names_the_columns(store, schedule, tmp_path):
    with pytest.raises(ImportRejected) as err:
        import_bills(
            store, write(tmp_path, "x.csv", "bill_number,colour\n1,red\n"), schedule=schedule
        )
    assert "row_type" in err.value.errors["line 1"]
    assert "colour" in err.value.errors["line 1, header"]


def test_a_column_a_row_type_does_not_use_is_an_error(store, schedule, tmp_path):
    number = unique()
    text = BILL_HEADER + f"{number},bill,CLAIMS,,7,BOB,,2026-01-01,2026-02-01,,,,,,,,,,99.00,,\n"
    with pytest.raises(ImportRejected) as err:
        import_bills(store, write(tmp_path, "x.csv", text), schedule=schedule, today=TODAY)
    assert "does not use column(s) amount" in err.value.errors["line 2"]


def test_reads_load_and_reload_without_duplicates(store, schedule, tmp_path):
    acct, meter = unique(), unique("M")
    text = READ_HEADER + (
        f"{acct},15000,{meter},2026-09-01,100,2026-07-01,90,,actual,\n"
        f"{acct},15000,{meter},2026-11-01,112,,,,A,\n"  # previous taken from the line before
    )
    path = write(tmp_path, "reads.csv", text)
    result = import_reads(store, path, schedule=schedule, today=TODAY)
    assert (result["recorded"], result["skipped"]) == (2, 0)
    again = import_reads(store, path, schedule=schedule, today=TODAY)
    assert (again["recorded"], again["skipped"]) == (0, 2)
    with store.read() as conn:
        rows = conn.execute(
            sa.select(p.meter_reads.c.read_date, p.meter_reads.c.usage_units)
            .where(p.meter_reads.c.meter_number == meter)
            .order_by(p.meter_reads.c.read_date)
        ).all()
    assert [(r[0].isoformat(), Decimal(r[1])) for r in rows] == [
        ("2026-09-01", 10),
        ("2026-11-01", 12),
    ]


def test_a_later_file_links_to_the_last_read_on_record(store, schedule, tmp_path):
    acct, meter = unique(), unique("M")
    import_reads(
        store,
        write(
            tmp_path,
            "a.csv",
            READ_HEADER + f"{acct},15000,{meter},2026-09-01,100,2026-07-01,90,,,\n",
        ),
        schedule=schedule,
        today=TODAY,
    )
    import_reads(
        store,
        write(tmp_path, "b.csv", READ_HEADER + f"{acct},15000,{meter},2026-11-01,130,,,,,\n"),
        schedule=schedule,
        today=TODAY,
    )
    with store.read() as conn:
        row = (
            conn.execute(
                sa.select(p.meter_reads).where(
                    p.meter_reads.c.read_date == dt.date(2026, 11, 1),
                    p.meter_reads.c.meter_number == meter,
                )
            )
            .mappings()
            .one()
        )
    assert (
        row["previous_read_date"],
        Decimal(row["previous_reading"]),
        Decimal(row["usage_units"]),
    ) == (
        dt.date(2026, 9, 1),
        Decimal(100),
        Decimal(30),
    )


def test_bad_reads_and_bad_ranges_are_all_named_and_nothing_is_loaded(store, schedule, tmp_path):
    acct, meter, other = unique(), unique("M"), unique("M")
    text = READ_HEADER + "\n".join(
        [
            f"{acct},15000,{meter},2026-09-01,100,2026-07-01,90,,,",  # 2: good
            f"{acct},15000,{meter},2026-10-01,95,,,,,",  # 3: less than the previous reading
            f"{acct},15000,{other},2026-10-01,10,2026-11-01,5,,,",  # 4: dates backwards
            f"{acct},15000,{other},2026-12-24,10,,,,,",  # 5: in the future
            f"{acct},,{other},2026/10/01,ten,,,,maybe,",  # 6: several at once
            f"{acct},15000,{meter},2026-09-01,101,,,,,",  # 7: the same meter and day twice
            f"{acct},15000,{unique('M')},2026-10-01,10,,,,,",  # 8: no earlier read to link to
        ]
    )
    before = counts(store)
    with pytest.raises(ImportRejected) as err:
        import_reads(
            store, write(tmp_path, "reads.csv", text + "\n"), schedule=schedule, today=TODAY
        )
    e = err.value.errors
    assert "less than the previous reading 100" in e["line 3, reading"]
    assert "must be after the previous read date 2026-11-01" in e["line 4, read_date"]
    assert "after today" in e["line 5, read_date"]
    assert e["line 6, service_code"] == "is required"
    assert "not a date" in e["line 6, read_date"] and "not a number" in e["line 6, reading"]
    assert "not a read type" in e["line 6, read_type"]
    assert "twice" in e["line 7, read_date"]
    assert "no earlier read on record" in e["line 8, previous_reading"]
    assert "line 2" not in " ".join(e)
    assert counts(store) == before


def test_a_read_that_disagrees_with_the_one_on_record_is_refused(store, schedule, tmp_path):
    acct, meter = unique(), unique("M")
    row = f"{acct},15000,{meter},2026-09-01,100,2026-07-01,90,,,\n"
    import_reads(store, write(tmp_path, "a.csv", READ_HEADER + row), schedule=schedule, today=TODAY)
    with pytest.raises(ImportRejected) as err:
        import_reads(
            store,
            write(tmp_path, "b.csv", READ_HEADER + row.replace(",100,", ",101,")),
            schedule=schedule,
            today=TODAY,
        )
    assert "already has a read on 2026-09-01" in err.value.errors["line 2, reading"]


def test_an_empty_or_non_utf8_file_is_refused(store, schedule, tmp_path):
    with pytest.raises(ImportRejected, match="empty"):
        import_reads(store, write(tmp_path, "e.csv", ""), schedule=schedule)
    with pytest.raises(ImportRejected, match="no rows"):
        import_reads(store, write(tmp_path, "h.csv", READ_HEADER), schedule=schedule)
    latin = tmp_path / "l.csv"
    latin.write_bytes(READ_HEADER.encode() + "1,1,M,2026-01-01,1,,,,,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ImportRejected, match="UTF-8"):
        import_reads(store, latin, schedule=schedule)


def test_a_dry_run_checks_and_stores_nothing(store, schedule, tmp_path):
    path, _ = seed_file(tmp_path)
    before = counts(store)
    result = import_bills(store, path, schedule=schedule, dry_run=True, today=TODAY)
    assert result["issued"] == 5 and result["dry_run"]
    assert counts(store) == before
