"""`muniportal-ops import bills FILE`: bills issued by an outside billing system.

Format (docs/billing.md): rows of five types grouped by bill number: one
``bill`` row (who, when), ``read`` rows (meter reads), ``charge`` and ``memo``
rows (the bill's lines, in order) and ``payment`` rows (payments the outside
system already posted). The whole file is checked first; any bad row rejects
it, with every error listed, and nothing is stored. Imported bills emit the
same events as a billing run (BillIssued, then BillBalanceChanged for posted
payments). Importing the same bill again is skipped; a different bill under an
existing number is an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.billing import projections as p
from services.billing.csvfile import Errors, field, read_file, rows
from services.billing.domain.bill import Bill
from services.billing.domain.values import (
    ZERO,
    money_str,
    parse_date,
    parse_money,
    units_str,
)
from services.billing.import_reads import _identifier, _read_type, _reading
from services.billing.schedule import Schedule
from shared.events import NewEvent, validate_data
from shared.uow import ServiceStore

REQUIRED = ("bill_number", "row_type")
COLUMNS = {
    "bill": (
        "bill_type",
        "account_number",
        "customer_id",
        "customer_name",
        "service_address",
        "cycle",
        "statement_date",
        "due_date",
        "previous_balance",
        "late_penalty",
    ),
    "read": (
        "service_code",
        "meter_number",
        "previous_read_date",
        "read_date",
        "previous_reading",
        "reading",
        "usage_units",
        "read_type",
    ),
    "charge": ("description", "amount", "service_code"),
    "memo": ("description", "service_code"),
    "payment": ("amount", "date", "reference"),
}
OPTIONAL = tuple(dict.fromkeys(c for cols in COLUMNS.values() for c in cols))
CHUNK = 200
YES = {
    "yes": True,
    "y": True,
    "true": True,
    "1": True,
    "no": False,
    "n": False,
    "false": False,
    "0": False,
}


def _bool(value: str) -> bool:
    try:
        return YES[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not yes or no") from None


def _text(limit: int):
    def parse(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return parse


def _bill_type(value: str) -> str:
    text = value.upper()
    if len(text) > 30 or not text.replace("_", "").replace("-", "").replace(" ", "").isalnum():
        raise ValueError(f"{value!r} is not a bill type (e.g. UTILITY, CLAIMS)")
    return text


def _amount(value: str) -> Decimal:
    return parse_money(value)


def import_bills(
    store: ServiceStore,
    path: str | Path,
    *,
    schedule: Schedule,
    actor: str = "system",
    dry_run: bool = False,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Check every row, then issue the new bills; returns counts."""
    filename = Path(path).name
    content, digest = read_file(path)
    import_id = f"bills-{digest}"
    parsed = rows(content, filename, required=REQUIRED, optional=OPTIONAL)
    today = today or schedule.today()
    errors = Errors()
    groups: dict[str, dict[str, Any]] = {}
    for line, row in parsed:
        number = field(errors, line, row, "bill_number", _identifier, required=True)
        kind = row.get("row_type", "").lower()
        if kind not in COLUMNS:
            errors.add(
                line, "row_type", f"{row.get('row_type')!r} is not one of {', '.join(COLUMNS)}"
            )
            continue
        stray = [c for c, v in row.items() if v and c not in REQUIRED and c not in COLUMNS[kind]]
        if stray:
            errors.add(line, None, f"a {kind} row does not use column(s) {', '.join(stray)}")
        if number is None:
            continue
        group = groups.setdefault(number, {"bill": [], "read": [], "lines": [], "payment": []})
        if kind == "bill":
            group["bill"].append((line, row))
        elif kind == "read":
            group["read"].append((line, row))
        elif kind in ("charge", "memo"):
            group["lines"].append((line, kind, row))
        else:
            group["payment"].append((line, row))
    statement = schedule.statement_block()
    bills: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []
    for number, group in groups.items():
        built = _build(number, group, errors, schedule, statement, today)
        if built is not None:
            bills.append(built)
    with store.read() as conn:
        existing = _existing(conn, [data["bill_number"] for _, data, _ in bills])
    new = []
    skipped = []
    for line, data, payments in bills:
        known = existing.get(data["bill_number"])
        if known is None:
            new.append((data, payments))
        elif known == data["fingerprint"]:
            skipped.append(data["bill_number"])
        else:
            errors.add(
                line, "bill_number", f"bill {data['bill_number']} already exists with other figures"
            )
    if errors:
        raise errors.reject(filename, "rows are")
    result = {
        "file": filename,
        "import_id": import_id,
        "bills": len(bills),
        "issued": len(new),
        "skipped": len(skipped),
        "dry_run": dry_run,
    }
    if dry_run or not new:
        return result
    stream = f"billimport-{digest}"
    for start in range(0, len(new), CHUNK):
        chunk = new[start : start + CHUNK]

        def work(
            uow: Any, chunk: list[tuple[dict[str, Any], list[dict[str, Any]]]] = chunk
        ) -> None:
            for data, payments in chunk:
                bill = uow.add(Bill(data["bill_number"]))
                bill.issue({**data, "import_id": import_id})
                for payment in payments:
                    bill.apply_payment(
                        payment["amount"],
                        payment_id=payment["payment_id"],
                        posted_on=payment["date"],
                        reason="legacy_payment",
                    )
            version = uow.store.events.stream_version(stream, conn=uow.conn)
            uow.append(
                stream,
                [
                    NewEvent(
                        "BillsImported",
                        validate_data(
                            "BillsImported",
                            {
                                "import_id": import_id,
                                "filename": filename,
                                "bills": [d["bill_number"] for d, _ in chunk],
                                "skipped": skipped if version == 0 else [],
                            },
                        ),
                    )
                ],
                version,
            )

        store.run(work, actor=actor, correlation_id=f"import:{import_id}")
    return result


