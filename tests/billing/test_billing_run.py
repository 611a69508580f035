"""Billing runs: every active account of a cycle billed once, numbers in sequence, rates exact."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.billing import projections as p
from services.billing import queries
from services.billing.import_reads import import_reads
from services.billing.run import (
    RunInProgress,
    _bill_batch,
    _start,
    billing_run,
    run_id_for,
)
from shared.errors import Conflict, InvalidInput
from shared.lease import Lease
from tests.billing.conftest import (
    account_imported,
    customer_imported,
    deliver,
    unique,
    water_services,
)

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 18, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 22)
READ_HEADER = (
    "account_number,service_code,meter_number,previous_read_date,previous_reading,"
    "read_date,reading,usage_units,note\n"
)


def add_accounts(store, schedule, cycle, specs):
    """specs: (account, meter, size, code, status); returns the account numbers."""
    for account, meter, size, code, status in specs:
        customer = f"9{account}"
        deliver(store, customer_imported(customer, f"RESIDENT {account}"), schedule)
        deliver(
            store,
            account_imported(
                account,
                customer,
                cycle=cycle,
                services=water_services(meter, size, code),
                status=status,
            ),
            schedule,
        )
    return [s[0] for s in specs]


def reads(store, schedule, tmp_path, rows, name="reads.csv"):
    path = tmp_path / name
    path.write_text(READ_HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return import_reads(store, path, schedule=schedule, today=TODAY)


def bills_of_run(store, run_id):
    with store.read() as conn:
        return list(
            conn.execute(
                sa.select(p.bills)
                .where(p.bills.c.run_id == run_id)
                .order_by(p.bills.c.bill_number_int)
            ).mappings()
        )


def test_a_run_bills_each_active_account_of_the_cycle_once_in_sequence(store, schedule, tmp_path):
    cycle = unique("c")
    seed_like, a2, a3, closed, elsewhere = (unique() for _ in range(5))
    m = {a: unique("M") for a in (seed_like, a2, a3, closed, elsewhere)}
    add_accounts(
        store,
        schedule,
        cycle,
        [
            (seed_like, m[seed_like], "1-1/2", "15000", "ACTIVE"),
            (a2, m[a2], "5/8", "15100", "ACTIVE"),
            (a3, m[a3], "3/4", "15100", "ACTIVE"),
            (closed, m[closed], "5/8", "15100", "INACTIVE"),
        ],
    )
    add_accounts(
        store, schedule, unique("c"), [(elsewhere, m[elsewhere], "5/8", "15100", "ACTIVE")]
    )
    reads(
        store,
        schedule,
        tmp_path,
        [
            (
                seed_like,
                "15000",
                m[seed_like],
                "2026-09-19",
                0,
                "2026-11-18",
                8,
                10,
                "REPLACED METER #1470066610.",
            ),
            (a2, "15100", m[a2], "2026-09-19", 100, "2026-11-18", 120, "", ""),
            (a3, "15100", m[a3], "2026-09-19", 500, "2026-11-18", 514, "", ""),
        ],
    )
    statement = dt.date(2026, 11, 20)
    result = billing_run(
        store, cycle=cycle, statement_date=statement, schedule=schedule, today=TODAY
    )
    assert (result.status, result.billed, result.exceptions) == ("completed", 3, 0)
    rows = bills_of_run(store, result.run_id)
    assert sorted(r["account_number"] for r in rows) == sorted([seed_like, a2, a3])
    numbers = [r["bill_number_int"] for r in rows]
    assert numbers == list(range(numbers[0], numbers[0] + 3)) and numbers[0] >= 100000
    assert {r["due_date"] for r in rows} == {statement + dt.timedelta(days=54)}
    by_account = {r["account_number"]: r for r in rows}
    # The seed's account, rated by the engine: 90.35 + 4.26 + 31.50 + 1.00.
    assert by_account[seed_like]["total"] == Decimal("127.11")
    assert by_account[seed_like]["customer_name"] == f"RESIDENT {seed_like}"
    # 5/8" fixed 30.12; 20 units residential: 14 x 0.55 + 6 x 0.85 = 12.80; zone 7 20 x 3.15 = 63.00
    assert by_account[a2]["total"] == Decimal("105.92")
    with store.read() as conn:
        bill = queries.bill_detail(
            conn, schedule, str(by_account[seed_like]["bill_number"]), now=NOW
        )
    assert [x["description"] for x in bill["lines"]][2] == "REPLACED METER #1470066610."
    assert (bill["usage_units"], bill["read_type"], bill["service_address"]) == (
        "10",
        "actual",
        "0 ALAMEDA DR - IRR, PLEASANTON, CA 94566-0000",
    )
    with store.read() as conn:
        billed = conn.execute(
            sa.select(sa.func.count())
            .select_from(p.meter_reads)
            .where(
                p.meter_reads.c.account_number.in_([seed_like, a2, a3]),
                p.meter_reads.c.billed_bill_number.is_not(None),
            )
        ).scalar_one()
    assert billed == 3

    again = billing_run(
        store, cycle=cycle, statement_date=statement, schedule=schedule, today=TODAY
    )
    assert again.status == "already_completed" and again.billed == 3
    assert len(bills_of_run(store, result.run_id)) == 3


def test_the_next_run_continues_the_numbers_and_estimates_a_missing_read(store, schedule, tmp_path):
    cycle, acct, meter = unique("c"), unique(), unique("M")
    add_accounts(store, schedule, cycle, [(acct, meter, "5/8", "15100", "ACTIVE")])
    reads(
        store,
        schedule,
        tmp_path,
        [(acct, "15100", meter, "2026-05-01", 100, "2026-07-01", 161, "", "")],
    )
    first = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 7, 5), schedule=schedule, today=TODAY
    )
    second = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 8, 31), schedule=schedule, today=TODAY
    )
    assert second.first_bill_number == first.last_bill_number + 1
    with store.read() as conn:
        bill = queries.bill_detail(conn, schedule, str(second.first_bill_number), now=NOW)
        history = queries.consumption(conn, schedule, acct)
    # 61 units over 61 days -> 1 a day; 2026-07-01 .. 2026-08-31 is 61 days.
    assert (
        bill["read_type"],
        bill["usage_units"],
        bill["previous_reading"],
        bill["current_reading"],
    ) == (
        "estimated",
        "61",
        "161",
        "222",
    )
    periods = history["services"][0]["periods"]
    assert [
        (x["from"], x["to"], x["days"], x["usage_units"], x["gallons"], x["read_type"])
        for x in periods
    ] == [
        ("2026-05-01", "2026-07-01", 61, "61", "45628", "actual"),
        ("2026-07-01", "2026-08-31", 61, "61", "45628", "estimated"),
    ]
    assert history["services"][0]["chart"]["usage_units"] == ["61", "61"]


def test_accounts_the_schedule_cannot_rate_are_listed_not_billed(store, schedule, tmp_path):
    cycle, good, odd, unread = unique("c"), unique(), unique(), unique()
    add_accounts(
        store,
        schedule,
        cycle,
        [
            (good, unique("M"), "5/8", "15100", "ACTIVE"),
            (odd, unique("M"), "10", "15100", "ACTIVE"),
            (unread, unique("M"), "5/8", "15100", "ACTIVE"),
        ],
    )
    with store.read() as conn:
        meters = dict(
            conn.execute(sa.select(p.accounts.c.account_number, p.accounts.c.services)).all()
        )
    reads(
        store,
        schedule,
        tmp_path,
        [
            (a, "15100", meters[a][1]["meter_number"], "2026-09-01", 1, "2026-11-01", 11, "", "")
            for a in (good, odd)
        ],
    )
    result = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 11, 5), schedule=schedule, today=TODAY
    )
    assert (result.billed, result.exceptions) == (1, 2)
    with store.read() as conn:
        reasons = dict(
            conn.execute(
                sa.select(p.run_exceptions.c.account_number, p.run_exceptions.c.reason).where(
                    p.run_exceptions.c.run_id == result.run_id
                )
            ).all()
        )
    assert "no fixed charge for meter size 10" in reasons[odd]
    assert "no read" in reasons[unread]


def test_an_unknown_cycle_is_a_clear_error_and_records_nothing(store, schedule):
    with store.read() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(p.runs)).scalar_one()
    with pytest.raises(InvalidInput) as err:
        billing_run(
            store,
            cycle="nowhere",
            statement_date=dt.date(2026, 11, 1),
            schedule=schedule,
            today=TODAY,
        )
    assert err.value.code == "unknown_cycle" and "cycle" in err.value.errors
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(p.runs)).scalar_one() == before


def test_a_statement_date_far_in_the_future_is_refused(store, schedule):
    with pytest.raises(InvalidInput) as err:
        billing_run(
            store, cycle="1", statement_date=dt.date(2027, 6, 1), schedule=schedule, today=TODAY
        )
    assert "statement_date" in err.value.errors


def test_only_one_run_at_a_time(store, schedule):
    holder = Lease(store.events, "billing-run")
    assert holder.try_acquire()
    try:
        with pytest.raises(RunInProgress):
            billing_run(
                store,
                cycle="1",
                statement_date=dt.date(2026, 11, 1),
                schedule=schedule,
                today=TODAY,
            )
    finally:
        holder.release()


def start_and_bill_one_batch(store, schedule, cycle, statement, batch_size):
    run_id = run_id_for(cycle, statement)
    with store.unit_of_work() as uow:
        _start(uow, run_id, cycle, statement, schedule, None)
    due = statement + dt.timedelta(days=schedule.policy.due_days)
    store.run(lambda uow: _bill_batch(uow, schedule, run_id, cycle, statement, due, batch_size))
    return run_id


def test_a_run_cut_short_resumes_where_it_stopped(store, schedule, tmp_path):
    cycle = unique("c")
    accounts = [(unique(), unique("M"), "5/8", "20000", "ACTIVE") for _ in range(7)]
    # Service 20000 is a flat fee: no reads needed.
    for account, meter, size, _, status in accounts:
        services = water_services(meter, size, "15100")[:1] + [
            {
                "code": "20000",
                "name": "SEWER",
                "start_date": "1990-01-01",
                "stop_date": None,
                "status": "ACTIVE",
            }
        ]
        deliver(
            store,
            account_imported(account, "1", cycle=cycle, services=services, status=status),
            schedule,
        )
    statement = dt.date(2026, 11, 1)
    run_id = start_and_bill_one_batch(store, schedule, cycle, statement, batch_size=3)
    assert len(bills_of_run(store, run_id)) == 3
    with pytest.raises(Conflict) as err:
        billing_run(
            store,
            cycle=cycle,
            statement_date=statement,
            schedule=schedule,
            due_days=10,
            today=TODAY,
        )
    assert err.value.code == "run_options_differ"
    result = billing_run(
        store, cycle=cycle, statement_date=statement, schedule=schedule, batch_size=2, today=TODAY
    )
    assert result.resumed and result.billed == 7
    rows = bills_of_run(store, run_id)
    assert sorted(r["account_number"] for r in rows) == sorted(a[0] for a in accounts)
    numbers = [r["bill_number_int"] for r in rows]
    assert numbers == list(range(numbers[0], numbers[0] + 7))
    assert {r["total"] for r in rows} == {Decimal("75.72")}  # 30.12 fixed + 45.60 sewer


def test_a_late_penalty_lands_on_the_unpaid_bill_and_shows_on_the_next_statement(
    store, schedule, tmp_path
):
    cycle, acct, meter = unique("c"), unique(), unique("M")
    add_accounts(store, schedule, cycle, [(acct, meter, "5/8", "15100", "ACTIVE")])
    reads(
        store,
        schedule,
        tmp_path,
        [(acct, "15100", meter, "2026-05-01", 0, "2026-06-28", 10, "", "")],
    )
    first = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 7, 1), schedule=schedule, today=TODAY
    )
    # 30.12 fixed + 10 x 0.55 + 10 x 3.15 zone 7; due 2026-08-24, grace 10 days -> 2026-09-03.
    assert first.amount == Decimal("67.12")
    on_the_last_day = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 9, 3), schedule=schedule, today=TODAY
    )
    assert on_the_last_day.penalties == 0
    after = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 9, 5), schedule=schedule, today=TODAY
    )
    assert after.penalties == 1  # the 9/3 bill is not due yet
    with store.read() as conn:
        penalized = queries.bill_detail(conn, schedule, str(first.first_bill_number), now=NOW)
        second = queries.bill_detail(
            conn, schedule, str(on_the_last_day.first_bill_number), now=NOW
        )
        third = queries.bill_detail(conn, schedule, str(after.first_bill_number), now=NOW)
        summary = queries.account_summary(conn, schedule, acct, as_of=TODAY, now=NOW)
    assert penalized["penalty_assessed"] == "6.71"  # 10 % of 67.12, half up
    assert (penalized["charges"], penalized["balance_due"]) == ("73.83", "73.83")
    assert [x["kind"] for x in penalized["postings"]] == ["penalty"]
    # The new statement prints the penalty and the open balance it carries.
    assert third["penalty"] == "6.71"
    assert third["previous_balance"] == str(Decimal("73.83") + Decimal(second["total"]))
    expected_due = Decimal("73.83") + Decimal(second["total"]) + Decimal(third["total"])
    assert summary["amount_due_now"] == str(expected_due)


def test_the_latest_account_record_wins_whatever_order_it_arrives_in(store, schedule):
    acct, meter = unique(), unique("M")
    early = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    late = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    newer = account_imported(
        acct, "1", cycle="2", services=water_services(meter, "1"), changed=True, occurred_at=late
    )
    older = account_imported(
        acct, "1", cycle="1", services=water_services(meter, "5/8"), occurred_at=early
    )
    deliver(store, newer, schedule)
    deliver(store, older, schedule)  # delivered late: must not undo the change
    with store.read() as conn:
        row = (
            conn.execute(sa.select(p.accounts).where(p.accounts.c.account_number == acct))
            .mappings()
            .one()
        )
    assert row["cycle"] == "2" and row["services"][0]["meter_size"] == "1"
    assert row["service_address"] == "0 ALAMEDA DR - IRR, PLEASANTON, CA 94566-0000"


def test_two_unbilled_reads_make_one_bill_and_are_never_billed_again(store, schedule, tmp_path):
    cycle, acct, meter = unique("c"), unique(), unique("M")
    add_accounts(store, schedule, cycle, [(acct, meter, "5/8", "15100", "ACTIVE")])
    reads(
        store,
        schedule,
        tmp_path,
        [
            (acct, "15100", meter, "2026-07-01", 100, "2026-08-01", 104, "", ""),
            (acct, "15100", meter, "", "", "2026-09-01", 110, "", "SWAPPED REGISTER."),
        ],
    )
    first = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 9, 5), schedule=schedule, today=TODAY
    )
    with store.read() as conn:
        bill = queries.bill_detail(conn, schedule, str(first.first_bill_number), now=NOW)
    assert [(r["read_date"], r["usage_units"]) for r in bill["reads"]] == [
        ("2026-08-01", "4"),
        ("2026-09-01", "6"),
    ]
    # Rated on 10 units in all: 30.12 + 10 x 0.55 + 10 x 3.15
    assert bill["total"] == "67.12"
    assert "SWAPPED REGISTER." in [x["description"] for x in bill["lines"] if x["amount"] is None]
    second = billing_run(
        store, cycle=cycle, statement_date=dt.date(2026, 10, 5), schedule=schedule, today=TODAY
    )
    with store.read() as conn:
        again = queries.bill_detail(conn, schedule, str(second.first_bill_number), now=NOW)
    assert [r["read_type"] for r in again["reads"]] == ["estimated"]
    assert again["previous_read_date"] == "2026-09-01" and again["previous_reading"] == "110"
