"""The demo city holds the seed guides' examples and loads idempotently."""

import datetime as dt

import pytest
import sqlalchemy as sa

from services.accounts import demo, queries
from services.accounts.projections import accounts
from tests.accounts.helpers import event_count

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()


def test_the_demo_city_has_the_seed_examples_and_loads_once(sqlite_store):
    first = demo.load(sqlite_store)
    assert first["city.csv"]["accounts"]["new"] == 1
    with sqlite_store.read() as conn:
        details = queries.account_details(conn, "28624", TODAY)
        example = queries.customer_info(conn, "12345", TODAY)
        query = sa.select(accounts.c.cycle, sa.func.count()).group_by(accounts.c.cycle)
        cycles = {cycle: n for cycle, n in conn.execute(query)}
    assert details["customer_id"] == "405583"
    assert details["customer_name"] == "CITY OF PLEASANTON"
    assert details["service_address"] == "0 ALAMEDA DR - IRR"
    assert details["service_city_state_zip"] == "PLEASANTON, CA 94566-0000"
    assert details["mailing_address"]["text"] == "123 MAIN STREET, PLEASANTON, CA 94566-7320"
    assert [
        (s["service"], s["code"], s["start_date"], s["status"]) for s in details["services"]
    ] == [
        ("PLEASANTON WATER FIXED CHARGE", "10000", "1995-11-13", "ACTIVE"),
        ("PLEASANTON WATER VAR CHARGE IRRIGATION", "15000", "1995-11-13", "ACTIVE"),
    ]
    assert {s["meter_number"] for s in details["services"]} == {"68596455"}
    assert (example["name"], example["address"], example["city_state_zip"]) == (
        "EXAMPLE CUSTOMER",
        "123 MAIN ST",
        "ANY TOWN, IL 00000",
    )
    assert set(cycles) == {"1", "2"} and sum(cycles.values()) > 2000

    count = event_count(sqlite_store)
    again = demo.load(sqlite_store)
    assert again["generated.csv"]["accounts"]["new"] == 0
    assert again["generated.csv"]["accounts"]["changed"] == 0
    assert event_count(sqlite_store) == count
