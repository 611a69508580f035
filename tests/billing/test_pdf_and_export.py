"""The PDF copy holds the bill's figures; the posting file is the same every time it is made."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader

from services.billing import queries
from services.billing.export import COLUMNS, payments_csv
from services.billing.pdf import render_bill_pdf
from tests.billing.conftest import deliver, payment_reversed, payment_succeeded, seed_copy

pytestmark = pytest.mark.integration


def now():
    return dt.datetime.now(dt.UTC)


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_of_bill_98465_holds_the_same_figures(store, schedule, tmp_path):
    n = seed_copy(store, schedule, tmp_path)
    with store.read() as conn:
        bill = queries.bill_detail(conn, schedule, n["98465"], now=now())
    content = render_bill_pdf(bill)
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    flat = re.sub(r"\s+", " ", text)
    assert "UTILITY BILL" in flat and "CITY OF PLEASANTON" in flat
    assert n["98465"] in flat and f"{n['28624']} - {n['405583']}" in flat
    assert "11/30/2016" in flat and "01/23/2017" in flat  # statement and due date
    assert "68596455" in flat and "09/19/2016" in flat and "11/18/2016" in flat
    for line in bill["lines"]:
        assert line["description"] in flat
        if line["amount"] is not None:
            assert f"{line['description']} {line['amount']}" in flat
    # The figures on the PDF add up to the bill's total, which the PDF also prints.
    amounts = [Decimal(line["amount"]) for line in bill["lines"] if line["amount"]]
    assert sum(amounts) == Decimal("127.11")
    assert "Current Charges 127.11" in flat
    assert "Previous Balance 134.46" in flat and "Total Amount Due 261.57" in flat
    assert "1 Unit = 1 CCF = 748 Gallons" in flat
    assert "3333 Busch Road" in flat
    assert render_bill_pdf(bill) == content  # the same bill, the same bytes


def test_a_general_invoice_pdf_is_an_invoice(store, schedule, tmp_path):
    n = seed_copy(store, schedule, tmp_path)
    with store.read() as conn:
        bill = queries.bill_detail(conn, schedule, n["63295"], now=now())
    flat = re.sub(r"\s+", " ", pdf_text(render_bill_pdf(bill)))
    assert "INVOICE - CLAIMS" in flat and "EXAMPLE CUSTOMER" in flat
    assert "250.00" in flat and "07/02/2021" in flat
    assert "Meter Number" not in flat


def test_the_posting_file_lists_the_days_payments_and_reversals_the_same_way_twice(
    store, schedule, tmp_path
):
    n = seed_copy(store, schedule, tmp_path)
    paid = payment_succeeded(
        [(n["98820"], n["28624"], "134.46"), (n["98465"], n["28624"], "27.11")]
    )
    deliver(store, paid, schedule)
    deliver(
        store,
        payment_reversed("PaymentRefunded", paid.data["payment_id"], amount="27.11"),
        schedule,
    )
    day = schedule.today()
    with store.read() as conn:
        first, summary = payments_csv(conn, day)
    with store.read() as conn:
        second, _ = payments_csv(conn, day)
    assert first == second
    rows = [
        r for r in csv.DictReader(io.StringIO(first)) if r["payment_id"] == paid.data["payment_id"]
    ]
    assert list(csv.reader(io.StringIO(first)))[0] == list(COLUMNS)
    assert [(r["kind"], r["bill_number"], r["amount"]) for r in rows] == [
        ("payment", n["98820"], "134.46"),
        ("payment", n["98465"], "27.11"),
        ("refund", n["98465"], "-27.11"),
    ]
    assert {r["posting_date"] for r in rows} == {day.isoformat()}
    assert rows[0]["confirmation_number"] == paid.data["confirmation_number"]
    assert rows[2]["reversal_id"] and not rows[0]["reversal_id"]
    assert first.endswith("\r\n")
    with store.read() as conn:
        other_day, empty = payments_csv(conn, day - dt.timedelta(days=400))
    assert other_day == ",".join(COLUMNS) + "\r\n" and empty["rows"] == 0
    assert (
        Decimal(summary["net"]) >= Decimal("134.46") - 0
    )  # other tests' postings may share the day
