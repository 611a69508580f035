"""Secret-bearing mail (verify, reset, unlock): handed to notifications over RPC, never stored.

The raw token may exist only in memory and in the RPC to notifications. So the
handler queues the message here after its transaction commits, and a sender
thread delivers it, retrying while notifications is unavailable. Sending off
the request path also means "we sent you a link" takes as long whether or not
there was anyone to send it to. A graceful stop (SIGTERM) gives every queued or
retrying link one last attempt; a crash loses them, and the resident asks again
("resend"), which is the same thing they would do if the mail were lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Protocol

import eventlet
from eventlet.queue import LightQueue

from shared.errors import MuniportalError
from shared.nameko import SideEffect
from shared.rpc import rpc_client, rpc_timeout

log = logging.getLogger(__name__)

# Kinds of secret-bearing mail identity sends (notifications renders each one). A new
# address is verified with the same kind; context["purpose"] tells the two apart.
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
UNLOCK_ACCOUNT = "unlock_account"


@dataclasses.dataclass(frozen=True)
class SecureEmail:
    kind: str
    to: str
    context: dict[str, Any]
    secret_url: str
    idempotency_key: str

    def __repr__(self) -> str:  # never print the link: it holds the token
        return f"SecureEmail(kind={self.kind!r}, key={self.idempotency_key!r})"


class Mailer(Protocol):
    def send(self, message: SecureEmail) -> None: ...


class MailOutbox:
    """An in-memory queue of secure mails and the loop that delivers them."""

    def __init__(
        self, amqp_uri: str, *, timeout: float, attempts: int, concurrency: int = 8
    ) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.queue: LightQueue = LightQueue()
        # Each mail is delivered (and retried) on its own: one slow mail delays no other.
        self.pool = eventlet.GreenPool(concurrency)
        self.delivered = 0
        self.dropped = 0
        self.failed_attempts = 0
        self._stopping = False
        self._stop_event = threading.Event()
        self._drained = threading.Event()

    def send(self, message: SecureEmail) -> None:
        self.queue.put(message)

    def stop(self, drain: float = 10.0) -> None:
        """No new deliveries; each queued or retrying link gets one last try, within `drain` s."""
        self._halt()
        with eventlet.Timeout(drain, False):
            self._drained.wait()
            self.pool.waitall()

    def kill(self) -> None:
        self._halt()
        for greenlet in list(self.pool.coroutines_running):
            greenlet.kill()

    def _halt(self) -> None:
        self._stopping = True
        self._stop_event.set()
        self.queue.put(None)

    def run(self) -> None:
        try:
            while True:
                message = self.queue.get()
                if message is None:
                    return
                self.pool.spawn_n(self._deliver, message)
        finally:
            self._drained.set()

    def _deliver(self, message: SecureEmail) -> None:
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                with rpc_client(
                    self.amqp_uri, timeout=self.timeout, context_data={"actor": "system"}
                ) as cluster:
                    cluster.notifications.send_secure_email(
                        kind=message.kind,
                        to=message.to,
                        context=message.context,
                        secret_url=message.secret_url,
                        idempotency_key=message.idempotency_key,
                    )
                self.delivered += 1
                return
            except MuniportalError as exc:
                if exc.kind != "unavailable":
                    # notifications refused it; retrying would not help. The link is not logged.
                    log.error("notifications refused %r: %s (%s)", message, exc.code, exc.detail)
                    self.dropped += 1
                    return
                log.warning("notifications unavailable for %r (attempt %s)", message, attempt)
            except Exception as exc:  # broker trouble: same as unavailable
                log.warning("could not reach notifications for %r: %s", message, type(exc).__name__)
            self.failed_attempts += 1
            if self._stopping:
                break
            self._stop_event.wait(delay)  # a stop cuts the wait short: one last attempt
            delay = min(delay * 2, 10.0)
        log.error("gave up sending %r; the resident can ask for a new link", message)
        self.dropped += 1


class SecureMailer(SideEffect):
    """The outbox as a worker sees it (a no-op stand-in during replays)."""

    def setup(self) -> None:
        config = self.container.config
        self.outbox = MailOutbox(
            config["AMQP_URI"],
            timeout=rpc_timeout(config),
            attempts=int(config.get("MAIL_ATTEMPTS") or 5),
        )

    def start(self) -> None:
        self.container.spawn_managed_thread(self.outbox.run)

    def stop(self) -> None:
        self.outbox.stop()

    def kill(self) -> None:
        self.outbox.kill()

    def live(self, worker_ctx: Any) -> MailOutbox:
        return self.outbox
