"""Reading the customers CSV (docs/import-formats.md) into an import plan.

The file is flat: one row per service of a utility account, with the
customer's and the account's columns repeated on each row. A row with no
`service_code` is an account without services on that row; a row with no
`account_number` is a customer without utility accounts (general billing).

Parsing is pure: it never touches the store. Every bad row is reported as
``file:line: reason``. A bad row holds back its account (and a bad customer
value its customer with all its accounts), because an account loaded with a
service missing would be billed wrong; every other row loads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.accounts.domain import values as v
from services.accounts.domain.identifiers import parse_identifier
from shared.errors import InvalidInput

CUSTOMER_COLUMNS = (
    "customer_id",
    "customer_name",
    "mailing_line1",
    "mailing_line2",
    "mailing_city",
    "mailing_state",
    "mailing_zip",
    "email",
)
ACCOUNT_COLUMNS = (
    "account_number",
    "account_status",
    "cycle",
    "service_address",
    "service_city",
    "service_state",
    "service_zip",
    "parcel_id",
)
SERVICE_COLUMNS = (
    "service_code",
    "service_name",
    "service_start",
    "service_stop",
    "service_status",
    "meter_number",
    "meter_size",
)
COLUMNS = CUSTOMER_COLUMNS + ACCOUNT_COLUMNS + SERVICE_COLUMNS
REQUIRED_COLUMNS = (
    "customer_id",
    "customer_name",
    "mailing_line1",
    "mailing_city",
    "mailing_state",
    "mailing_zip",
)
MAILING_FIELDS = ("mailing_line1", "mailing_line2", "mailing_city", "mailing_state", "mailing_zip")


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, header): nothing is loaded."""

    def __init__(self, filename: str, line: int, reason: str) -> None:
        super().__init__(f"{filename}:{line}: {reason}")


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str

    def render(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.reason}"


@dataclass
class ImportPlan:
    """What a file says, validated: customers and accounts as event-ready snapshots."""

    filename: str
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[RowProblem] = field(default_factory=list)
    held_back: list[RowProblem] = field(default_factory=list)
    rows: int = 0

    def report(self) -> list[str]:
        return [p.render(self.filename) for p in sorted(self.errors, key=lambda p: p.line)]


@dataclass
class _Row:
    line: int
    customer_id: str | None = None
    account_number: str | None = None
    customer: dict[str, Any] | None = None
    account: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    customer_bad: bool = False


def read_file(path: str, *, encoding: str = "utf-8", filename: str | None = None) -> ImportPlan:
    """Parse the customers CSV at `path`."""
    name = filename or path
    try:
        with open(path, encoding="utf-8-sig" if encoding.lower() == "utf-8" else encoding) as fh:
            content = fh.read()
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1 if isinstance(exc.object, bytes) else 1
        raise ImportFileError(
            name, line, f"not {encoding} text (use --encoding, e.g. --encoding cp1252)"
        ) from None
    except LookupError:
        raise ImportFileError(name, 0, f"unknown encoding {encoding!r}") from None
    return parse(io.StringIO(content, newline=""), filename=name)


def parse(lines: Iterable[str], *, filename: str) -> ImportPlan:
    """Validate every row and group them into customers and accounts."""
    reader = csv.reader(lines)
    header_line = 0
    header: list[str] | None = None
    rows: list[_Row] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if header is None:
                if not any(cell.strip() for cell in record):
                    continue
                header_line = line
                header = _header(record, filename, line)
                continue
            if not any(cell.strip() for cell in record):
                continue
            rows.append(_parse_row(header, record, line))
    except csv.Error as exc:
        raise ImportFileError(filename, reader.line_num, f"not valid CSV: {exc}") from None
    if header is None:
        raise ImportFileError(filename, max(header_line, 1), "the file is empty (no header row)")
    plan = ImportPlan(filename=filename, rows=len(rows))
    _group(rows, plan)
    return plan


def _header(record: list[str], filename: str, line: int) -> list[str]:
    names = [cell.strip().lower() for cell in record]
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        raise ImportFileError(
            filename,
            line,
            f"unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})",
        )
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ImportFileError(filename, line, f"column {n!r} appears twice")
        seen.add(n)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ImportFileError(filename, line, f"missing column(s): {', '.join(missing)}")
    return names


def _fields(problems: list[str], parsers: dict[str, Callable[[], Any]]) -> dict[str, Any] | None:
    """Run every parser; report each failure; the values, or None if any failed."""
    out: dict[str, Any] = {}
    ok = True
    for key, parse in parsers.items():
        try:
            out[key] = parse()
        except v.FieldError as exc:
            problems.append(str(exc))
            ok = False
    return out if ok else None


def _identifier(problems: list[str], field_name: str, value: Any, label: str) -> str | None:
    try:
        return parse_identifier(field_name, value, label=label)
    except InvalidInput as exc:
        problems.append(_invalid(exc))
        return None


