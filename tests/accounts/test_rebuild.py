"""Every accounts read model rebuilds from the log to exactly what it was."""

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from services.accounts import handlers
from services.accounts.projections import PROJECTIONS
from shared.projection import rebuild
from tests.accounts.conftest import load_rows
from tests.accounts.helpers import customer_fields, service_rows, unique_user

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()


def _canonical(value):
    # JSONB keeps keys in its own order: compare JSON values by content.
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def snapshot(store):
    out = {}
    with store.read() as conn:
        for projection in PROJECTIONS:
            for table in projection.tables:
                rows = conn.execute(sa.select(table)).mappings().all()
                out[table.name] = sorted(
                    tuple(sorted((k, _canonical(v)) for k, v in row.items())) for row in rows
                )
    return out


def test_rebuilt_projections_equal_the_live_ones(store):
    load_rows(store, service_rows("405583", "28624") + [customer_fields("12345", "EXAMPLE")])
    ana, bo = unique_user(), unique_user()
    handlers.link_verified(store, user_id=ana, kind="utility", number="28624", via="staff")
    link = handlers.link_verified(store, user_id=bo, kind="utility", number="28624", via="staff")
    handlers.link_verified(store, user_id=ana, kind="customer", number="12345", via="invoice")
    handlers.unlink(store, user_id=bo, link_id=link["link_id"])
    handlers.remember_values(
        store,
        user_id=ana,
        module="utility",
        values={"account_number": "28624", "customer_id": "405583"},
    )
    handlers.set_preferences(
        store, user_id=ana, account_number="28624", paperless=True, email_notices=False
    )
    payload = {
        "address_line1": "4 VALLEY AVE",
        "city": "PLEASANTON",
        "state": "CA",
        "zip": "94566",
        "effective_date": TODAY.isoformat(),
    }
    request = handlers.request_address_change(
        store, user_id=ana, account_number="28624", payload=payload
    )
    handlers.decide_address_request(
        store, request_id=request["request_id"], approve=True, staff="kim"
    )
    rows = service_rows("405583", "28624", cycle="2")
    load_rows(store, rows)
    before = snapshot(store)
    assert len(before["links"]) == 2 and len(before["customer_addresses"]) == 3
    for projection in PROJECTIONS:
        rebuild(store.events, projection)
    assert snapshot(store) == before
