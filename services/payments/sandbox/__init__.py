"""The card processor sandbox: a stand-in for a real processor, run as its own process.

    muniportal processor-sandbox [--port 8100] [--webhook-url URL] [--webhook-mode MODE] ...

It offers what payments needs from a processor (see docs/payments.md): checkout
sessions with a hosted payment page, documented test cards, signed webhooks
retried with backoff until acknowledged (normal, duplicate, out-of-order or
dropped), refunds, voids, card tokens for automatic payments, and a daily
transaction report for settlement. State is kept in SQLite, so a restart keeps
payments and pending webhook deliveries.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import urllib.parse
from collections.abc import Sequence

DEFAULT_SECRET = "whsec_sandbox_muniportal"
DEFAULT_API_KEY = "sk_sandbox_muniportal"


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    processor_url = env.get("PROCESSOR_URL", "http://localhost:8100")
    default_port = urllib.parse.urlsplit(processor_url).port or 8100
    public = env.get("PUBLIC_URL", "http://localhost:8000").rstrip("/")
    secrets = [s.strip() for s in env.get("PROCESSOR_WEBHOOK_SECRETS", DEFAULT_SECRET).split(",")]
    p = argparse.ArgumentParser(
        prog="muniportal processor-sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=env.get("SANDBOX_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env.get("SANDBOX_PORT", default_port)))
    p.add_argument(
        "--public-url",
        default=env.get("SANDBOX_PUBLIC_URL"),
        help="the address residents' browsers use (default: http://HOST:PORT)",
    )
    p.add_argument(
        "--webhook-url",
        default=env.get("PROCESSOR_WEBHOOK_URL", f"{public}/api/v1/webhooks/processor"),
    )
    p.add_argument(
        "--webhook-secret",
        action="append",
        dest="webhook_secrets",
        help="signing secret; give two while rotating (default: PROCESSOR_WEBHOOK_SECRETS)",
    )
    p.add_argument(
        "--webhook-mode",
        default=env.get("SANDBOX_WEBHOOK_MODE", "normal"),
        choices=["normal", "duplicate", "out_of_order", "drop"],
    )
    p.add_argument("--api-key", default=env.get("PROCESSOR_API_KEY", DEFAULT_API_KEY))
    p.add_argument(
        "--db", default=None, help="state file (default: $MUNIPORTAL_VAR/processor-sandbox.db)"
    )
    p.add_argument(
        "--delay-seconds",
        type=float,
        default=float(env.get("SANDBOX_DELAY_SECONDS", "20")),
        help="how long the delayed-result test cards take",
    )
    p.add_argument(
        "--retry-base", type=float, default=1.0, help="first webhook retry after this many seconds"
    )
    p.add_argument(
        "--retry-max", type=float, default=300.0, help="longest wait between webhook retries"
    )
    p.add_argument("--merchant", default=env.get("CITY_NAME", "City of Muniportal"))
    p.add_argument("--quiet", action="store_true", help="do not log each HTTP request")
    p.set_defaults(default_secrets=secrets)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from werkzeug.serving import make_server

    from services.payments.sandbox.app import SandboxApp
    from services.payments.sandbox.bank import Bank
    from services.payments.sandbox.webhooks import Dispatcher

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(levelname)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    var = os.environ.get("MUNIPORTAL_VAR", "var")
    db = args.db or os.path.join(var, "processor-sandbox.db")
    os.makedirs(os.path.dirname(os.path.abspath(db)), exist_ok=True)
    host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
    public_url = args.public_url or f"http://{host}:{args.port}"
    bank = Bank(db, public_url, delay_seconds=args.delay_seconds)
    dispatcher = Dispatcher(
        bank,
        args.webhook_url,
        args.webhook_secrets or args.default_secrets,
        mode=args.webhook_mode,
        retry_base=args.retry_base,
        retry_max=args.retry_max,
    )
    app = SandboxApp(bank, dispatcher, args.api_key, args.merchant)
    server = make_server(args.host, args.port, app, threaded=True)
    stopping = threading.Event()

    def clock() -> None:
        while not stopping.wait(0.1):
            try:
                bank.tick()
            except Exception:
                logging.exception("sandbox clock failed")

    def stop(*_: object) -> None:
        stopping.set()
        dispatcher.stop()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    dispatcher.start()
    threading.Thread(target=clock, name="clock", daemon=True).start()
    logging.info(
        "processor sandbox on %s (webhooks to %s, mode %s)",
        public_url,
        args.webhook_url,
        args.webhook_mode,
    )
    server.serve_forever()
    return 0
