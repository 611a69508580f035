"""muniportal-ops verbs of the identity service.

    muniportal-ops import legacy-users FILE [--json]

FILE is a CSV with a header line and the columns ``user_id,email,account_numbers``
(account numbers separated by ';', '|' or spaces; the column may be empty). The
whole file is checked first: if any line is wrong, every problem is reported
with its line number and nothing is imported. Importing the same file again
changes nothing; a changed line updates a user that is not yet claimed.
"""

from __future__ import annotations

import argparse
import csv
import re
from typing import Any

from services.identity.domain.rules import (
    ACCOUNT_NUMBER_RE,
    email_problem,
    normalize_account_number,
    normalize_email,
)
from services.identity.handlers.legacy import LegacyRecord, import_legacy_users
from shared.errors import InvalidInput

COLUMNS = ("user_id", "email", "account_numbers")
_SEPARATORS = re.compile(r"[;|\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ERRORS_SHOWN = 50


def register(sub: Any, groups: dict[str, Any], common: argparse.ArgumentParser) -> None:
    p = groups["import"].add_parser(
        "legacy-users",
        parents=[common],
        help="load the previous portal's users (user ID, email, account numbers), no passwords",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="CSV: user_id,email,account_numbers")
    p.set_defaults(func=cmd_import_legacy_users)


def read_legacy_file(path: str) -> list[LegacyRecord]:
    """Parse and check the whole file; InvalidInput names every bad line and field."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", code="unreadable_file") from None
    if not rows:
        raise InvalidInput(f"{path} is empty: it needs a header line {','.join(COLUMNS)}")
    header = [h.strip().lower() for h in rows[0]]
    if header[: len(COLUMNS)] != list(COLUMNS):
        raise InvalidInput(
            f"{path}: the header must be {','.join(COLUMNS)} (found {','.join(header)})",
            code="bad_header",
        )
    errors: dict[str, str] = {}
    records: list[LegacyRecord] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [*row, "", "", ""][:3]
        user_id, email, accounts = (c.strip() for c in cells)
        where = f"line {number}"
        if not user_id:
            errors[f"{where} user_id"] = "is required"
        elif len(user_id) > 100 or _CONTROL.search(user_id):
            errors[f"{where} user_id"] = "must be at most 100 printable characters"
        elif user_id.lower() in seen:
            errors[f"{where} user_id"] = f"repeats line {seen[user_id.lower()]}"
        else:
            seen[user_id.lower()] = number
        email = normalize_email(email)
        problem = email_problem(email)
        if problem:
            errors[f"{where} email"] = problem
        numbers = []
        for raw in filter(None, _SEPARATORS.split(accounts)):
            if not ACCOUNT_NUMBER_RE.fullmatch(raw):
                errors[f"{where} account_numbers"] = (
                    f"{raw[:30]!r} is not an account number (letters, digits, '-', 1-20)"
                )
                break
            numbers.append(normalize_account_number(raw))
        records.append(LegacyRecord(user_id, email, sorted(set(numbers))))
    if errors:
        shown = dict(list(errors.items())[:MAX_ERRORS_SHOWN])
        more = len(errors) - len(shown)
        raise InvalidInput(
            f"{path} has {len(errors)} problem(s); nothing was imported"
            + (f" ({more} more not shown)" if more else ""),
            shown,
            code="bad_file",
        )
    return records


def cmd_import_legacy_users(args: argparse.Namespace) -> None:
    from shared.ops.cli import emit
    from shared.ops.registry import open_store

    records = read_legacy_file(args.file)
    store = open_store("identity")
    try:
        store.migrate()
        counts = import_legacy_users(store, records)
    finally:
        store.dispose()
    emit(
        args,
        {"file": args.file, "rows": len(records), **counts},
        f"legacy users from {args.file}: {counts['imported']} imported, "
        f"{counts['updated']} updated, {counts['unchanged']} unchanged",
    )
