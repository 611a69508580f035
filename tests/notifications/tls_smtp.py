"""A real SMTP server that insists on TLS and a login, for the TLS tests (own process).

    python -m tests.notifications.tls_smtp --port P --dir D --cert C --key K \
        --mode starttls|tls --user U --password W

Accepted messages are saved as D/<n>.eml, like `shared.testing_smtp`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import ssl
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saving:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        path = self.directory / f"{next(self.counter)}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 2.0.0 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--mode", choices=["starttls", "tls"], required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (args.user, args.password)
        return AuthResult(success=ok, handled=False)

    common = dict(
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticator,
        # aiosmtpd only counts STARTTLS as TLS; with implicit TLS every session is TLS.
        auth_require_tls=args.mode == "starttls",
        auth_required=True,
    )
    if args.mode == "starttls":
        controller = Controller(
            Saving(directory), tls_context=context, require_starttls=True, **common
        )
    else:
        controller = Controller(Saving(directory), ssl_context=context, **common)
    controller.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    main()
