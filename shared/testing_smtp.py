"""A real SMTP server for tests: aiosmtpd in its own process, messages saved as files.

    python -m shared.testing_smtp --port 2525 --dir /tmp/mail

Each accepted message is written to DIR/<n>.eml. A file DIR/.mode switches the
answer to DATA: ``ok`` (default), ``tempfail`` (451) or ``permfail`` (550), so
tests can show retries and permanent failures. Stopping the process is an outage.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class SavingHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        existing = [int(p.stem) for p in directory.glob("*.eml") if p.stem.isdigit()]
        self.counter = itertools.count(max(existing, default=0) + 1)

    def mode(self) -> str:
        path = self.directory / ".mode"
        return path.read_text().strip() if path.exists() else "ok"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        mode = self.mode()
        if mode == "tempfail":
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if mode == "permfail":
            return "550 5.1.1 No such user here"
        n = next(self.counter)
        tmp = self.directory / f".{n}.tmp"
        content = envelope.original_content or envelope.content
        tmp.write_bytes(content if isinstance(content, bytes) else content.encode())
        os.replace(tmp, self.directory / f"{n}.eml")
        return "250 2.0.0 OK"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(SavingHandler(directory), hostname=args.host, port=args.port)
    controller.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    main()
