"""The `muniportal` command: run the whole portal, or one of its helper processes.

muniportal run                 everything, for development (what `make run` calls)
muniportal processor-sandbox   the card processor sandbox (payments)
muniportal mailbox             the local SMTP sink and its viewer API (notifications)
muniportal relay SERVICE       an outbox relay on its own (normally inside the service)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence


def _delegate(module: str, argv: list[str]) -> int:
    try:
        target = importlib.import_module(module)
    except ModuleNotFoundError:
        print(f"muniportal: {module} is not part of this build", file=sys.stderr)
        return 2
    return int(target.main(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        prog="muniportal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="start everything (make run)")
    p.add_argument("--no-demo", action="store_true", help="do not load the demo city")
    for name in ("processor-sandbox", "mailbox", "relay"):
        sub.add_parser(name, add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        from shared.supervisor import run

        return run(load_demo=not args.no_demo)
    modules = {
        "processor-sandbox": "services.payments.sandbox",
        "mailbox": "services.notifications.mailbox",
        "relay": "shared.relay",
    }
    return _delegate(modules[args.command], rest)


if __name__ == "__main__":
    sys.exit(main())
