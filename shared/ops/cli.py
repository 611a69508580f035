"""muniportal-ops: the operations staff's tool for events, projections and queues.

Kernel verbs:
  streams SERVICE [--prefix P]         list streams
  show SERVICE STREAM_ID               every event of one stream
  tail SERVICE [--from POS] [--follow] the log, as it grows
  rebuild SERVICE [PROJECTION]         rebuild projections while reads go on
  republish SERVICE --from POS [--to POS] [--type TYPE]
                                       publish events again, flagged as a replay
  dead-letters SERVICE list|retry|drop parked messages of the service's consumers
  stats [SERVICE]                      positions, relay lag, projector and consumer lag
  migrate [SERVICE]                    create tables, rebuild changed projections

Services add their own verbs (import ..., billing-run, ...). Every verb takes
--json for machine-readable output. An unknown name or a bad range prints one
line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from shared.errors import MuniportalError
from shared.ops.registry import (
    STORED_SERVICES,
    UnknownName,
    known_services,
    open_store,
    ops_module,
)


class UsageError(Exception):
    """Bad input from the operator: one line, exit status 2."""


def amqp_uri() -> str:
    return os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    elif text is not None:
        print(text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    for row in rows:
        lines.append("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def service_arg(name: str) -> str:
    if name not in known_services():
        raise UnknownName(f"unknown service {name!r} (known: {', '.join(known_services())})")
    return name


# -- verbs --------------------------------------------------------------------------------


def cmd_streams(args: argparse.Namespace) -> None:
    store = open_store(args.service)
    rows = store.events.streams(prefix=args.prefix, limit=args.limit)
    emit(args, rows, table(rows, ["stream_id", "version", "first", "last"]))


def cmd_show(args: argparse.Namespace) -> None:
    store = open_store(args.service)
    events = store.events.read_stream(args.stream_id)
    if not events:
        raise UnknownName(f"no stream {args.stream_id!r} in {args.service}")
    data = [e.to_wire() for e in events]
    emit(args, data, "\n".join(_line(e) for e in events))


def _line(env: Any) -> str:
    return (
        f"{env.position or '-':>8}  {env.occurred_at:%Y-%m-%d %H:%M:%S}  {env.stream_id} "
        f"v{env.version}  {env.type}  {json.dumps(env.data, default=str)}"
    )


def cmd_tail(args: argparse.Namespace) -> None:
    store = open_store(args.service)
    head = store.events.head_position()
    position = args.from_position if args.from_position is not None else max(0, head - args.lines)
    if position < 0:
        raise UsageError("--from must be 0 or more")
    while True:
        events = store.events.read_all(position, 500)
        for env in events:
            if args.json:
                print(json.dumps(env.to_wire(), default=str))
            else:
                print(_line(env))
            position = env.position or position
        sys.stdout.flush()
        if not args.follow:
            return
        if len(events) < 500:
            time.sleep(0.5)


def cmd_rebuild(args: argparse.Namespace) -> None:
    from shared.projection import rebuild

    store = open_store(args.service)
    classes = store.projection_classes
    if args.projection:
        classes = [c for c in classes if c.name == args.projection]
        if not classes:
            names = ", ".join(c.name for c in store.projection_classes) or "none"
            raise UnknownName(
                f"{args.service} has no projection {args.projection!r} (projections: {names})"
            )
    store.migrate()
    results = []
    for cls in classes:
        started = time.monotonic()
        applied = rebuild(store.events, cls)
        seconds = time.monotonic() - started
        results.append({"projection": cls.name, "events": applied, "seconds": round(seconds, 3)})
    emit(args, results, table(results, ["projection", "events", "seconds"]))


def cmd_republish(args: argparse.Namespace) -> None:
    from shared.relay import ConfirmingPublisher, events_exchange

    if args.from_position < 0:
        raise UsageError("--from must be 0 or more")
    if args.to_position is not None and args.to_position < args.from_position:
        raise UsageError(f"--to {args.to_position} is before --from {args.from_position}")
    store = open_store(args.service)
    head = store.events.head_position()
    if args.from_position > head:
        raise UsageError(f"--from {args.from_position} is past the end of the log ({head})")
    publisher = ConfirmingPublisher(
        amqp_uri(), events_exchange(args.service), name="muniportal-ops-republish"
    )
    position = args.from_position - 1 if args.from_position > 0 else 0
    last = args.to_position if args.to_position is not None else head
    sent = 0
    try:
        while position < last:
            batch = [e for e in store.events.read_all(position, 500) if (e.position or 0) <= last]
            if not batch:
                break
            position = batch[-1].position or position
            chosen = [e for e in batch if not args.type or e.type in args.type]
            publisher.publish(chosen, replay=True)
            sent += len(chosen)
    finally:
        publisher.close()
    emit(
        args,
        {"republished": sent, "from": args.from_position, "to": last},
        f"republished {sent} events of {args.service} ({args.from_position}..{last}) as a replay",
    )


def cmd_dead_letters(args: argparse.Namespace) -> None:
    from shared.ops import deadletters

    queues = deadletters.parked_queues(args.service, args.queue)
    if args.action == "list":
        rows = deadletters.list_parked(amqp_uri(), queues, limit=args.limit)
        emit(
            args,
            rows,
            table(rows, ["queue", "message_id", "type", "attempts", "parked_at", "error"]),
        )
        return
    if not args.all and not args.id:
        raise UsageError(f"dead-letters {args.action} needs --id MESSAGE_ID or --all")
    done = deadletters.act(
        amqp_uri(), queues, args.action, ids=set(args.id or []), everything=args.all
    )
    if args.id and not done:
        raise UnknownName(f"no parked message with id {', '.join(args.id)}")
    emit(args, {"action": args.action, "messages": done}, f"{args.action}: {len(done)} message(s)")


def cmd_stats(args: argparse.Namespace) -> None:
    from shared.ops import stats

    services = (
        [args.service]
        if args.service
        else [s for s in known_services() if s in STORED_SERVICES or args.all]
    )
    rows = [stats.service_stats(name, amqp_uri()) for name in services]
    if args.json:
        emit(args, rows)
        return
    for row in rows:
        print(stats.render(row))


def cmd_migrate(args: argparse.Namespace) -> None:
    services = [args.service] if args.service else list(STORED_SERVICES)
    out = []
    for name in services:
        store = open_store(name)
        rebuilt = store.migrate()
        out.append({"service": name, "database": _redact(store.events.url), "rebuilt": rebuilt})
        store.dispose()
    emit(args, out, table(out, ["service", "database", "rebuilt"]))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


# -- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand must not reset a --json given before it.
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser = argparse.ArgumentParser(
        prog="muniportal-ops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Its own action: `parents` would share the subcommands' action objects.
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("streams", parents=[common], help="list a service's streams")
    p.add_argument("service")
    p.add_argument("--prefix")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=cmd_streams)

    p = sub.add_parser("show", parents=[common], help="show one stream's events")
    p.add_argument("service")
    p.add_argument("stream_id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("tail", parents=[common], help="show the end of the log")
    p.add_argument("service")
    p.add_argument("--from", dest="from_position", type=int)
    p.add_argument("-n", "--lines", type=int, default=20)
    p.add_argument("--follow", "-f", action="store_true")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("rebuild", parents=[common], help="rebuild projections from the log")
    p.add_argument("service")
    p.add_argument("projection", nargs="?")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser(
        "republish", parents=[common], help="publish a range of events again, flagged as a replay"
    )
    p.add_argument("service")
    p.add_argument("--from", dest="from_position", type=int, required=True)
    p.add_argument("--to", dest="to_position", type=int)
    p.add_argument("--type", action="append", help="only this event type (repeatable)")
    p.set_defaults(func=cmd_republish)

    p = sub.add_parser("dead-letters", parents=[common], help="parked messages")
    p.add_argument("service")
    p.add_argument("action", choices=["list", "retry", "drop"])
    p.add_argument("--queue", help="only this consumer queue")
    p.add_argument("--id", action="append", help="message id (event id); repeatable")
    p.add_argument("--all", action="store_true")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("stats", parents=[common], help="positions and lag")
    p.add_argument("service", nargs="?")
    p.add_argument("--all", action="store_true", help="include extra services")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "migrate", parents=[common], help="create tables; rebuild changed projections"
    )
    p.add_argument("service", nargs="?")
    p.set_defaults(func=cmd_migrate)

    groups = {
        "import": sub.add_parser(
            "import", parents=[common], help="load data from files"
        ).add_subparsers(dest="what", required=True, metavar="WHAT"),
        "export": sub.add_parser(
            "export", parents=[common], help="write data to files"
        ).add_subparsers(dest="what", required=True, metavar="WHAT"),
    }
    for service in known_services():
        module = ops_module(service)
        if module is not None and hasattr(module, "register"):
            module.register(sub, groups, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        hasattr(args, "service")
        and args.service is not None
        and args.verb
        in ("streams", "show", "tail", "rebuild", "republish", "dead-letters", "stats", "migrate")
    ):
        try:
            service_arg(args.service)
        except UnknownName as exc:
            print(f"muniportal-ops: {exc}", file=sys.stderr)
            return 2
    try:
        args.func(args)
    except (UnknownName, UsageError) as exc:
        print(f"muniportal-ops: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except MuniportalError as exc:
        print(f"muniportal-ops: {exc}", file=sys.stderr)
        return 2 if exc.kind in ("invalid", "not_found", "conflict") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
