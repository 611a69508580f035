"""muniportal-ops verbs of the accounts service.

import customers FILE [--all-or-nothing] [--dry-run] [--encoding ENC]
    load the customer and account registry (docs/import-formats.md)
address-requests list [--status pending|approved|rejected|cancelled|all]
address-requests approve REQUEST_ID [--by NAME]
address-requests reject REQUEST_ID --reason TEXT [--by NAME]
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from services.accounts import handlers, queries
from services.accounts.importer import ImportFileError, read_file
from shared.errors import InvalidInput
from shared.ops.cli import emit, table
from shared.ops.registry import open_store

STATUSES = ("pending", "approved", "rejected", "cancelled", "all")


class ImportHadBadRows(InvalidInput):
    """Some rows were bad: the report is printed, and the exit status says so."""


def _staff(args: argparse.Namespace) -> str:
    name = args.by or os.environ.get("MUNIPORTAL_STAFF")
    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no login name in some containers
            name = "ops"
    return name if name.startswith("staff:") else f"staff:{name}"


def _store() -> Any:
    store = open_store("accounts")
    store.migrate()
    return store


def cmd_import_customers(args: argparse.Namespace) -> None:
    try:
        plan = read_file(args.file, encoding=args.encoding)
    except FileNotFoundError:
        raise InvalidInput(f"{args.file}: no such file", code="no_such_file") from None
    except ImportFileError as exc:
        raise InvalidInput(str(exc), code="unreadable_file") from None
    store = _store()
    try:
        result = handlers.import_registry(
            store,
            plan,
            all_or_nothing=args.all_or_nothing,
            dry_run=args.dry_run,
            actor=_staff(args),
        )
    finally:
        store.dispose()
    if not args.json:
        for line in result["errors"] + result["held_back"]:
            print(line, file=sys.stderr)
    emit(args, result, _summary(result))
    if result["bad_rows"]:
        what = (
            "nothing was loaded (--all-or-nothing)"
            if not result["loaded"]
            else "the other rows were checked"
            if result["dry_run"]
            else "the other rows were loaded"
        )
        raise ImportHadBadRows(
            f"{result['bad_rows']} bad row(s) in {args.file}; {what}", code="bad_rows"
        )


def _summary(result: dict[str, Any]) -> str:
    c, a = result["customers"], result["accounts"]
    verb = "would load" if result["dry_run"] else "loaded" if result["loaded"] else "not loaded"
    lines = [
        f"{result['file']}: {result['rows']} rows, {verb}",
        f"  customers: {c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged",
        f"  accounts:  {a['new']} new, {a['changed']} changed, {a['unchanged']} unchanged",
    ]
    if result["links_removed"]:
        lines.append(f"  links removed (account changed customer): {result['links_removed']}")
    if result["bad_rows"]:
        lines.append(
            f"  bad rows: {result['bad_rows']}; rows held back with them: "
            f"{result['rows_held_back']}"
        )
    return "\n".join(lines)


def cmd_address_requests(args: argparse.Namespace) -> None:
    store = _store()
    try:
        if args.action == "list":
            status = None if args.status == "all" else args.status
            with store.read() as conn:
                rows = queries.list_requests(conn, status)
            flat = [
                {
                    "request_id": r["request_id"],
                    "status": r["status"],
                    "account": r["account_number"],
                    "customer": f"{r['customer_id']} {r['customer_name']}",
                    "new_address": r["new_address"]["text"],
                    "effective": r["effective_date"],
                    "requested_at": (r["requested_at"] or "")[:16],
                }
                for r in rows
            ]
            emit(
                args,
                rows,
                table(
                    flat,
                    [
                        "request_id",
                        "status",
                        "account",
                        "customer",
                        "new_address",
                        "effective",
                        "requested_at",
                    ],
                ),
            )
            return
        view = handlers.decide_address_request(
            store,
            request_id=args.request_id,
            approve=args.action == "approve",
            staff=_staff(args),
            reason=getattr(args, "reason", None),
        )
        text = (
            f"{view['request_id']}: {view['status']}; {view['customer_name']} "
            f"({view['customer_id']}) "
            + (
                f"address of record from {view['effective_date']}: {view['new_address']['text']}"
                if view["status"] == "approved"
                else f"reason: {view['reason']}"
            )
        )
        emit(args, view, text)
    finally:
        store.dispose()


def register(
    subparsers: Any, groups: dict[str, Any], common: argparse.ArgumentParser | None = None
) -> None:
    parents = [common] if common is not None else []
    p = groups["import"].add_parser(
        "customers",
        parents=parents,
        help="load customers and utility accounts from the billing system's CSV",
    )
    p.add_argument("file", help="the CSV file (docs/import-formats.md)")
    p.add_argument("--all-or-nothing", action="store_true", help="load nothing if any row is bad")
    p.add_argument("--dry-run", action="store_true", help="check and count, change nothing")
    p.add_argument("--encoding", default="utf-8", help="the file's text encoding (utf-8)")
    p.add_argument("--by", help="staff name recorded as the actor (default: login name)")
    p.set_defaults(func=cmd_import_customers)

    p = subparsers.add_parser(
        "address-requests", parents=parents, help="residents' address change requests"
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", parents=parents, help="list requests (pending by default)")
    a.add_argument("--status", choices=STATUSES, default="pending")
    a.set_defaults(func=cmd_address_requests)
    a = actions.add_parser(
        "approve", parents=parents, help="approve: the address of record changes"
    )
    a.add_argument("request_id")
    a.add_argument("--by", help="staff name recorded as the actor (default: login name)")
    a.set_defaults(func=cmd_address_requests)
    a = actions.add_parser("reject", parents=parents, help="reject, saying why")
    a.add_argument("request_id")
    a.add_argument("--reason", required=True, help="told to the resident")
    a.add_argument("--by", help="staff name recorded as the actor (default: login name)")
    a.set_defaults(func=cmd_address_requests)