def _parse_row(header: list[str], record: list[str], line: int) -> _Row:
    row = _Row(line=line)
    if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
        row.problems.append(f"has {len(record)} fields but the header has {len(header)}")
        row.customer_bad = True
        return row
    values = {name: (record[i] if i < len(record) else "") for i, name in enumerate(header)}
    get = values.get

    row.customer_id = _identifier(row.problems, "customer_id", get("customer_id"), "customer ID")
    customer = _fields(
        row.problems,
        {
            "name": lambda: " ".join(
                (v.text("customer_name", get("customer_name"), max_length=100) or "").split()
            ),
            "mailing_address": lambda: v.mailing_address(values, MAILING_FIELDS),
            "email": lambda: v.email("email", get("email")),
        },
    )
    row.customer = {"customer_id": row.customer_id, **customer} if customer else None
    row.customer_bad = bool(row.problems)

    account_given = any((get(c) or "").strip() for c in ACCOUNT_COLUMNS)
    service_given = any((get(c) or "").strip() for c in SERVICE_COLUMNS)
    if not account_given:
        if service_given:
            row.problems.append("service columns are filled but account_number is empty")
        return row
    row.account_number = _identifier(
        row.problems, "account_number", get("account_number"), "account number"
    )
    account = _fields(
        row.problems,
        {
            "service_address": lambda: v.upper_text(
                "service_address", get("service_address"), max_length=100
            ),
            "service_city": lambda: v.upper_text(
                "service_city", get("service_city"), max_length=50
            ),
            "service_state": lambda: v.state("service_state", get("service_state")),
            "service_zip": lambda: v.zip_code("service_zip", get("service_zip")),
            "parcel_id": lambda: v.upper_text(
                "parcel_id", get("parcel_id"), max_length=30, required=False
            ),
            "status": lambda: v.choice("account_status", get("account_status"), v.ACCOUNT_STATUSES),
            "cycle": lambda: v.cycle("cycle", get("cycle")),
        },
    )
    if account is not None:
        row.account = {
            "account_number": row.account_number,
            "customer_id": row.customer_id,
            **account,
        }
    if not service_given:
        return row
    service = _fields(
        row.problems,
        {
            "code": lambda: v.upper_text("service_code", get("service_code"), max_length=20),
            "name": lambda: v.upper_text("service_name", get("service_name"), max_length=60),
            "start_date": lambda: v.date("service_start", get("service_start")),
            "stop_date": lambda: v.date("service_stop", get("service_stop"), required=False),
            "status": lambda: v.choice("service_status", get("service_status"), v.SERVICE_STATUSES),
            "meter_number": lambda: v.upper_text(
                "meter_number", get("meter_number"), max_length=30, required=False
            ),
            "meter_size": lambda: v.meter_size("meter_size", get("meter_size")),
        },
    )
    if service is not None:
        start, stop = service["start_date"], service["stop_date"]
        if stop is not None and stop < start:
            row.problems.append(f"service_stop: {stop} is before service_start {start}")
        else:
            row.service = service
    return row


def _invalid(exc: InvalidInput) -> str:
    field_name, message = next(iter(exc.errors.items()))
    return f"{field_name}: {message}"


def _group(rows: list[_Row], plan: ImportPlan) -> None:
    customers: dict[str, tuple[int, dict[str, Any]]] = {}
    accounts: dict[str, tuple[int, dict[str, Any]]] = {}
    services: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
    bad_customers: dict[str, int] = {}
    bad_accounts: dict[str, int] = {}

    for row in rows:
        if row.customer is not None and row.customer_id is not None:
            first = customers.get(row.customer_id)
            if first is None:
                customers[row.customer_id] = (row.line, row.customer)
            else:
                differs = _differences(row.customer, first[1])
                if differs:
                    row.problems.append(
                        f"customer {row.customer_id}: {', '.join(differs)} "
                        f"differ{'s' if len(differs) == 1 else ''} from line {first[0]}"
                    )
                    row.customer_bad = True
        if row.account is not None and row.account_number and row.customer_id:
            first = accounts.get(row.account_number)
            if first is None:
                accounts[row.account_number] = (row.line, row.account)
            elif row.account["customer_id"] != first[1]["customer_id"]:
                row.problems.append(
                    f"account {row.account_number}: belongs to customer "
                    f"{first[1]['customer_id']} on line {first[0]}"
                )
            else:
                differs = _differences(row.account, first[1])
                if differs:
                    row.problems.append(
                        f"account {row.account_number}: {', '.join(differs)} "
                        f"differ{'s' if len(differs) == 1 else ''} from line {first[0]}"
                    )
        if row.service is not None and row.account_number is not None:
            known = services.setdefault(row.account_number, {})
            code = row.service["code"]
            if code in known:
                row.problems.append(
                    f"account {row.account_number}: service {code} is already on line "
                    f"{known[code][0]}"
                )
            else:
                known[code] = (row.line, row.service)
        if row.problems:
            plan.errors.append(RowProblem(row.line, "; ".join(row.problems)))
            if row.customer_bad and row.customer_id is not None:
                bad_customers.setdefault(row.customer_id, row.line)
            if row.account_number is not None:
                bad_accounts.setdefault(row.account_number, row.line)

    for number, (_, account) in accounts.items():
        if account["customer_id"] in bad_customers:
            bad_accounts.setdefault(number, bad_customers[account["customer_id"]])

    for row in rows:
        if row.problems:
            continue
        if row.customer_id in bad_customers:
            plan.held_back.append(
                RowProblem(
                    row.line,
                    f"not loaded: customer {row.customer_id} has a bad row "
                    f"(line {bad_customers[row.customer_id]})",
                )
            )
        elif row.account_number in bad_accounts:
            plan.held_back.append(
                RowProblem(
                    row.line,
                    f"not loaded: account {row.account_number} has a bad row "
                    f"(line {bad_accounts[row.account_number]})",
                )
            )

    for cid, (_, customer) in customers.items():
        if cid not in bad_customers:
            plan.customers[cid] = customer
    for number, (_, account) in accounts.items():
        if number in bad_accounts:
            continue
        listed = sorted(
            (svc for _, svc in services.get(number, {}).values()), key=lambda s: s["code"]
        )
        plan.accounts[number] = {**account, "services": listed}


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    names = {
        "name": "customer_name",
        "mailing_address": "mailing address",
        "service_address": "service_address",
        "status": "account_status",
    }
    return [names.get(k, k) for k in a if a[k] != b.get(k)]
