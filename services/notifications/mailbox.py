"""The local mailbox for development: an SMTP sink and a small JSON API to read what it caught.

    muniportal mailbox [--smtp-port 8025] [--http-port 8026] [--dir var/mailbox]

`make run` starts it when no SMTP_HOST is set, and points the notifications
service at it. The gateway shows the messages at http://localhost:8000/dev/mail
(never when ENV=production). The API (see docs/notifications.md):

    GET    /messages[?to=ADDRESS&limit=N]   newest first: [{id, from, to, subject, date,
                                                          text, html, links, ...}]
    GET    /messages/<id>                   one message
    GET    /messages/<id>/raw               the message as received (message/rfc822)
    DELETE /messages[/<id>]                 empty the mailbox, or drop one message
    GET    /health                          {"status": "ok", "messages": N}

It listens on loopback only, refuses to start when ENV=production, and answers
only requests addressed to a loopback host name (no DNS rebinding): captured
mail holds live sign-up and reset links. aiosmtpd is asyncio, so this runs as
its own process, never inside an eventlet-patched service.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import email.utils
import ipaddress
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


class Mailbox:
    """Captured messages, kept as .eml files so a restart keeps them."""

    def __init__(self, directory: Path, keep: int = 1000) -> None:
        self.directory = directory
        self.keep = keep
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem) for p in directory.glob("*.eml") if p.stem.isdigit()]
        self.next_id = max(numbers, default=0) + 1

    def add(self, raw: bytes, envelope_from: str, envelope_to: Sequence[str]) -> int:
        with self.lock:
            number = self.next_id
            self.next_id += 1
            tmp = self.directory / f".{number}.tmp"
            tmp.write_bytes(raw)
            os.replace(tmp, self.directory / f"{number}.eml")
            meta = {"envelope_from": envelope_from, "envelope_to": list(envelope_to)}
            (self.directory / f"{number}.json").write_text(json.dumps(meta))
            self._prune()
        return number

    def _prune(self) -> None:
        numbers = sorted(int(p.stem) for p in self.directory.glob("*.eml") if p.stem.isdigit())
        for number in numbers[: max(0, len(numbers) - self.keep)]:
            self._remove(number)

    def _remove(self, number: int) -> bool:
        found = False
        for suffix in (".eml", ".json"):
            path = self.directory / f"{number}{suffix}"
            if path.exists():
                path.unlink()
                found = True
        return found

    def ids(self) -> list[int]:
        return sorted(
            (int(p.stem) for p in self.directory.glob("*.eml") if p.stem.isdigit()), reverse=True
        )

    def raw(self, number: int) -> bytes | None:
        path = self.directory / f"{number}.eml"
        return path.read_bytes() if path.exists() else None

    def get(self, number: int) -> dict[str, Any] | None:
        raw = self.raw(number)
        if raw is None:
            return None
        meta_path = self.directory / f"{number}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return describe(number, raw, meta)

    def delete(self, number: int | None = None) -> int:
        with self.lock:
            if number is not None:
                return int(self._remove(number))
            numbers = self.ids()
            for n in numbers:
                self._remove(n)
            return len(numbers)


def describe(number: int, raw: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """One message as the API shows it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = _part(message, "plain")
    html = _part(message, "html")
    date = message.get("Date")
    try:
        iso_date = email.utils.parsedate_to_datetime(date).isoformat() if date else None
    except (TypeError, ValueError):
        iso_date = None
    links = list(dict.fromkeys(u.rstrip(".,;:!?") for u in URL_RE.findall(text or "")))
    return {
        "id": number,
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "date": iso_date,
        "message_id": str(message.get("Message-ID", "")),
        "text": text,
        "html": html,
        "links": links,
        "envelope_from": meta.get("envelope_from"),
        "envelope_to": meta.get("envelope_to", []),
        "size": len(raw),
    }


