"""Linked accounts, utility and general billing reads, bills and their PDF, over HTTP."""

from __future__ import annotations

import datetime as dt
import re

from tests.gateway.conftest import problem

MONEY = re.compile(r"^-?\d+\.\d{2}$")


def _iso_date(value: str) -> bool:
    dt.date.fromisoformat(value)
    return True


def test_outstanding_bills_of_a_linked_account(stack, resident):
    from shared.testing import wait_for

    # A bill of this test's own: the browser journey pays 98465 in the same session.
    (mine,) = stack.issue_bills("28624", "11.11")

    def outstanding():
        response = resident.get("/api/v1/accounts/28624/bills?status=outstanding")
        assert response.status_code == 200, response.text
        body = response.json()
        return mine in {b["bill_number"] for b in body["bills"]} and body

    body = wait_for(outstanding, timeout=20, what="the new bill among the outstanding ones")
    numbers = [b["bill_number"] for b in body["bills"]]
    assert mine in numbers
    for bill in body["bills"]:
        assert {
            "bill_number",
            "bill_date",
            "due_date",
            "charges",
            "balance_due",
            "pending_web_payment",
        } <= set(bill)
        assert MONEY.match(bill["charges"]) and MONEY.match(bill["balance_due"])
        assert _iso_date(bill["bill_date"]) and _iso_date(bill["due_date"])
    assert MONEY.match(body["total_due"])
    every = resident.get("/api/v1/accounts/00028624/bills?status=all").json()
    assert len(every["bills"]) >= len(body["bills"])
    assert {"98465", mine} <= {b["bill_number"] for b in every["bills"]}
    bad = resident.get("/api/v1/accounts/28624/bills?status=paid")
    assert "status" in problem(bad, 422)["errors"]


def test_an_account_not_linked_is_404_like_one_that_does_not_exist(make_resident):
    stranger = make_resident()
    for path in (
        "/api/v1/accounts/28624/bills",
        "/api/v1/accounts/99999999/bills",
        "/api/v1/accounts/28624/summary",
        "/api/v1/accounts/28624/consumption",
        "/api/v1/bills/98465",
        "/api/v1/bills/98465/pdf",
        "/api/v1/customers/12345/invoices",
    ):
        assert stranger.get(path).status_code == 404, path


def test_summary_consumption_details(resident):
    summary = resident.get("/api/v1/accounts/28624/summary")
    assert summary.status_code == 200
    body = summary.json()
    assert MONEY.match(body["amount_due_now"])
    assert body["account"]["customer_id"] == "405583"
    consumption = resident.get("/api/v1/accounts/28624/consumption").json()
    assert consumption["services"] and consumption["services"][0]["periods"]
    details = resident.get("/api/v1/accounts/28624").json()
    assert details["account_number"] == "28624" and details["services"]
    problem(resident.get("/api/v1/accounts/28624/consumption?color=red"), 422)