def _existing(conn: Any, numbers: list[str]) -> dict[str, str | None]:
    b = p.bills
    out: dict[str, str | None] = {}
    for i in range(0, len(numbers), 900):
        chunk = numbers[i : i + 900]
        for number, fingerprint in conn.execute(
            sa.select(b.c.bill_number, b.c.fingerprint).where(b.c.bill_number.in_(chunk))
        ):
            out[number] = fingerprint
    return out


def _build(
    number: str,
    group: dict[str, Any],
    errors: Errors,
    schedule: Schedule,
    statement: dict[str, Any],
    today: dt.date,
) -> tuple[int, dict[str, Any], list[dict[str, Any]]] | None:
    heads = group["bill"]
    first_line = min(
        [ln for ln, _ in heads]
        + [ln for ln, _ in group["read"]]
        + [ln for ln, _, _ in group["lines"]]
        + [ln for ln, _ in group["payment"]]
    )
    if len(heads) > 1:
        errors.add(
            heads[1][0],
            "row_type",
            f"bill {number} has a second bill row (first on line {heads[0][0]})",
        )
    before = len(errors.items)
    if heads:
        line, head = heads[0]
    else:
        # Still check the bill's other rows, so that every error is reported at once.
        errors.add(first_line, "bill_number", f"bill {number} has no bill row")
        line, head = first_line, {"customer_id": "-", "customer_name": "-"}
    bill_type = field(errors, line, head, "bill_type", _bill_type, required=False) or "UTILITY"
    utility = bill_type == "UTILITY"
    account = field(
        errors, line, head, "account_number", _identifier, required=utility and bool(heads)
    )
    customer = field(errors, line, head, "customer_id", _identifier, required=True)
    name = field(errors, line, head, "customer_name", _text(200), required=True)
    address = field(errors, line, head, "service_address", _text(300), required=False)
    cycle = field(errors, line, head, "cycle", _text(20), required=False)
    statement_date = field(errors, line, head, "statement_date", parse_date, required=bool(heads))
    due_date = field(errors, line, head, "due_date", parse_date, required=bool(heads))
    previous_balance = (
        field(errors, line, head, "previous_balance", _amount, required=False) or ZERO
    )
    late_penalty = field(errors, line, head, "late_penalty", _bool, required=False) or False
    if statement_date and statement_date > today:
        errors.add(line, "statement_date", f"{statement_date} is after today ({today})")
    if statement_date and statement_date.year < 1950:
        errors.add(line, "statement_date", f"{statement_date} is before 1950")
    if statement_date and due_date and due_date < statement_date:
        errors.add(line, "due_date", f"{due_date} is before the statement date {statement_date}")

    reads = []
    if group["read"] and not utility:
        errors.add(group["read"][0][0], "row_type", f"a {bill_type} bill has no meter reads")
    for rline, row in group["read"]:
        read = _read(errors, rline, row, statement_date)
        if read is not None:
            reads.append(read)

    lines = []
    total = ZERO
    for lline, kind, row in group["lines"]:
        description = field(errors, lline, row, "description", _text(200), required=True)
        code = field(errors, lline, row, "service_code", _identifier, required=False)
        if kind == "charge":
            amount = field(errors, lline, row, "amount", _amount, required=True)
            if amount is not None:
                total += amount
            lines.append(
                {
                    "description": description,
                    "amount": None if amount is None else money_str(amount),
                    "service_code": code,
                }
            )
        else:
            lines.append({"description": description, "amount": None, "service_code": code})
    if not any(kind == "charge" for _, kind, _ in group["lines"]):
        errors.add(line, "bill_number", f"bill {number} has no charge rows")
    if total < 0:
        errors.add(line, "bill_number", f"bill {number} totals {money_str(total)}, less than zero")

    payments = []
    paid = ZERO
    for i, (pline, row) in enumerate(group["payment"], start=1):
        amount = field(errors, pline, row, "amount", _amount, required=True)
        date = field(errors, pline, row, "date", parse_date, required=True)
        reference = field(errors, pline, row, "reference", _text(40), required=False)
        if amount is not None and amount <= 0:
            errors.add(pline, "amount", "must be more than zero")
        if date and statement_date and date < statement_date:
            errors.add(pline, "date", f"{date} is before the statement date {statement_date}")
        if date and date > today:
            errors.add(pline, "date", f"{date} is after today ({today})")
        if amount is not None and amount > 0 and date:
            paid += amount
            payments.append(
                {"amount": amount, "date": date, "payment_id": f"legacy-{number}-{reference or i}"}
            )
    if paid > total >= 0:
        errors.add(
            group["payment"][-1][0],
            "amount",
            f"payments {money_str(paid)} are more than the bill's total {money_str(total)}",
        )
    if not heads or len(heads) > 1 or len(errors.items) > before:
        return None
    if statement_date is None or due_date is None:
        return None
    data = {
        "bill_number": number,
        "kind": "utility" if utility else "general",
        "bill_type": bill_type,
        "description": "Utilities" if utility else bill_type,
        "account_number": account,
        "customer_id": customer,
        "customer_name": name,
        "service_address": address,
        "cycle": cycle,
        "statement_date": statement_date.isoformat(),
        "due_date": due_date.isoformat(),
        "bill_year": schedule.bill_year(statement_date),
        "reads": reads,
        "lines": lines,
        "previous_balance": money_str(previous_balance),
        "payments": "0.00",
        "penalty": "0.00",
        "total": money_str(total),
        "balance_due": money_str(total),
        "late_penalty": late_penalty,
        "issued_via": "import",
        "run_id": None,
    }
    canonical = json.dumps(
        {
            **data,
            "payments_posted": [[money_str(x["amount"]), x["date"].isoformat()] for x in payments],
        },
        sort_keys=True,
    )
    data["fingerprint"] = hashlib.sha256(canonical.encode()).hexdigest()
    data["statement"] = statement
    return line, data, payments


