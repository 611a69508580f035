"""An SMTP outage, and a service restart in the middle of it: every message is delivered
exactly once when the server comes back."""

from __future__ import annotations

import secrets

import pytest

from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.notifications.conftest import links_in, unique_email

pytestmark = pytest.mark.integration

# Attempts keep going for ~13 s here: this test's stand-in for "ten minutes" of outage
# (the production policy is checked in test_domain.py).
LONG_WINDOW = {"MAIL_RETRY_BASE": 0.2, "MAIL_RETRY_MAX": 2.0, "MAIL_MAX_ATTEMPTS": 10}


def test_outage_and_restart_lose_nothing_and_send_each_message_once(
    start_notifications, smtp, amqp_uri
):
    svc = start_notifications("sqlite", **LONG_WINDOW)
    smtp.stop()
    sent = {}
    with rpc_client(amqp_uri) as cluster:
        for i in range(12):
            address = unique_email(f"outage{i}")
            link = f"https://portal.example.test/verify-email?token={secrets.token_urlsafe(32)}"
            result = cluster.notifications.send_secure_email(
                kind="verify_email",
                to=address,
                context={},
                secret_url=link,
                idempotency_key=f"outage:{address}",
            )
            sent[address] = (result["message_id"], link)

    def all_deferred_some_twice():
        rows = [svc.messages_to(a)[0] for a in sent]
        return all(r["status"] == "deferred" for r in rows) and any(
            r["total_attempts"] >= 2 for r in rows
        )

    wait_for(all_deferred_some_twice, timeout=15, what="every message deferred by the outage")
    assert all("cannot reach the SMTP server" in svc.messages_to(a)[0]["last_error"] for a in sent)

    # The service goes down too; a new one takes over the same store (and the same key).
    svc.container.stop()
    smtp.start()
    again = start_notifications(
        database_url=svc.database_url, MAIL_SPOOL_KEY=svc.config["MAIL_SPOOL_KEY"], **LONG_WINDOW
    )
    wait_for(
        lambda: all(again.messages_to(a)[0]["status"] == "sent" for a in sent),
        timeout=20,
        what="every message sent after the outage",
    )
    delivered = [m for m in smtp.messages() if m["To"] in sent]
    assert sorted(m["To"] for m in delivered) == sorted(sent)  # each exactly once
    assert len({m["Message-ID"] for m in delivered}) == len(sent)
    for message in delivered:
        assert links_in(message) == [sent[message["To"]][1]]