def _part(message: email.message.EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    try:
        return body.get_content().replace("\r\n", "\n")
    except (LookupError, ValueError):
        return None


class Sink:
    """aiosmtpd handler: accept everything, keep it in the mailbox."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else content.encode()
        number = self.mailbox.add(raw, envelope.mail_from, envelope.rcpt_tos)
        print(f"mailbox: message {number} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 2.0.0 OK: captured by the muniportal mailbox"


def make_handler(mailbox: Mailbox, port: int) -> type[BaseHTTPRequestHandler]:
    allowed_hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES} | set(LOOPBACK_NAMES)

    class Api(BaseHTTPRequestHandler):
        server_version = "muniportal-mailbox"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: links are secrets
            return

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if content_type == "application/json":
                content_type = "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, title: str) -> None:
            self._send(status, {"status": status, "title": title})

        def _guard(self) -> bool:
            if (self.headers.get("Host") or "").lower() not in allowed_hosts:
                self._error(403, "the mailbox answers only to localhost")
                return False
            return True

        def _route(self) -> tuple[list[str], dict[str, list[str]]]:
            parts = urlsplit(self.path)
            return [p for p in parts.path.split("/") if p], parse_qs(parts.query)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if not self._guard():
                return
            segments, query = self._route()
            if segments == ["health"]:
                self._send(200, {"status": "ok", "messages": len(mailbox.ids())})
            elif segments == ["messages"]:
                self._list(query)
            elif len(segments) in (2, 3) and segments[0] == "messages":
                number = _number(segments[1])
                raw = mailbox.raw(number) if number is not None else None
                if raw is None:
                    self._error(404, f"no message {segments[1]}")
                elif len(segments) == 3 and segments[2] == "raw":
                    self._send(200, raw, "message/rfc822")
                elif len(segments) == 2:
                    self._send(200, mailbox.get(number))  # type: ignore[arg-type]
                else:
                    self._error(404, "not found")
            else:
                self._error(404, "not found")

        def _list(self, query: dict[str, list[str]]) -> None:
            try:
                limit = int(query.get("limit", ["100"])[0])
            except ValueError:
                self._error(400, "limit must be a whole number")
                return
            if not 1 <= limit <= 1000:
                self._error(400, "limit must be between 1 and 1000")
                return
            wanted = (query.get("to", [""])[0]).strip().lower()
            out = []
            for number in mailbox.ids():
                item = mailbox.get(number)
                if item is None:
                    continue
                recipients = [item["to"].lower(), *(a.lower() for a in item["envelope_to"])]
                if wanted and not any(wanted in r for r in recipients):
                    continue
                out.append(item)
                if len(out) >= limit:
                    break
            self._send(200, out)

        def do_DELETE(self) -> None:  # noqa: N802 - http.server API
            if not self._guard():
                return
            segments, _ = self._route()
            if segments == ["messages"]:
                self._send(200, {"deleted": mailbox.delete()})
            elif len(segments) == 2 and segments[0] == "messages":
                number = _number(segments[1])
                if number is None or not mailbox.delete(number):
                    self._error(404, f"no message {segments[1]}")
                else:
                    self._send(200, {"deleted": 1})
            else:
                self._error(404, "not found")

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            self._error(405, "the mailbox API is read-only (GET, DELETE)")

        do_PUT = do_PATCH = do_POST  # noqa: N815

    return Api


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mailbox until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="muniportal mailbox", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("MAILBOX_HOST", "127.0.0.1"))
    parser.add_argument(
        "--smtp-port", type=int, default=int(os.environ.get("MAILBOX_SMTP_PORT", "8025"))
    )
    parser.add_argument(
        "--http-port", type=int, default=int(os.environ.get("MAILBOX_HTTP_PORT", "8026"))
    )
    parser.add_argument(
        "--dir",
        default=os.environ.get("MAILBOX_DIR")
        or os.path.join(os.environ.get("MUNIPORTAL_VAR", "var"), "mailbox"),
    )
    parser.add_argument("--keep", type=int, default=1000, help="messages kept (oldest dropped)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if os.environ.get("ENV", "development").lower() == "production":
        print("muniportal mailbox: refusing to run with ENV=production", file=sys.stderr)
        return 2
    if not _loopback(args.host):
        print(
            f"muniportal mailbox: --host must be a loopback address, not {args.host}",
            file=sys.stderr,
        )
        return 2
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    mailbox = Mailbox(Path(args.dir), keep=max(1, args.keep))
    try:
        http = ThreadingHTTPServer(
            (args.host, args.http_port), make_handler(mailbox, args.http_port)
        )
    except OSError as exc:
        print(f"muniportal mailbox: port {args.http_port}: {exc.strerror}", file=sys.stderr)
        return 1
    http.daemon_threads = True
    controller = Controller(Sink(mailbox), hostname=args.host, port=args.smtp_port)
    try:
        controller.start()
    except Exception as exc:  # aiosmtpd wraps bind errors in its own
        http.server_close()
        print(f"muniportal mailbox: SMTP port {args.smtp_port}: {exc}", file=sys.stderr)
        return 1

    def stop(*_: Any) -> None:
        threading.Thread(target=http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(
        f"mailbox: SMTP on {args.host}:{args.smtp_port}, "
        f"API on http://{args.host}:{args.http_port}/messages ({args.dir})",
        flush=True,
    )
    try:
        http.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        http.server_close()
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