def test_bill_details_and_pdf(resident):
    bill = resident.get("/api/v1/bills/98465")
    assert bill.status_code == 200
    assert bill.json()["account_number"] == "28624"
    pdf = resident.get("/api/v1/bills/98465/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "98465" in pdf.headers["Content-Disposition"]
    problem(resident.get("/api/v1/bills/123456789"), 404)


def test_links_created_listed_and_removed(resident):
    bad = resident.post("/api/v1/me/links", {"type": "utility", "account_number": "28624"})
    assert problem(bad, 422)["errors"]
    wrong = resident.post(
        "/api/v1/me/links", {"type": "utility", "account_number": "28624", "customer_id": "1"}
    )
    assert problem(wrong, 422)["code"] == "no_account_match"
    problem(resident.post("/api/v1/me/links", {"type": "bank"}), 422)
    created = resident.post(
        "/api/v1/me/links", {"type": "customer", "customer_id": "12345", "name": "EXAMPLE CUSTOMER"}
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["type"] == "customer" and link["customer_id"] == "12345"
    invoices = resident.get("/api/v1/customers/12345/invoices?status=all")
    assert invoices.status_code == 200
    assert {b["bill_number"] for b in invoices.json()["bills"]} >= {"63295", "63296"}
    links = resident.get("/api/v1/me/links").json()["links"]
    assert link["link_id"] in {item["link_id"] for item in links}
    assert resident.delete(f"/api/v1/me/links/{link['link_id']}").status_code == 204
    problem(resident.delete(f"/api/v1/me/links/{link['link_id']}"), 404)
    assert resident.get("/api/v1/customers/12345/invoices").status_code == 404


def test_unlinking_the_account_closes_its_bills_at_once(make_resident):
    resident = make_resident(link=("28624", "405583"))
    assert resident.get("/api/v1/accounts/28624/bills").status_code == 200
    link = resident.get("/api/v1/me/links").json()["links"][0]
    assert resident.delete(f"/api/v1/me/links/{link['link_id']}").status_code == 204
    assert resident.get("/api/v1/accounts/28624/bills").status_code == 404


def test_linking_is_throttled_per_address(make_resident):
    resident = make_resident()
    for _ in range(30):
        resident.post("/api/v1/me/links", {"type": "utility"})
    response = resident.post("/api/v1/me/links", {"type": "utility"})
    problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_utility_search_links_and_remembers(make_resident):
    resident = make_resident()
    empty = resident.get("/api/v1/me/remembered-values/utility").json()
    assert empty == {"values": None}
    found = resident.post(
        "/api/v1/utility/searches",
        {"account_number": "28624", "customer_id": "405583", "remember": True},
    )
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["account_number"] == "28624"
    values = resident.get("/api/v1/me/remembered-values/utility").json()["values"]
    assert values["account_number"] == "28624"
    assert resident.get("/api/v1/accounts/28624/bills").status_code == 200
    assert resident.delete("/api/v1/me/remembered-values/utility").status_code == 204
    assert resident.get("/api/v1/me/remembered-values/utility").json() == {"values": None}
    problem(resident.get("/api/v1/me/remembered-values/other"), 404)
    miss = resident.post(
        "/api/v1/utility/searches", {"account_number": "28624", "customer_id": "1"}
    )
    assert problem(miss, 422)["code"] == "no_account_match"


def test_general_billing_lookup_by_customer_and_bill(make_resident):
    resident = make_resident()
    miss = resident.post("/api/v1/general/searches", {"customer_id": "12345", "bill_number": "1"})
    problem(miss, 422)
    found = resident.post(
        "/api/v1/general/searches",
        {"customer_id": "12345", "bill_number": "63295", "remember": True},
    )
    assert found.status_code == 200, found.text
    assert found.json()["customer_id"] == "12345"
    remembered = resident.get("/api/v1/me/remembered-values/general").json()["values"]
    assert remembered == {"customer_id": "12345", "bill_number": "63295"}
    invoices = resident.get("/api/v1/customers/12345/invoices?status=all").json()
    assert MONEY.match(invoices["total_balance_due"])
    info = resident.get("/api/v1/customers/12345").json()
    assert info["name"] == "EXAMPLE CUSTOMER"
    assert resident.get("/api/v1/bills/63295").status_code == 200


def test_preferences_address_changes_and_autopay(make_resident):
    resident = make_resident(link=("28624", "405583"))
    prefs = resident.get("/api/v1/accounts/28624/preferences").json()
    assert set(prefs) >= {"paperless", "email_notices"}
    changed = resident.put(
        "/api/v1/accounts/28624/preferences", {"paperless": True, "email_notices": True}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["paperless"] is True
    problem(resident.put("/api/v1/accounts/28624/preferences", {"paperless": "maybe"}), 422)

    effective = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    request = resident.post(
        "/api/v1/accounts/28624/address-changes",
        {
            "address_line1": "500 NEW STREET",
            "city": "PLEASANTON",
            "state": "CA",
            "zip": "94566",
            "effective_date": effective,
        },
    )
    assert request.status_code == 201, request.text
    pending = request.json()
    assert pending["status"] == "pending"
    again = resident.post(
        "/api/v1/accounts/28624/address-changes",
        {
            "address_line1": "501 NEW STREET",
            "city": "PLEASANTON",
            "state": "CA",
            "zip": "94566",
            "effective_date": effective,
        },
    )
    problem(again, 409)
    listed = resident.get("/api/v1/accounts/28624/address-changes").json()["requests"]
    assert listed[0]["request_id"] == pending["request_id"]
    cancelled = resident.delete(f"/api/v1/address-changes/{pending['request_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    autopay = resident.get("/api/v1/accounts/28624/autopay").json()
    assert autopay["status"] in ("none", "cancelled", "active")
    problem(resident.put("/api/v1/accounts/28624/autopay", {}), 422)
    not_enrolled = resident.delete("/api/v1/accounts/28624/autopay")
    assert 400 <= not_enrolled.status_code < 500
    problem(not_enrolled, not_enrolled.status_code)
    setup = resident.post("/api/v1/accounts/28624/autopay/card-setups")
    assert setup.status_code == 201, setup.text
    assert setup.json()["setup_url"].startswith("http")


def test_announcements_for_guests_and_residents(client, resident):
    guest = client.get("/api/v1/announcements")
    assert guest.status_code == 200
    assert isinstance(guest.json()["announcements"], list)
    signed_in = resident.get("/api/v1/announcements").json()["announcements"]
    assert len(signed_in) >= len(guest.json()["announcements"])
