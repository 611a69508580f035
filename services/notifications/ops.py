"""muniportal-ops verbs of the notifications service: the delivery log and announcements.

  mail list [--status S] [--to EMAIL] [--kind K] [--limit N]
  mail show MESSAGE_ID
  mail retry MESSAGE_ID... | --all-failed          a new round of attempts
  mail drop MESSAGE_ID... | --all-failed [--reason R]   give up; never sent
  announcements list [--all]
  announcements post --title T --body B --starts-on DATE [--ends-on DATE] [--audience all|signed_in]
  announcements edit ID [--title T] [--body B] [--starts-on DATE] [--ends-on DATE|--no-end-date]
                        [--audience A]
  announcements retire ID

Staff are recorded as the actor (`staff:<--by or $USER>`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
from typing import Any

from services.notifications import handlers, spool
from services.notifications.domain.events import AUDIENCES, STATUSES
from services.notifications.domain.kinds import KINDS
from services.notifications.settings import Settings, SettingsError
from shared.ops.cli import UsageError, emit, table
from shared.ops.registry import open_store

MESSAGE_COLUMNS = [
    "message_id",
    "status",
    "kind",
    "to",
    "subject",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
]
ANNOUNCEMENT_COLUMNS = ["announcement_id", "title", "starts_on", "ends_on", "audience", "retired"]


def _store() -> Any:
    store = open_store("notifications")
    store.migrate()
    spool.ensure_table(store.events.engine)
    return store


def _staff(args: argparse.Namespace) -> str:
    name = (args.by or os.environ.get("USER") or _login() or "unknown").strip()
    return f"staff:{name}"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _date(value: str | None, field: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        flag = "--" + field.replace("_", "-")
        raise UsageError(f"{flag} must be a date (YYYY-MM-DD), not {value!r}") from None


def _city_today() -> dt.date:
    try:
        return Settings.from_config(os.environ).today()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


# -- mail ----------------------------------------------------------------------------------


def cmd_mail_list(args: argparse.Namespace) -> None:
    rows = handlers.list_messages(
        _store(), status=args.status, recipient=args.to, kind=args.kind, limit=args.limit
    )
    emit(args, rows, table(rows, MESSAGE_COLUMNS))


def cmd_mail_show(args: argparse.Namespace) -> None:
    store = _store()
    row = handlers.get_message(store, args.message_id)
    history = [
        {"version": e.version, "at": e.occurred_at.isoformat(), "type": e.type, **_safe(e.data)}
        for e in store.events.read_stream(f"message-{args.message_id}")
    ]
    data = {**row, "history": history}
    lines = [f"{k}: {v}" for k, v in row.items()]
    lines += ["history:"] + [
        f"  v{h['version']}  {h['at']}  {h['type']}  {h.get('error') or h.get('reason') or ''}"
        for h in history
    ]
    emit(args, data, "\n".join(lines))


def _safe(data: dict[str, Any]) -> dict[str, Any]:
    # Events never hold secrets; the context is left out only to keep the output short.
    return {k: v for k, v in data.items() if k not in ("context", "message_id")}


def _targets(args: argparse.Namespace, store: Any) -> list[str]:
    if args.all_failed and args.message_ids:
        raise UsageError("give message ids or --all-failed, not both")
    if args.all_failed:
        rows = handlers.list_messages(store, status="failed", limit=1000)
        return [row["message_id"] for row in rows]
    if not args.message_ids:
        raise UsageError(f"mail {args.mail_action} needs MESSAGE_ID... or --all-failed")
    return list(args.message_ids)


def cmd_mail_retry(args: argparse.Namespace) -> None:
    store = _store()
    by = _staff(args)
    done = [
        handlers.retry_message(store, message_id, by=by) for message_id in _targets(args, store)
    ]
    emit(args, done, f"retrying {len(done)} message(s)")


def cmd_mail_drop(args: argparse.Namespace) -> None:
    store = _store()
    by = _staff(args)
    done = [
        handlers.drop_message(store, message_id, by=by, reason=args.reason or "")
        for message_id in _targets(args, store)
    ]
    emit(args, done, f"dropped {len(done)} message(s)")


# -- announcements -------------------------------------------------------------------------


def cmd_announcements_list(args: argparse.Namespace) -> None:
    rows = handlers.list_announcements(_store(), include_retired=args.all)
    emit(args, rows, table(rows, ANNOUNCEMENT_COLUMNS))


def _body(args: argparse.Namespace) -> str | None:
    if args.body_file:
        try:
            with open(args.body_file, encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise UsageError(f"--body-file {args.body_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--body-file {args.body_file} is not UTF-8 text") from None
    return args.body


def cmd_announcements_post(args: argparse.Namespace) -> None:
    body = _body(args)
    if body is None:
        raise UsageError("announcements post needs --body or --body-file")
    row = handlers.post_announcement(
        _store(),
        title=args.title,
        body=body,
        starts_on=_date(args.starts_on, "starts_on") or _city_today(),
        ends_on=_date(args.ends_on, "ends_on"),
        audience=args.audience,
        by=_staff(args),
    )
    emit(args, row, f"posted {row['announcement_id']}")


def cmd_announcements_edit(args: argparse.Namespace) -> None:
    changes: dict[str, Any] = {}
    if args.title is not None:
        changes["title"] = args.title
    body = _body(args)
    if body is not None:
        changes["body"] = body
    if args.starts_on is not None:
        changes["starts_on"] = _date(args.starts_on, "starts_on")
    if args.no_end_date:
        changes["ends_on"] = None
    elif args.ends_on is not None:
        changes["ends_on"] = _date(args.ends_on, "ends_on")
    if args.audience is not None:
        changes["audience"] = args.audience
    if not changes:
        raise UsageError("announcements edit needs at least one change")
    row = handlers.edit_announcement(_store(), args.announcement_id, by=_staff(args), **changes)
    emit(args, row, f"edited {row['announcement_id']}")


def cmd_announcements_retire(args: argparse.Namespace) -> None:
    row = handlers.retire_announcement(_store(), args.announcement_id, by=_staff(args))
    emit(args, row, f"retired {row['announcement_id']}")


# -- parser --------------------------------------------------------------------------------


def register(sub: Any, groups: dict[str, Any], common: argparse.ArgumentParser) -> None:
    staff = argparse.ArgumentParser(add_help=False)
    staff.add_argument("--by", help="staff name recorded on the change (default: $USER)")

    mail = sub.add_parser(
        "mail", parents=[common], help="the email delivery log (notifications)"
    ).add_subparsers(dest="mail_action", required=True, metavar="ACTION")

    p = mail.add_parser("list", parents=[common], help="messages, newest first")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--to", help="only messages to this address")
    p.add_argument("--kind", choices=sorted(KINDS))
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_mail_list)

    p = mail.add_parser("show", parents=[common], help="one message and its history")
    p.add_argument("message_id")
    p.set_defaults(func=cmd_mail_show)

    for action, func, text in (
        ("retry", cmd_mail_retry, "send failed messages again (a new round of attempts)"),
        ("drop", cmd_mail_drop, "give up on messages; they are never sent"),
    ):
        p = mail.add_parser(action, parents=[common, staff], help=text)
        p.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
        p.add_argument("--all-failed", action="store_true", help="every failed message")
        if action == "drop":
            p.add_argument("--reason")
        p.set_defaults(func=func)

    ann = sub.add_parser(
        "announcements", parents=[common], help="home-page announcements (notifications)"
    ).add_subparsers(dest="announcements_action", required=True, metavar="ACTION")

    p = ann.add_parser("list", parents=[common], help="current and future announcements")
    p.add_argument("--all", action="store_true", help="include retired ones")
    p.set_defaults(func=cmd_announcements_list)

    p = ann.add_parser("post", parents=[common, staff], help="post an announcement")
    p.add_argument("--title", required=True)
    p.add_argument("--body")
    p.add_argument("--body-file")
    p.add_argument("--starts-on", help="YYYY-MM-DD (default: today in the city)")
    p.add_argument("--ends-on", help="YYYY-MM-DD, last day shown (default: no end)")
    p.add_argument("--audience", choices=AUDIENCES, default="all")
    p.set_defaults(func=cmd_announcements_post)

    p = ann.add_parser("edit", parents=[common, staff], help="change an announcement")
    p.add_argument("announcement_id")
    p.add_argument("--title")
    p.add_argument("--body")
    p.add_argument("--body-file")
    p.add_argument("--starts-on")
    end = p.add_mutually_exclusive_group()
    end.add_argument("--ends-on")
    end.add_argument("--no-end-date", action="store_true")
    p.add_argument("--audience", choices=AUDIENCES)
    p.set_defaults(func=cmd_announcements_edit)

    p = ann.add_parser("retire", parents=[common, staff], help="take an announcement down")
    p.add_argument("announcement_id")
    p.set_defaults(func=cmd_announcements_retire)
