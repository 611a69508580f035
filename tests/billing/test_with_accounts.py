"""End to end with the real accounts service: its import's events reach billing over RabbitMQ,
and a billing run bills the seed's account exactly as Figure A."""

import datetime as dt
from pathlib import Path

import pytest

from services.accounts import handlers as accounts_handlers
from services.accounts.importer import read_file
from services.accounts.service import AccountsService
from services.billing import queries
from services.billing.import_reads import import_reads
from services.billing.run import billing_run
from services.billing.service import BillingService
from shared.ops.registry import open_store
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.billing.conftest import open_billing_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 22)


def test_an_account_imported_by_accounts_is_billed_by_billing(
    amqp_uri, pg_url, container_factory, service_config, schedule, tmp_path
):
    accounts_store = open_store("accounts", pg_url)
    accounts_store.migrate()
    plan = read_file(str(ROOT / "services/accounts/demo/city.csv"), filename="city.csv")
    assert not plan.errors
    accounts_handlers.import_registry(accounts_store, plan, actor="system")
    accounts_store.dispose()

    for cls in (AccountsService, BillingService):
        container_factory(cls, service_config(pg_url, PENALTY_INTERVAL=0)).start()
    with rpc_client(amqp_uri) as cluster:
        services = wait_for(
            lambda: cluster.billing.account_summary("28624")["services"],
            timeout=20,
            what="billing to learn account 28624 from accounts' events",
        )
    assert [(s["code"], s["status"]) for s in services] == [
        ("10000", "ACTIVE"),
        ("15000", "ACTIVE"),
    ]

    billing = open_billing_store(pg_url)
    reads = tmp_path / "reads.csv"
    reads.write_text(
        "account_number,service_code,meter_number,previous_read_date,previous_reading,"
        "read_date,reading,usage_units,note\n"
        "28624,15000,68596455,2016-09-19,0,2016-11-18,8,10,REPLACED METER #1470066610.\n"
    )
    import_reads(billing, reads, schedule=schedule, today=TODAY)
    run = billing_run(
        billing, cycle="1", statement_date=dt.date(2016, 11, 30), schedule=schedule, today=TODAY
    )
    assert run.billed == 1 and run.exceptions == 0
    with billing.read() as conn:
        bill = queries.bill_detail(
            conn, schedule, str(run.first_bill_number), now=dt.datetime.now(dt.UTC)
        )
    billing.dispose()
    assert (bill["account_number"], bill["customer_id"], bill["customer_name"]) == (
        "28624",
        "405583",
        "CITY OF PLEASANTON",
    )
    assert bill["service_address"] == "0 ALAMEDA DR - IRR, PLEASANTON, CA 94566-0000"
    assert [(x["description"], x["amount"]) for x in bill["lines"]] == [
        ("PLEASANTON WATER FIXED CHARGE", "90.35"),
        ("PLEASANTON WATER VAR CHARGE IRRIGATION", "4.26"),
        ("REPLACED METER #1470066610.", None),
        ("ZONE 7 COST", "31.50"),
        ("RECYCLED WATER", "1.00"),
    ]
    assert (bill["total"], bill["due_date"]) == ("127.11", "2017-01-23")
