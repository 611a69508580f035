"""Browser test rig: the whole portal (tests/stack.py) driven by Debian's headless chromium.

Provides:
- ``stack``: every service, the gateway, the processor sandbox and a test SMTP server, as
  real processes, once for the module.
- ``scenario``: runs one journey of ``tests/browser/scenarios.py`` in a process of its
  own (Playwright's sync API stalls under the eventlet patching of this process),
  driving /usr/bin/chromium (never downloaded). Each step is screenshotted under
  var/screenshots/<test>/ and checked with axe-core (no serious or critical
  violations); a page error or Content-Security-Policy violation fails it.
- ``new_account``: a utility account of its own for a test (imported with
  ``muniportal-ops import customers`` and ``import bills``, as staff would).

Nothing is faked: the browser talks to the real gateway, which talks to the services
over RabbitMQ; payments go through the processor sandbox's hosted page.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.stack import BIN, ROOT, stack_fixture

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "var" / "screenshots"
# Module scope: the stack stops when the browser tests end, before the next module starts
# its own (two whole stacks at once strain a 2-core machine and PostgreSQL's connections).
stack = stack_fixture(scope="module")


@pytest.fixture
def scenario(stack, request, tmp_path):
    """scenario(name, **config): run one journey in its own browser process; fail on error."""

    def run(name: str, timeout: float = 240, **config: Any) -> str:
        if not CHROMIUM.exists():
            pytest.fail(
                "chromium is missing: install Debian's package (apt-get install chromium); "
                "the browser tests never download one",
                pytrace=False,
            )
        folder = SCREENSHOTS / request.node.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        assert stack.smtp is not None
        cfg = {
            "base_url": stack.base_url,
            "smtp_dir": str(stack.smtp.directory),
            "folder": str(folder),
            **config,
        }
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(cfg, default=vars))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "tests.browser.scenarios", name, str(path)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"scenario {name} took over {timeout:g}s:\n{exc.stdout}\n{exc.stderr}")
        if done.returncode != 0:
            pytest.fail(
                f"scenario {name} failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}",
                pytrace=False,
            )
        return done.stdout

    return run


# -- data of a test's own -------------------------------------------------------------------


@dataclass
class Account:
    account_number: str
    customer_id: str
    customer_name: str
    bills: dict[str, str]  # bill number -> amount due


def _ops(stack, *args: str) -> None:
    done = subprocess.run(
        [str(BIN / "muniportal-ops"), *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"muniportal-ops {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        )


CUSTOMER_COLUMNS = (
    "customer_id,customer_name,mailing_line1,mailing_line2,mailing_city,mailing_state,"
    "mailing_zip,email,account_number,account_status,cycle,service_address,service_city,"
    "service_state,service_zip,parcel_id,service_code,service_name,service_start,"
    "service_stop,service_status,meter_number,meter_size"
).split(",")
BILL_COLUMNS = (
    "bill_number,row_type,bill_type,account_number,customer_id,customer_name,service_address,"
    "cycle,statement_date,due_date,previous_balance,late_penalty,service_code,meter_number,"
    "previous_read_date,read_date,previous_reading,reading,usage_units,read_type,description,"
    "amount,date,reference"
).split(",")


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def _quick_pay_sees(stack, account: Account) -> bool:
    # A made-up client address per poll: the lookups must not trip the per-IP throttle.
    response = requests.post(
        f"{stack.base_url}/api/v1/quick-pay/lookups",
        json={"account_number": account.account_number, "customer_id": account.customer_id},
        headers={"X-Forwarded-For": f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.7"},
        timeout=10,
    )
    if response.status_code != 200:
        return False
    bills = {b["bill_number"] for b in response.json().get("bills", [])}
    return set(account.bills) <= bills


@pytest.fixture
def new_account(stack, tmp_path):
    """new_account(amounts=["80.25", ...]): a fresh utility account with open bills."""

    def make(amounts: tuple[str, ...] = ("80.25",)) -> Account:
        n = random.randint(100000, 999999)
        account = Account(
            account_number=f"7{n}",
            customer_id=f"9{n}",
            customer_name=f"RESIDENT {uuid.uuid4().hex[:6].upper()}",
            bills={f"6{n}{i}": amount for i, amount in enumerate(amounts)},
        )
        today = dt.date.today()
        address = f"{n % 9000 + 100} TEST ST"
        _write_csv(
            tmp_path / f"customers-{n}.csv",
            CUSTOMER_COLUMNS,
            [
                {
                    "customer_id": account.customer_id,
                    "customer_name": account.customer_name,
                    "mailing_line1": address,
                    "mailing_city": "PLEASANTON",
                    "mailing_state": "CA",
                    "mailing_zip": "94566",
                    "account_number": account.account_number,
                    "account_status": "ACTIVE",
                    "cycle": "T",
                    "service_address": address,
                    "service_city": "PLEASANTON",
                    "service_state": "CA",
                    "service_zip": "94566",
                    "service_code": "10000",
                    "service_name": "PLEASANTON WATER FIXED CHARGE",
                    "service_start": "2020-01-01",
                    "service_status": "ACTIVE",
                    "meter_number": f"M{n}",
                    "meter_size": "3/4",
                }
            ],
        )
        rows = []
        for number, amount in account.bills.items():
            rows.append(
                {
                    "bill_number": number,
                    "row_type": "bill",
                    "bill_type": "UTILITY",
                    "account_number": account.account_number,
                    "customer_id": account.customer_id,
                    "customer_name": account.customer_name,
                    "service_address": address,
                    "cycle": "T",
                    "statement_date": (today - dt.timedelta(days=5)).isoformat(),
                    "due_date": (today + dt.timedelta(days=25)).isoformat(),
                    "previous_balance": "0.00",
                    "late_penalty": "no",
                }
            )
            rows.append(
                {
                    "bill_number": number,
                    "row_type": "charge",
                    "description": "PLEASANTON WATER FIXED CHARGE",
                    "amount": amount,
                }
            )
        _write_csv(tmp_path / f"bills-{n}.csv", BILL_COLUMNS, rows)
        _ops(stack, "import", "customers", str(tmp_path / f"customers-{n}.csv"))
        _ops(stack, "import", "bills", str(tmp_path / f"bills-{n}.csv"))
        deadline = time.monotonic() + 30
        while not _quick_pay_sees(stack, account):
            if time.monotonic() > deadline:
                raise AssertionError(f"account {account.account_number} never became payable")
            time.sleep(0.5)
        return account

    return make
