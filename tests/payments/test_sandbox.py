"""The processor sandbox on its own, over HTTP: API, hosted page, cards, webhooks, tokens."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time

import pytest
import requests

from services.payments.signatures import HEADER, verify
from shared import testing
from shared.testing import wait_for
from tests.payments.standins import SECRET, HostedPage, Sandbox

pytestmark = pytest.mark.integration

RETURN = "https://portal.example.test/return"


class Receiver:
    """A webhook endpoint that answers with the statuses it is told to, then 200."""

    def __init__(self) -> None:
        self.port = testing.free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.received: list[dict] = []
        self.failures: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.failures.pop(0) if receiver.failures else 200
                receiver.received.append(
                    {
                        "at": time.time(),
                        "body": body,
                        "signature": self.headers.get(HEADER),
                        "status": status,
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, status: int = 200) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received if r["status"] == status]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def sandbox(receiver, tmp_path_factory):
    s = Sandbox(tmp_path_factory.mktemp("sandbox"), receiver.url, ["--delay-seconds", "0.5"])
    yield s
    s.stop()


def session(sandbox, amount="42.00", key=None, minutes=10, reference=None):
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    headers = {"Idempotency-Key": key} if key else {}
    status, body = sandbox.api(
        "POST",
        "/v1/checkout/sessions",
        {
            "reference": reference or f"pay_{time.time_ns()}",
            "amount": amount,
            "return_url": RETURN,
            "expires_at": expires.isoformat(),
            "description": "City of Pleasanton: bill 98465",
        },
        headers=headers,
    )
    assert status == 200, body
    return body


def events_for(receiver, reference):
    return [e for e in receiver.events() if e["data"]["object"].get("reference") == reference]


def test_the_api_needs_the_key(sandbox):
    response = requests.post(sandbox.url + "/v1/checkout/sessions", json={}, timeout=5)
    assert response.status_code == 401
    response = requests.get(
        sandbox.url + "/v1/transactions?date=2026-01-01",
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert response.status_code == 401


def test_the_hosted_page_has_the_form_and_the_test_cards(sandbox):
    s = session(sandbox, "261.57")
    page = HostedPage(s["url"])
    html = page.open().text
    form = page.form()
    assert form["method"] == "post" and form["action"] == f"/pay/{s['id']}"
    assert set(form["fields"]) == {"name", "card_number", "expiry", "cvc"}
    assert "$261.57" in html and "Time left: 9 minutes" in html
    for number in (
        "4242424242424242",
        "4000000000000002",
        "4000000000009995",
        "4000000000000119",
        "4000000000001257",
    ):
        assert number in html
    assert page.open().headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"card_number": "4242424242424241"}, {"card_number": "Enter a valid card number."}),
        ({"card_number": "4111111111111111"}, {"card_number": "only its test cards"}),
        ({"expiry": "01/20"}, {"expiry": "This card has expired."}),
        ({"expiry": "13/30"}, {"expiry": "01 to 12"}),
        ({"cvc": "12"}, {"cvc": "3 or 4 digit"}),
        ({"name": ""}, {"name": "Enter the name on the card."}),
    ],
)
def test_the_form_explains_each_mistake_and_charges_nothing(sandbox, fields, errors):
    s = session(sandbox)
    form = {
        "name": "Ana",
        "card_number": "4242424242424242",
        "expiry": "12/34",
        "cvc": "123",
        **fields,
    }
    response = requests.post(s["url"], data=form, allow_redirects=False, timeout=5)
    assert response.status_code == 400
    for message in errors.values():
        assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert sandbox.api("GET", f"/v1/checkout/sessions/{s['id']}")[1]["status"] == "open"


@pytest.mark.parametrize(
    ("card", "final", "code"),
    [
        ("4242424242424242", "succeeded", None),
        ("5555555555554444", "succeeded", None),
        ("4000000000000002", "failed", "card_declined"),
        ("4000000000009995", "failed", "insufficient_funds"),
        ("4000000000000119", "failed", "processing_error"),
        ("4000000000001257", "succeeded", None),
        ("4000000000001265", "failed", "card_declined"),
    ],
)
def test_each_test_card_gives_its_result_by_signed_webhook(sandbox, receiver, card, final, code):
    s = session(sandbox)
    response = HostedPage(s["url"]).submit(card)
    assert response.status_code == 303 and response.headers["Location"].startswith(
        RETURN + "?session_id="
    )
    events = wait_for(
        lambda: (e := events_for(receiver, s["reference"])) and len(e) == 2 and e,
        what="the processing webhook and the result webhook",
    )
    assert [e["type"] for e in events] == ["payment.processing", f"payment.{final}"]
    assert events[1]["data"]["object"]["failure_code"] == code
    for raw in [
        r for r in receiver.received if json.loads(r["body"])["id"] in {e["id"] for e in events}
    ]:
        assert verify(raw["body"], raw["signature"], [SECRET], now=int(time.time())) > 0
    session_now = sandbox.api("GET", f"/v1/checkout/sessions/{s['id']}")[1]
    assert session_now["status"] == final
    assert session_now["payment"]["card"]["last4"] == card[-4:]


def test_webhooks_are_retried_with_growing_backoff_until_acknowledged(sandbox, receiver):
    receiver.failures.extend([500, 503, 500])
    s = session(sandbox)
    HostedPage(s["url"]).submit("4000000000000002")
    wait_for(
        lambda: len(events_for(receiver, s["reference"])) == 2,
        timeout=20,
        what="acknowledged deliveries",
    )
    tries = [
        r
        for r in receiver.received
        if r["status"] != 200
        or json.loads(r["body"])["data"]["object"].get("reference") == s["reference"]
    ]
    first_event = json.loads(tries[0]["body"])["id"]
    attempts = [r["at"] for r in tries if json.loads(r["body"])["id"] == first_event]
    assert len(attempts) >= 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.15 and gaps[-1] > gaps[0]  # 0.2 s, then 0.4 s, ...


def test_idempotency_keys_never_make_two_sessions_or_two_refunds(sandbox):
    first = session(sandbox, key="idem-1")
    again = session(sandbox, key="idem-1")
    assert first["id"] == again["id"]
    HostedPage(first["url"]).submit("4242424242424242")
    payment = sandbox.api("GET", f"/v1/checkout/sessions/{first['id']}")[1]["payment"]
    refunds = [
        sandbox.api(
            "POST",
            f"/v1/payments/{payment['id']}/refunds",
            {"amount": "2.00", "reference": "r1"},
            headers={"Idempotency-Key": "refund-1"},
        )
        for _ in range(3)
    ]
    assert len({body["id"] for _, body in refunds}) == 1
    assert len(sandbox.api("GET", f"/v1/payments/{payment['id']}")[1]["reversals"]) == 1
    status, body = sandbox.api("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": "41.00"})
    assert status == 400 and body["error"]["code"] == "amount_too_large"


def test_card_tokens_for_automatic_payments(sandbox):
    status, setup = sandbox.api(
        "POST", "/v1/setup/sessions", {"reference": "autopay:1", "return_url": RETURN}
    )
    assert status == 200
    response = HostedPage(setup["url"]).submit("4000000000009995", expiry="11/31")
    token = HostedPage.outcome(response)["card_token"]
    card = sandbox.api("GET", f"/v1/cards/{token}")[1]
    assert card == {
        "object": "card",
        "token": token,
        "brand": "visa",
        "last4": "9995",
        "exp_month": 11,
        "exp_year": 2031,
    }
    status, charge = sandbox.api(
        "POST",
        "/v1/charges",
        {"card_token": token, "amount": "10.00", "reference": "pay_x"},
        headers={"Idempotency-Key": "charge-1"},
    )
    assert (
        status == 200
        and charge["status"] == "failed"
        and charge["failure_code"] == "insufficient_funds"
    )
    status, again = sandbox.api(
        "POST",
        "/v1/charges",
        {"card_token": token, "amount": "10.00", "reference": "pay_x"},
        headers={"Idempotency-Key": "charge-1"},
    )
    assert again["id"] == charge["id"]
    status, body = sandbox.api("POST", "/v1/charges", {"card_token": "tok_nope", "amount": "1.00"})
    assert status == 400 and body["error"]["code"] == "no_such_card"


def test_a_restarted_sandbox_keeps_its_payments_and_delivers_what_it_owes(receiver, tmp_path):
    dead = f"http://127.0.0.1:{testing.free_port()}/nobody-home"
    first = Sandbox(tmp_path, dead, [])
    try:
        s = session(first)
        HostedPage(s["url"]).submit("4242424242424242")
        wait_for(
            lambda: any(d["attempts"] >= 1 for d in first.deliveries()), what="a failed delivery"
        )
    finally:
        first.stop()
    second = Sandbox(tmp_path, receiver.url, [])
    try:
        assert second.api("GET", f"/v1/checkout/sessions/{s['id']}")[1]["status"] == "succeeded"
        wait_for(
            lambda: len(events_for(receiver, s["reference"])) == 2,
            timeout=15,
            what="the owed webhooks",
        )
    finally:
        second.stop()
