"""Sustained checkouts completed per second, raising the load until p99 degrades.

One completed checkout: the bill goes into a cart, a payment session is opened, the
resident pays on the sandbox's hosted page, and payments reports the checkout paid (the
webhook came through the gateway stand-in). Closed-loop residents run for a while at each
level (1, 2, 4, ... at once); a level is degraded when its p99 is more than twice the
p99 of one resident alone. The sustained rate is the best rate of a level not degraded.
BENCH_LEVEL_SECONDS sets how long each level runs (default 20).
"""

from __future__ import annotations

import os
import time

import eventlet

from bench._payments_rig import issue_bills, payments_rig, percentile
from bench.payments_posting_latency import BILLING, RETURN
from tests.payments.standins import HostedPage

LEVELS = (1, 2, 4, 8, 16, 32)
DEGRADED = 2.0


def resident(rig, bills, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    with rig.client() as cluster:
        while time.time() < stop_at:
            bill = next(bills)
            owner = f"guest:tp-{bill}"
            started = time.time()
            try:
                cluster.payments.add_to_cart(owner, bill)
                checkout = cluster.payments.start_checkout(owner, f"k-{bill}", BILLING, RETURN)
                response = HostedPage(checkout["payment_url"]).submit("4242424242424242")
                if response.status_code != 303:
                    raise RuntimeError(f"hosted page answered {response.status_code}")
                while (
                    cluster.payments.get_checkout(owner, checkout["checkout_id"])["status"]
                    != "paid"
                ):
                    if time.time() - started > 30:
                        raise TimeoutError("not paid within 30 s")
                    eventlet.sleep(0.025)  # a browser polls far less often
            except Exception as exc:  # counted and reported, never hidden
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            latencies.append(time.time() - started)


def main() -> dict:
    seconds = float(os.environ.get("BENCH_LEVEL_SECONDS", "20"))
    levels = []
    with payments_rig() as rig:
        bills = iter(issue_bills(rig, int(os.environ.get("BENCH_BILLS", "4000"))))
        baseline = None
        for level in LEVELS:
            latencies: list[float] = []
            errors: list[str] = []
            stop_at = time.time() + seconds
            started = time.time()
            pool = eventlet.GreenPool(level)
            for _ in range(level):
                pool.spawn(resident, rig, bills, stop_at, latencies, errors)
            pool.waitall()
            elapsed = time.time() - started
            p99 = percentile(latencies, 99)
            baseline = baseline or p99
            row = {
                "residents": level,
                "completed": len(latencies),
                "per_second": round(len(latencies) / elapsed, 2),
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(p99 * 1000, 1),
                "errors": len(errors),
                "degraded": p99 > DEGRADED * baseline or bool(errors),
            }
            if errors:
                row["first_error"] = errors[0]
            print(row, flush=True)
            levels.append(row)
            if row["degraded"]:
                break
    sustained = max(
        (r for r in levels if not r["degraded"]), key=lambda r: r["per_second"], default=None
    )
    figures = {
        "levels": levels,
        "sustained_checkouts_per_second": sustained["per_second"] if sustained else None,
        "at_residents": sustained["residents"] if sustained else None,
        "degraded_when": f"p99 > {DEGRADED}x the p99 of one resident ({baseline * 1000:.0f} ms)",
        "setup": "payments (nameko run, PostgreSQL), sandbox and stand-ins each in their own "
        "process; bench clients in this one; 2-core machine shared with other work",
    }
    print({k: v for k, v in figures.items() if k != "levels"}, flush=True)
    return figures


if __name__ == "__main__":
    main()
