"""Talking to the SMTP server: connect (plain, STARTTLS or TLS), log in, send, classify.

A failure is one of two things:

* `ConnectionProblem`: no server, TLS or login refused, the connection dropped.
  Nothing about the message is wrong; every message waiting is deferred.
* an `Outcome` per message: accepted, refused for now (4xx: deferred and retried
  with backoff) or refused for good (5xx: failed at once).

Under eventlet (the service) smtplib's sockets are green, so a slow server
never blocks the service's other workers.
"""

from __future__ import annotations

import dataclasses
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Any

from services.notifications.settings import SmtpSettings

log = logging.getLogger(__name__)


class ConnectionProblem(Exception):
    """The server cannot be reached or refuses the session (not this message)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool = False
    detail: str = ""

    @classmethod
    def accepted(cls, detail: str = "250 accepted") -> Outcome:
        return cls(True, False, detail)

    @classmethod
    def refused(cls, code: int, message: Any) -> Outcome:
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        return cls(False, 500 <= code < 600, f"{code} {text}".strip()[:500])


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpConnection:
    """One SMTP session, reused for a batch of messages."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def open(self) -> SmtpConnection:
        s = self.settings
        helo = socket.gethostname() or "localhost"
        try:
            if s.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, local_hostname=helo, timeout=s.timeout, context=tls_context(s)
                )
            else:
                client = smtplib.SMTP(s.host, s.port, local_hostname=helo, timeout=s.timeout)
            try:
                client.ehlo()
                if s.security == "starttls":
                    client.starttls(context=tls_context(s))
                    client.ehlo()
                if s.user:
                    client.login(s.user, s.password)
            except BaseException:
                _close_quietly(client)
                raise
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectionProblem(f"{s.host}:{s.port} does not offer {exc}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectionProblem(
                f"{s.host}:{s.port} refused the login ({exc.smtp_code}); check SMTP_USER and "
                "SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectionProblem(
                f"{s.host}:{s.port} refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectionProblem(f"TLS with {s.host}:{s.port} failed: {exc.reason}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionProblem(
                f"cannot reach the SMTP server {s.host}:{s.port}: {_describe(exc)}"
            ) from None
        self.client = client
        return self

    def send(self, message: EmailMessage, sender: str, recipient: str) -> Outcome:
        """Send one message; ConnectionProblem if the session itself broke."""
        if self.client is None:
            raise ConnectionProblem("not connected")
        try:
            refused = self.client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            self._reset()
            return Outcome.refused(code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset()
            return Outcome.refused(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected as exc:
            self.close()
            raise ConnectionProblem(f"the SMTP server closed the connection: {exc}") from None
        except smtplib.SMTPNotSupportedError:
            # An international address the server cannot take: retrying will not help.
            self._reset()
            return Outcome(False, True, "the server does not accept this address (no SMTPUTF8)")
        except smtplib.SMTPResponseException as exc:
            self._reset()
            return Outcome.refused(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise ConnectionProblem(f"the SMTP session failed: {_describe(exc)}") from None
        if refused:
            code, text = next(iter(refused.values()))
            return Outcome.refused(code, text)
        return Outcome.accepted()

    def _reset(self) -> None:
        try:
            if self.client is not None:
                self.client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            _close_quietly(client)

    def __enter__(self) -> SmtpConnection:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _close_quietly(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        try:
            client.close()
        except OSError:
            pass


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
