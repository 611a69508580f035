"""A copy of the bill as a real PDF (fpdf2), holding the same figures as `bill()`.

The file is deterministic: the same bill gives the same bytes (its creation
date is the statement date), so a copy can be compared or cached.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from fpdf import FPDF

FONT = "Helvetica"


def _latin1(text: Any) -> str:
    """Core PDF fonts speak Latin-1: keep accents, fold the rest to the nearest letter."""
    value = "" if text is None else str(text)
    try:
        value.encode("latin-1")
        return value
    except UnicodeEncodeError:
        folded = unicodedata.normalize("NFKD", value)
        return folded.encode("latin-1", "ignore").decode("latin-1")


def _us_date(iso: str | None) -> str:
    if not iso:
        return ""
    return dt.date.fromisoformat(iso).strftime("%m/%d/%Y")


class _Bill(FPDF):
    def label_value(self, label: str, value: Any, width: float) -> None:
        x, y = self.get_x(), self.get_y()
        self.set_font(FONT, size=7)
        self.cell(width, 4, _latin1(label), new_x="LEFT", new_y="NEXT")
        self.set_font(FONT, "B", 10)
        self.cell(width, 6, _latin1(value))
        self.set_xy(x + width, y)


def render_bill_pdf(bill: dict[str, Any]) -> bytes:
    """The bill as PDF bytes; `bill` is what the `bill` RPC returns."""
    pdf = _Bill(format="Letter", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(f"Bill {bill['bill_number']}")
    pdf.set_author(_latin1(bill.get("issuer") or ""))
    pdf.set_creation_date(
        dt.datetime.combine(dt.date.fromisoformat(bill["statement_date"]), dt.time(), dt.UTC)
    )
    pdf.add_page()
    utility = bill["kind"] == "utility"
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font(FONT, "B", 12)
    pdf.cell(width / 2, 6, _latin1(bill.get("issuer") or ""))
    pdf.cell(
        width / 2,
        6,
        "UTILITY BILL" if utility else _latin1(f"INVOICE - {bill['bill_type']}"),
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(FONT, size=9)
    for line in bill.get("issuer_address") or []:
        pdf.cell(width, 4.5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.label_value("Customer Name", bill["customer_name"], width / 2)
    pdf.label_value("Service Address", bill.get("service_address") or "", width / 2)
    pdf.ln(11)
    numbers = (
        f"{bill['account_number']} - {bill['customer_id']}"
        if bill.get("account_number")
        else bill["customer_id"]
    )
    pdf.label_value("Bill Number", bill["bill_number"], width / 4)
    pdf.label_value(
        "Account Number - Customer Number" if bill.get("account_number") else "Customer ID",
        numbers,
        width * 3 / 8,
    )
    pdf.label_value("Statement Date", _us_date(bill["statement_date"]), width / 8 + 4)
    pdf.label_value("Current Billing Due Date", _us_date(bill["due_date"]), width / 4 - 4)
    pdf.ln(13)

    if bill.get("reads"):
        headers = [
            ("Meter Number", 0.17),
            ("Previous Read Date", 0.16),
            ("Current Read Date", 0.16),
            ("Previous Meter Read", 0.15),
            ("Current Meter Read", 0.14),
            ("Usage (Units)", 0.12),
            ("Read Type", 0.10),
        ]
        pdf.set_font(FONT, "B", 7.5)
        pdf.set_fill_color(230, 230, 230)
        for title, share in headers:
            pdf.cell(width * share, 6, title, border=1, fill=True)
        pdf.ln(6)
        pdf.set_font(FONT, size=9)
        for read in bill["reads"]:
            values = [
                read["meter_number"],
                _us_date(read["previous_read_date"]),
                _us_date(read["read_date"]),
                read["previous_reading"],
                read["reading"],
                read["usage_units"],
                read["read_type"].upper(),
            ]
            for (_, share), value in zip(headers, values, strict=True):
                pdf.cell(width * share, 6, _latin1(value), border=1)
            pdf.ln(6)
        pdf.set_font(FONT, "I", 8)
        pdf.cell(width, 5, _latin1(bill.get("unit_note") or ""), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    pdf.set_font(FONT, "B", 10)
    pdf.cell(width, 7, "Charges", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9.5)
    for line in bill["lines"]:
        if line.get("amount") is None:
            pdf.set_font(FONT, "I", 9)
            pdf.cell(width, 5.5, _latin1(line["description"]), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FONT, size=9.5)
            continue
        pdf.cell(width * 0.75, 5.5, _latin1(line["description"]))
        pdf.cell(width * 0.25, 5.5, line["amount"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(1)
    summary = [
        ("Previous Balance", bill["previous_balance"]),
        ("Payments", bill["payments"]),
        ("Penalty", bill["penalty"]),
        ("Current Charges", bill["total"]),
        ("Total Amount Due", bill["account_total_due"]),
    ]
    for label, value in summary:
        bold = label == "Total Amount Due"
        pdf.set_font(FONT, "B" if bold else "", 10 if bold else 9.5)
        pdf.cell(width * 0.75, 6, label, align="R")
        pdf.cell(width * 0.25, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9.5)
    pdf.cell(width * 0.75, 6, f"Pay by {_us_date(bill['due_date'])}", align="R")
    pdf.cell(width * 0.25, 6, "", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    pdf.set_font(FONT, size=8.5)
    pdf.multi_cell(width, 4.5, _latin1(f"Contact us: {bill.get('contact') or ''}"))
    if bill.get("website"):
        pdf.cell(width, 5, _latin1(bill["website"]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, size=7.5)
    whose = (
        f"account {bill['account_number']}"
        if bill.get("account_number")
        else f"customer {bill['customer_id']}"
    )
    pdf.multi_cell(
        width,
        4,
        _latin1(
            f"Please return this portion with your payment. Bill {bill['bill_number']}, "
            f"{whose}, "
            f"amount of this bill {bill['total']}, due {_us_date(bill['due_date'])}."
        ),
    )
    return bytes(pdf.output())


def pdf_filename(bill: dict[str, Any]) -> str:
    return f"bill-{bill['bill_number']}.pdf"
