"""Payment posting latency: from the processor's webhook to the new balance being readable.

Runs on the whole portal as real processes (tests/stack.py: every service, the gateway,
the processor sandbox; SQLite stores, the stack's default). The bills are imported
first, in bulk (`Stack.issue_bills`, spread over the demo accounts). Then, for each
payment, a quick-pay guest looks up the account, puts one bill in the cart, checks out
and pays on the sandbox's hosted page with an approved test card, exactly as a browser
does. The sandbox sends the signed `payment.succeeded` webhook to the gateway, which
hands it to payments; billing posts the payment and publishes the new balance; the
gateway drops its cached reads on those events.

t0 is when the sandbox starts sending the webhook (its own record, `first_sent_at` in
`GET /sandbox/webhooks`, same machine clock); t1 is the first `GET /api/v1/bills/{n}`
through the gateway, polled every 5 ms from the moment the pay form's submit returns,
whose `balance_due` is 0.00. The time from the submit returning is reported too.

Target: p99 < 1 s. BENCH_PAYMENTS sets the count (default 1000); BENCH_SECONDS (default
240) stops starting payments after that long, and the figures then say how many ran.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
import uuid
from typing import Any

import eventlet
import requests

from bench.common import percentile
from tests.payments.standins import HostedPage
from tests.stack import DEMO_ACCOUNTS, Stack

BILLING = {
    "name": "Bench Resident",
    "address": "1 Main St",
    "city": "Pleasanton",
    "state": "CA",
    "zip": "94566",
    "email": "bench@example.test",
}
CONCURRENCY = 2
POLL_SECONDS = 0.005
TIMEOUT_SECONDS = 30
AMOUNT = "50.00"
_addresses = itertools.count(1)


class Guest:
    """A quick-pay guest at the gateway: cookies, CSRF header, an address of its own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        n = next(_addresses)
        # The stack trusts X-Forwarded-For; an address per guest keeps throttles apart.
        self.http.headers["X-Forwarded-For"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        csrf = self.http.cookies.get("mp_csrf")
        if csrf and method != "GET":
            headers.setdefault("X-CSRF-Token", csrf)
        return self.http.request(
            method, self.base_url + path, json=body, headers=headers, timeout=30
        )

    def lookup(self, account: str) -> dict:
        response = self.call(
            "POST",
            "/api/v1/quick-pay/lookups",
            {"account_number": account, "customer_id": DEMO_ACCOUNTS[account]},
        )
        if response.status_code != 200:
            raise RuntimeError(f"quick-pay lookup of {account}: {response.text[:300]}")
        return response.json()


def issue(stack: Stack, count: int) -> list[tuple[str, str]]:
    """Import `count` bills over the demo accounts; (account, bill) once quick pay sees all."""
    accounts = list(DEMO_ACCOUNTS)
    per_account: list[list[tuple[str, str]]] = []
    for i, account in enumerate(accounts):
        n = count // len(accounts) + (i < count % len(accounts))
        if n:
            per_account.append([(account, b) for b in stack.issue_bills(account, *[AMOUNT] * n)])
    bills = [b for group in per_account for b in group]
    deadline = time.time() + 180
    for account in accounts:
        wanted = {b for a, b in bills if a == account}
        while not wanted <= {
            b["bill_number"] for b in Guest(stack.base_url).lookup(account)["bills"]
        }:
            if time.time() > deadline:
                raise TimeoutError(f"the bills of account {account} not seen in quick pay")
            time.sleep(0.5)
    # Interleave the accounts, as residents' payments would be.
    return [b for row in itertools.zip_longest(*per_account) for b in row if b]


def pay_and_watch(stack: Stack, bill: tuple[str, str], out: list[dict]) -> None:
    account, number = bill
    guest = Guest(stack.base_url)
    guest.lookup(account)
    added = guest.call("POST", "/api/v1/cart/items", {"bill_number": number})
    if added.status_code != 201:
        raise RuntimeError(f"cart add of bill {number}: {added.text[:300]}")
    response = guest.call(
        "POST",
        "/api/v1/checkouts",
        {"billing": BILLING},
        **{"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"checkout of bill {number}: {response.text[:300]}")
    page = HostedPage(response.json()["payment_url"])
    submitted = page.submit("4242424242424242")
    submitted_at = time.time()
    if submitted.status_code != 303 or HostedPage.outcome(submitted)["status"] != "succeeded":
        raise RuntimeError(f"hosted page for bill {number}: {submitted.status_code}")
    session_id = HostedPage.outcome(submitted)["session_id"]
    deadline = submitted_at + TIMEOUT_SECONDS
    while True:
        seen = guest.call("GET", f"/api/v1/bills/{number}")
        if seen.status_code == 200 and seen.json()["balance_due"] == "0.00":
            break
        if time.time() > deadline:
            # Counted as a payment whose balance was never seen (latency > the timeout).
            out.append(
                {
                    "bill": number,
                    "session_id": session_id,
                    "submitted": submitted_at,
                    "posted_seen": None,
                    "last_answer": f"{seen.status_code} {seen.text[:200]}",
                }
            )
            return
        eventlet.sleep(POLL_SECONDS)
    out.append(
        {
            "bill": number,
            "session_id": session_id,
            "submitted": submitted_at,
            "posted_seen": time.time(),
        }
    )


def worker(
    stack: Stack, queue: list[tuple[str, str]], stop_at: float, out: list[dict], errors: list[str]
) -> None:
    while queue and time.time() < stop_at:
        bill = queue.pop(0)
        try:
            pay_and_watch(stack, bill, out)
        except Exception as exc:  # a payment that could not be made is reported, not fatal
            errors.append(f"bill {bill[1]}: {exc!r}"[:300])


def webhook(stack: Stack, session_id: str) -> dict:
    """The sandbox's record of the payment.succeeded delivery for a checkout session."""
    session = stack.sandbox("GET", f"/v1/checkout/sessions/{session_id}")
    body = stack.sandbox("GET", f"/sandbox/webhooks?payment_id={session['payment']['id']}")
    found = [d for d in body["deliveries"] if d["type"] == "payment.succeeded"]
    return found[0] if found else {"status": "no payment.succeeded delivery"}


def summary(values: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
    }


def shown(figures: dict, values: list[float]) -> dict:
    seen = [v for v in values if v != float("inf")]
    out = {k: (v if v != float("inf") else "not seen") for k, v in figures.items()}
    if len(seen) < len(values) and seen:
        out["max_of_seen_ms"] = round(max(seen), 1)
    return out


def main() -> dict:
    count = int(os.environ.get("BENCH_PAYMENTS", "1000"))
    budget = float(os.environ.get("BENCH_SECONDS", "240"))
    stack = Stack(env={"THROTTLE_QUICKPAY": "1000000/600"})
    ok = False
    results: list[dict] = []
    try:
        stack.start()
        bills = issue(stack, count)
        errors: list[str] = []
        started = time.time()
        pool = eventlet.GreenPool(CONCURRENCY)
        for _ in range(CONCURRENCY):
            pool.spawn(worker, stack, bills, started + budget, results, errors)
        pool.waitall()
        elapsed = time.time() - started
        to_balance, from_submit, not_seen = [], [], []
        for r in results:
            delivery = webhook(stack, r["session_id"])
            if r["posted_seen"] is None:
                # Never seen: at the top of the distribution, whatever the cause.
                to_balance.append(float("inf"))
                from_submit.append(float("inf"))
                keep = (
                    "status",
                    "attempts",
                    "first_sent_at",
                    "delivered_at",
                    "last_code",
                    "last_error",
                )
                not_seen.append(
                    {
                        "bill": r["bill"],
                        "last_gateway_answer": r["last_answer"],
                        "webhook": {k: delivery.get(k) for k in keep if k in delivery},
                    }
                )
                continue
            to_balance.append((r["posted_seen"] - delivery["first_sent_at"]) * 1000)
            from_submit.append((r["posted_seen"] - r["submitted"]) * 1000)
        ok = not errors and not not_seen
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(stack.directory, ignore_errors=True)
        else:
            print(f"stack logs kept in {stack.directory / 'logs'}", flush=True)

    figures = {
        "payments": len(results),
        "payments_planned": count,
        "reduced": (
            f"stopped after the {budget:g} s budget: {len(results)} of {count} payments"
            if len(results) + len(errors) < count
            else None
        ),
        f"balance_not_seen_within_{TIMEOUT_SECONDS}s": len(not_seen),
        "not_seen_examples": not_seen[:5],
        "payments_that_failed_before_paying": len(errors),
        "error_examples": errors[:5],
        "stack_logs": None if ok else str(stack.directory / "logs"),
        "concurrency": CONCURRENCY,
        "stores": "SQLite (the stack's default)",
        "measured": "real stack: sandbox starts sending payment.succeeded (its first_sent_at) "
        "-> gateway webhook route -> payments -> RabbitMQ -> billing posts it -> gateway cache "
        "invalidated -> first GET /api/v1/bills/{n} (polled every 5 ms) with balance_due 0.00",
        "webhook_to_balance": shown(summary(to_balance), to_balance),
        "submit_return_to_balance": shown(summary(from_submit), from_submit),
        "target_p99_ms": 1000,
        "target_met": percentile(to_balance, 99) < 1000,
        "wall_seconds": round(elapsed, 1),
    }
    print(figures, flush=True)
    return figures


if __name__ == "__main__":
    main()
