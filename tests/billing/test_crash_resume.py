"""A billing run killed with SIGKILL mid-run, then run again: no duplicate bill, none missing."""

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.billing import projections as p
from services.billing.run import SEQUENCE_STREAM, run_id_for
from shared.testing import wait_for
from tests.billing.conftest import account_imported, deliver, unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OPS = str(Path(sys.executable).with_name("muniportal-ops"))
ACCOUNTS = 48


def flat_fee_services():
    return [
        {
            "code": "20000",
            "name": "SEWER",
            "start_date": "1990-01-01",
            "stop_date": None,
            "status": "ACTIVE",
        }
    ]


def run_state(store, run_id):
    with store.read() as conn:
        row = conn.execute(sa.select(p.runs).where(p.runs.c.run_id == run_id)).mappings().first()
        bills = conn.execute(
            sa.select(p.bills.c.account_number, p.bills.c.bill_number_int).where(
                p.bills.c.run_id == run_id
            )
        ).all()
        issued = conn.execute(
            sa.text(
                "SELECT count(*) FROM events WHERE type = 'BillIssued' AND data->>'run_id' = :r"
            ),
            {"r": run_id},
        ).scalar_one()
    return row, bills, issued


def start_run(pg_url, cycle, *extra):
    env = {**os.environ, "BILLING_DATABASE_URL": pg_url, "PYTHONWARNINGS": "ignore"}
    argv = [
        OPS,
        "billing-run",
        "--cycle",
        cycle,
        "--statement-date",
        "2026-11-01",
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_killed_run_resumes_without_duplicates_or_gaps(pg_store, pg_url, schedule):
    cycle = unique("k")
    accounts = sorted(unique() for _ in range(ACCOUNTS))
    for account in accounts:
        deliver(
            pg_store,
            account_imported(account, "1", cycle=cycle, services=flat_fee_services()),
            schedule,
        )
    run_id = run_id_for(cycle, dt.date(2026, 11, 1))

    billed_at_kill = []
    for batches_before_kill in (2, 5):
        proc = start_run(pg_url, cycle, "--batch-size", "4", "--pause", "0.2")
        try:
            wait_for(
                lambda n=batches_before_kill: (
                    (run_state(pg_store, run_id)[0] or {}).get("batches", 0) >= n
                ),
                timeout=60,
                what=f"{batches_before_kill} batches of the run",
            )
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # no clean-up, no finally blocks: a crash
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        row, bills, issued = run_state(pg_store, run_id)
        assert row["status"] == "running"
        # What committed is whole: every bill the run counted, and no other.
        assert len(bills) == issued == row["billed"] < ACCOUNTS
        billed_at_kill.append(row["billed"])
    assert billed_at_kill[1] > billed_at_kill[0]

    proc = start_run(pg_url, cycle, "--batch-size", "7")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resumed and completed" in out

    row, bills, issued = run_state(pg_store, run_id)
    assert row["status"] == "completed"
    assert issued == len(bills) == row["billed"] == ACCOUNTS
    assert sorted(a for a, _ in bills) == accounts  # every account, once
    numbers = sorted(n for _, n in bills)
    assert numbers == list(range(numbers[0], numbers[0] + ACCOUNTS))  # no gap, no repeat
    # Bills are numbered in account order, across the crashes.
    assert [a for a, _ in sorted(bills, key=lambda b: b[1])] == accounts
    with pg_store.read() as conn:
        last = conn.execute(
            sa.select(p.sequences.c.last_value).where(p.sequences.c.name == SEQUENCE_STREAM)
        ).scalar_one()
    assert last == numbers[-1]

    proc = start_run(pg_url, cycle)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "already completed" in out
    assert run_state(pg_store, run_id)[2] == ACCOUNTS
