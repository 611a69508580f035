"""Secure mail waits in memory while notifications is down, and goes out when it is back."""

import eventlet
import pytest

from services.identity.mail import MailOutbox, SecureEmail
from shared.testing import wait_for
from tests.identity.conftest import PUBLIC_URL, body_of, notifications_config

pytestmark = pytest.mark.integration
STOPS_THE_SERVICE = True  # runs last among the identity tests (see conftest)


def test_a_link_is_delivered_once_notifications_answers(
    amqp_uri, smtp, rigs, container_factory, tmp_path
):
    from services.notifications.service import NotificationsService

    rigs.stop()  # notifications must be down to begin with
    outbox = MailOutbox(amqp_uri, timeout=1, attempts=8)
    worker = eventlet.spawn(outbox.run)
    url = f"{PUBLIC_URL}/verify-email?token={'T' * 43}"
    outbox.send(SecureEmail("verify_email", "late@example.org", {}, url, "identity-test-1"))
    try:
        wait_for(lambda: outbox.failed_attempts >= 1, what="a first attempt to fail")
        assert not [m for m in smtp.messages() if "late@example.org" in str(m["To"])]
        config = notifications_config(amqp_uri, f"sqlite:///{tmp_path / 'n.db'}", smtp)
        notifications = container_factory(NotificationsService, config)
        notifications.start()
        mail = smtp.wait_for_message(lambda m: "late@example.org" in str(m["To"]), timeout=30)
        assert url in body_of(mail)
        wait_for(lambda: outbox.delivered == 1, what="the outbox to count the delivery")
        assert outbox.dropped == 0
    finally:
        outbox.stop()
        worker.wait()


def test_a_graceful_stop_gives_a_waiting_link_one_last_attempt(
    amqp_uri, smtp, rigs, container_factory, tmp_path
):
    from services.notifications.service import NotificationsService

    rigs.stop()
    outbox = MailOutbox(amqp_uri, timeout=1, attempts=8)
    worker = eventlet.spawn(outbox.run)
    url = f"{PUBLIC_URL}/verify-email?token={'S' * 43}"
    outbox.send(SecureEmail("verify_email", "draining@example.org", {}, url, "identity-test-2"))
    # After four failures (0.5 + 1 + 2 s apart) the next retry is 8 s away.
    wait_for(lambda: outbox.failed_attempts >= 4, timeout=20, what="four attempts to fail")
    config = notifications_config(amqp_uri, f"sqlite:///{tmp_path / 'n.db'}", smtp)
    notifications = container_factory(NotificationsService, config)
    notifications.start()
    outbox.stop()  # SIGTERM: the retry waiting its turn goes now, not never
    worker.wait()
    assert outbox.delivered == 1 and outbox.dropped == 0
    mail = smtp.wait_for_message(lambda m: "draining@example.org" in str(m["To"]), timeout=30)
    assert url in body_of(mail)