def _read(
    errors: Errors, line: int, row: dict[str, str], statement_date: dt.date | None
) -> dict[str, Any] | None:
    before = len(errors.items)
    code = field(errors, line, row, "service_code", _identifier, required=True)
    meter = field(errors, line, row, "meter_number", _identifier, required=True)
    prev_date = field(errors, line, row, "previous_read_date", parse_date, required=True)
    date = field(errors, line, row, "read_date", parse_date, required=True)
    prev = field(errors, line, row, "previous_reading", _reading, required=True)
    reading = field(errors, line, row, "reading", _reading, required=True)
    usage = field(errors, line, row, "usage_units", _reading, required=False)
    read_type = field(errors, line, row, "read_type", _read_type, required=False) or "actual"
    if prev_date and date and prev_date >= date:
        errors.add(line, "read_date", f"{date} must be after the previous read date {prev_date}")
    if date and statement_date and date > statement_date:
        errors.add(line, "read_date", f"{date} is after the statement date {statement_date}")
    if usage is None and reading is not None and prev is not None:
        usage = reading - prev
        if usage < 0:
            errors.add(
                line,
                "reading",
                f"{units_str(reading)} is less than the previous reading {units_str(prev)}; "
                "give usage_units if the meter was replaced",
            )
    if len(errors.items) > before:
        return None
    return {
        "service_code": code,
        "meter_number": meter,
        "previous_read_date": prev_date.isoformat(),
        "read_date": date.isoformat(),
        "previous_reading": units_str(prev),
        "reading": units_str(reading),
        "usage_units": units_str(usage),
        "read_type": read_type,
    }
