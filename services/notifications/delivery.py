"""Getting queued emails out: the outbox handlers write to, and the worker that sends.

Handlers never send. They record an `EmailQueued` event through the `Outbox`
in the same transaction that claims the triggering event (or answers the
RPC); that is what makes "once per event" hold. The `Mailer` dependency is a
`SideEffect`: for a replayed event the handler gets a stand-in, so a replay
queues nothing.

The delivery worker is a singleton (a `Lease`): it reads the delivery log
(the ``messages`` projection) for what is due, renders it, sends it over one
SMTP session per batch, and records the outcome (sent, deferred with backoff,
failed and parked, given up) as events. A secure message's link is read from
the encrypted spool just before sending and purged when it is delivered or
given up.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from services.notifications import spool as spool_mod
from services.notifications.domain.message import Message, MessageNotSendable, message_id_for
from services.notifications.projections import messages
from services.notifications.rendering import TemplateProblem, build_email, render, render_subject
from services.notifications.settings import Settings, SmtpSettings
from services.notifications.smtp import ConnectionProblem, SmtpConnection
from services.notifications.spool import SecretUnavailable, Spool
from services.notifications.triggers import Draft, Lookup, drafts_for
from shared.events import Envelope
from shared.lease import Lease
from shared.nameko import SideEffect, Store
from shared.uow import ServiceStore, UnitOfWork

log = logging.getLogger(__name__)

SYSTEM = "system:mail-delivery"
LEASE_NAME = "mail-delivery"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


class Outbox:
    """What a worker uses to queue email; recorded in the caller's unit of work."""

    def __init__(self, settings: Settings, spool: Spool, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.spool = spool
        self._wake = wake

    def notify(self, uow: UnitOfWork, event: Envelope) -> list[str]:
        """Queue every email the event warrants; returns the message ids."""
        drafts = drafts_for(event, Lookup(uow.conn), self.settings)
        trigger = {"source": event.source, "type": event.type, "event_id": event.event_id}
        ids = []
        for draft in drafts:
            message_id = message_id_for(
                "event", event.source, event.event_id, draft.kind, draft.to.lower()
            )
            if self._queue(uow, message_id, draft, trigger=trigger):
                ids.append(message_id)
        return ids

    def queue_secure(
        self,
        uow: UnitOfWork,
        *,
        kind: str,
        to: str,
        context: dict[str, Any],
        secret_url: str,
        idempotency_key: str,
    ) -> tuple[str, bool]:
        """Queue a secret-bearing email; (message_id, False) when the key was seen before."""
        message_id = message_id_for("secure", idempotency_key)
        draft = Draft(kind, to, context)
        created = self._queue(uow, message_id, draft, idempotency_key=idempotency_key)
        if created:
            self.spool.put(uow.conn, message_id, secret_url, utcnow())
        return message_id, created

    def _queue(
        self,
        uow: UnitOfWork,
        message_id: str,
        draft: Draft,
        *,
        trigger: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        message = uow.load(Message, message_id)
        if message.exists:
            return False
        city = self.settings.city(draft.context.get("city"))
        message.queue(
            kind=draft.kind,
            to=draft.to,
            subject=render_subject(draft.kind, draft.context, city),
            city=city.id,
            context=draft.context,
            trigger=trigger,
            idempotency_key=idempotency_key,
        )
        return True

    def wake(self) -> None:
        self._wake()


class Delivery:
    """Sends what is due and records each outcome. One instance runs at a time (a lease)."""

    def __init__(
        self,
        store: ServiceStore,
        settings: Settings,
        smtp: SmtpSettings,
        spool: Spool,
        *,
        batch_size: int = 50,
        clock: Callable[[], dt.datetime] = utcnow,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.smtp = smtp
        self.spool = spool
        self.batch_size = batch_size
        self.clock = clock
        self.spread = spread

    # -- what is due ---------------------------------------------------------------------

    def due(self, now: dt.datetime) -> list[str]:
        m = messages
        query = (
            sa.select(m.c.message_id)
            .where(m.c.status.in_(("queued", "deferred")), m.c.next_attempt_at <= now)
            .order_by(m.c.next_attempt_at, m.c.created_at)
            .limit(self.batch_size)
        )
        with self.store.read() as conn:
            return [row.message_id for row in conn.execute(query)]

    def seconds_until_next(self, now: dt.datetime) -> float | None:
        m = messages
        query = sa.select(sa.func.min(m.c.next_attempt_at)).where(
            m.c.status.in_(("queued", "deferred"))
        )
        with self.store.read() as conn:
            nxt = _aware(conn.execute(query).scalar())
        if nxt is None:
            return None
        return max(0.0, (nxt - now).total_seconds())

    # -- one round -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Expire old secrets, then send one batch of due messages; returns how many were tried."""
        now = self.clock()
        self.expire_secrets(now)
        ids = self.due(now)
        if not ids:
            return 0
        session = SmtpConnection(self.smtp)
        try:
            session.open()
        except ConnectionProblem as exc:
            log.warning("SMTP unavailable, deferring %d message(s): %s", len(ids), exc)
            for message_id in ids:
                self._failed_attempt(message_id, str(exc), permanent=False)
            return len(ids)
        try:
            for message_id in ids:
                self._deliver(session, message_id)
        finally:
            session.close()
        return len(ids)

    def _deliver(self, session: SmtpConnection, message_id: str) -> None:
        now = self.clock()
        message = Message.from_events(
            message_id, self.store.events.read_stream(Message.stream_id_for(message_id))
        )
        if not message.sendable:
            return
        secret = None
        if message.secure:
            try:
                with self.store.read() as conn:
                    secret = self.spool.get(conn, message_id, now)
            except SecretUnavailable as exc:
                self._give_up(message_id, str(exc))
                return
        city = self.settings.city(message.city)
        try:
            rendered = render(message.kind, message.context, city, to=message.to, secret_url=secret)
            mail = build_email(
                rendered,
                message_id=message_id,
                to=message.to,
                city=city,
                now=now,
                preferences_url=message.context.get("preferences_url"),
            )
        except (TemplateProblem, ValueError, KeyError) as exc:
            # A template or address bug never fixes itself: park it for staff at once.
            detail = str(exc) if isinstance(exc, TemplateProblem) else type(exc).__name__
            self._failed_attempt(message_id, f"cannot build the email: {detail}", permanent=True)
            return
        finally:
            secret = None
        try:
            if session.client is None:
                session.open()
            outcome = session.send(mail, city.sender_address, message.to)
        except ConnectionProblem as exc:
            self._failed_attempt(message_id, str(exc), permanent=False)
            return
        if outcome.ok:
            self._sent(message_id, outcome.detail)
        else:
            log.info(
                "message %s refused (%s): %s",
                message_id,
                "permanent" if outcome.permanent else "temporary",
                outcome.detail,
            )
            self._failed_attempt(message_id, outcome.detail, permanent=outcome.permanent)

    # -- recording outcomes --------------------------------------------------------------

    def _sent(self, message_id: str, reply: str) -> None:
        def work(uow: UnitOfWork) -> None:
            uow.get(Message, message_id).sent(at=self.clock(), reply=reply)
            Spool.purge(uow.conn, message_id)

        self.store.run(work, actor=SYSTEM)
        log.info("message %s sent", message_id)

    def _failed_attempt(self, message_id: str, error: str, *, permanent: bool) -> None:
        def work(uow: UnitOfWork) -> None:
            message = uow.get(Message, message_id)
            if not message.sendable:
                return  # dropped or retried by staff meanwhile
            message.attempt_failed(
                error=error,
                permanent=permanent,
                now=self.clock(),
                policy=self.settings.retry,
                spread=self.spread(),
            )

        self.store.run(work, actor=SYSTEM)

    def _give_up(self, message_id: str, reason: str) -> None:
        def work(uow: UnitOfWork) -> None:
            message = uow.get(Message, message_id)
            try:
                message.give_up(reason=reason, by=SYSTEM)
            except MessageNotSendable:
                pass
            Spool.purge(uow.conn, message_id)

        self.store.run(work, actor=SYSTEM)
        log.warning("message %s given up: %s", message_id, reason)

    def expire_secrets(self, now: dt.datetime) -> int:
        """Give up secure messages whose link expired undelivered, and forget those links."""
        with self.store.read() as conn:
            expired = Spool.expired(conn, now)
        for message_id in expired:
            self._give_up(message_id, "the link expired before it could be delivered")
        return len(expired)


class Mailer(SideEffect):
    """Queues email for workers (a no-op stand-in during replays) and runs the delivery worker."""

    def __init__(self, *, batch_size: int = 50) -> None:
        self.batch_size = batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.delivery: Delivery | None = None
        self.outbox: Outbox | None = None

    def setup(self) -> None:
        config = self.container.config
        self.settings = Settings.from_config(config)
        self.smtp = SmtpSettings.from_config(config)
        self.spool = Spool(spool_mod.load_cipher(config), self.settings.secret_ttl)
        self.outbox = Outbox(self.settings, self.spool, self._wake.set)

    def start(self) -> None:
        store = _find_store(self.container)
        self.delivery = Delivery(
            store, self.settings, self.smtp, self.spool, batch_size=self.batch_size
        )
        store.events.on_append(self._wake.set)
        self.container.spawn_managed_thread(self._run)

    def _run(self) -> None:
        assert self.delivery is not None  # noqa: S101 - set in start()
        lease = Lease(self.delivery.store.events, LEASE_NAME)
        backoff = 0.5
        while not self._stopping.is_set():
            wait = self.settings.poll_interval
            try:
                if lease.try_acquire():
                    tried = self.delivery.run_once()
                    backoff = 0.5
                    if tried >= self.delivery.batch_size:
                        continue  # more may be due right now
                    nxt = self.delivery.seconds_until_next(utcnow())
                    if nxt is not None:
                        wait = min(wait, nxt)
                else:
                    wait = max(wait, 1.0)
            except Exception:
                log.exception("mail delivery failed; retrying in %.1fs", backoff)
                wait, backoff = backoff, min(backoff * 2, 30.0)
            self._wake.wait(wait)
            self._wake.clear()
        lease.release()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def kill(self) -> None:
        self.stop()

    def live(self, worker_ctx: Any) -> Outbox:
        assert self.outbox is not None  # noqa: S101 - set in setup()
        return self.outbox


def _find_store(container: Any) -> ServiceStore:
    for dependency in container.dependencies:
        if isinstance(dependency, Store) and dependency.store is not None:
            return dependency.store
    raise RuntimeError(f"{container.service_name} has no Store dependency")
