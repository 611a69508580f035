"""Payment posting latency: from the processor's webhook to the new balance being readable.

For each of 1,000 payments a resident pays a bill on the sandbox's hosted page; the sandbox
sends the signed `payment.succeeded` webhook; the clock starts when the sandbox starts
sending it (its own record, same machine clock) and stops when the bill's new balance can
be read over RPC. Until the gateway and billing are in main, the webhook goes through the
gateway stand-in (HTTP -> payments.handle_webhook) and the balance is billing stand-in's
(`bill_brief`), which posts `PaymentSucceeded` from RabbitMQ like billing does. The time
to the receipt being readable from payments (`get_checkout` says paid) is reported too.

Target: p99 < 1 s. BENCH_PAYMENTS sets the count (default 1000).
"""

from __future__ import annotations

import os
import time

import eventlet

from bench._payments_rig import issue_bills, payments_rig, percentile
from tests.payments.standins import HostedPage

BILLING = {
    "name": "Bench Resident",
    "address": "1 Main St",
    "city": "Pleasanton",
    "state": "CA",
    "zip": "94566",
    "email": "bench@example.test",
}
RETURN = "https://portal.example.test/return"
CONCURRENCY = 2


def pay_and_watch(rig, bills: list[str], out: list[dict]) -> None:
    with rig.client() as cluster:
        for bill in bills:
            owner = f"guest:bench-{bill}"
            cluster.payments.add_to_cart(owner, bill)
            checkout = cluster.payments.start_checkout(owner, f"key-{bill}", BILLING, RETURN)
            response = HostedPage(checkout["payment_url"]).submit("4242424242424242")
            assert response.status_code == 303, response.text[:300]
            deadline = time.time() + 30
            # Poll every 10 ms: finer would load the services we are measuring.
            while cluster.payments.get_checkout(owner, checkout["checkout_id"])["status"] != "paid":
                if time.time() > deadline:
                    raise TimeoutError(f"payment for bill {bill} not seen")
                eventlet.sleep(0.01)
            paid_at = time.time()
            while cluster.billing_standin.bill_brief(bill)["balance_due"] != "0.00":
                if time.time() > deadline:
                    raise TimeoutError(f"posting for bill {bill} not seen")
                eventlet.sleep(0.01)
            posted_at = time.time()
            out.append(
                {
                    "bill": bill,
                    "session_id": checkout["payment_url"].rsplit("/", 1)[1],
                    "paid_seen": paid_at,
                    "posted_seen": posted_at,
                }
            )


def main() -> dict:
    count = int(os.environ.get("BENCH_PAYMENTS", "1000"))
    with payments_rig() as rig:
        bills = issue_bills(rig, count)
        results: list[dict] = []
        started = time.time()
        pool = eventlet.GreenPool(CONCURRENCY)
        for i in range(CONCURRENCY):
            pool.spawn(pay_and_watch, rig, bills[i::CONCURRENCY], results)
        pool.waitall()
        elapsed = time.time() - started
        to_balance, to_receipt = [], []
        for r in results:
            _, session = rig.sandbox.api("GET", f"/v1/checkout/sessions/{r['session_id']}")
            pid = session["payment"]["id"]
            _, body = rig.sandbox.api("GET", f"/sandbox/webhooks?payment_id={pid}")
            (sent,) = [
                d["first_sent_at"] for d in body["deliveries"] if d["type"] == "payment.succeeded"
            ]
            to_balance.append((r["posted_seen"] - sent) * 1000)
            to_receipt.append((r["paid_seen"] - sent) * 1000)

    def summary(values: list[float]) -> dict:
        return {
            "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1),
        }

    figures = {
        "payments": len(results),
        "concurrency": CONCURRENCY,
        "measured": "sandbox sends payment.succeeded -> gateway stand-in -> payments -> RabbitMQ "
        "-> billing stand-in posts it -> balance read over RPC (billing_standin.bill_brief); "
        "the gateway and billing are not in main yet",
        "webhook_to_balance": summary(to_balance),
        "webhook_to_receipt": summary(to_receipt),
        "target_p99_ms": 1000,
        "target_met": percentile(to_balance, 99) < 1000,
        "wall_seconds": round(elapsed, 1),
    }
    print(figures, flush=True)
    return figures


if __name__ == "__main__":
    main()
