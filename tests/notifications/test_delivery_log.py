"""The delivery log on PostgreSQL: 4xx defers with backoff, 5xx fails at once, the last attempt
parks the message, and staff list, retry and drop with `muniportal-ops mail`."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
import sqlalchemy as sa

from services.notifications.spool import secure_spool
from shared.ops import cli
from shared.rpc import rpc_client
from shared.testing import wait_for
from tests.notifications.conftest import links_in, to, unique_email

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(start_notifications):
    # Six attempts over ~4 s: room for the tests to act between them on a busy machine.
    return start_notifications(
        "postgresql", MAIL_RETRY_BASE=0.3, MAIL_RETRY_MAX=1.0, MAIL_MAX_ATTEMPTS=6
    )


@pytest.fixture
def ops(svc, monkeypatch, capsys):
    """Run `muniportal-ops ...` against the service's database; returns (status, output)."""
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", svc.database_url)
    monkeypatch.setenv("USER", "clerk")

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def smtp_mode(smtp):
    """Switch the SMTP server's answers for one test; always back to ok afterwards."""
    yield smtp.set_mode
    smtp.set_mode("ok")


def queue_secure(amqp_uri, address: str) -> tuple[str, str]:
    link = f"https://portal.example.test/verify-email?token={secrets.token_urlsafe(32)}"
    with rpc_client(amqp_uri) as cluster:
        result = cluster.notifications.send_secure_email(
            kind="verify_email",
            to=address,
            context={},
            secret_url=link,
            idempotency_key=f"log:{address}",
        )
    return result["message_id"], link


def history(svc, message_id: str) -> list:
    return svc.store.events.read_stream(f"message-{message_id}")


def test_a_4xx_is_deferred_with_growing_backoff_then_delivered_once(svc, smtp, smtp_mode, amqp_uri):
    smtp_mode("tempfail")
    address = unique_email("tempfail")
    message_id, link = queue_secure(amqp_uri, address)
    row = svc.wait_status(message_id, "deferred")
    assert row["last_error"].startswith("451")
    # Wait for the third refusal, then let a later attempt through.
    wait_for(
        lambda: len([e for e in history(svc, message_id) if e.type == "EmailDeferred"]) >= 3,
        what="three deferrals",
    )
    smtp_mode("ok")
    svc.wait_status(message_id, "sent")
    deferrals = [e for e in history(svc, message_id) if e.type == "EmailDeferred"]
    waits = [
        (dt.datetime.fromisoformat(e.data["next_attempt_at"]) - e.occurred_at).total_seconds()
        for e in deferrals
    ]
    assert waits[:3] == pytest.approx([0.3, 0.6, 1.0], abs=0.05)  # doubled, then capped
    assert [m for m in smtp.messages() if m["To"] == address].__len__() == 1
    assert links_in(smtp.wait_for_message(to(address))) == [link]


def test_a_5xx_fails_at_once_is_listed_and_staff_can_retry_it(svc, smtp, smtp_mode, amqp_uri, ops):
    smtp_mode("permfail")
    address = unique_email("permfail")
    message_id, link = queue_secure(amqp_uri, address)
    row = svc.wait_status(message_id, "failed")
    assert row["total_attempts"] == 1  # no retry after a permanent refusal
    assert row["last_error"].startswith("550")

    status, out, _ = ops("mail", "list", "--status", "failed", "--json")
    assert status == 0
    listed = {m["message_id"]: m for m in json.loads(out)}
    assert listed[message_id]["to"] == address
    assert listed[message_id]["status"] == "failed"
    assert "token" not in out  # the log never shows the link

    smtp_mode("ok")
    status, out, _ = ops("mail", "retry", message_id)
    assert status == 0 and "retrying 1 message" in out
    svc.wait_status(message_id, "sent")
    assert links_in(smtp.wait_for_message(to(address))) == [link]
    retried = [e for e in history(svc, message_id) if e.type == "EmailRetried"]
    assert retried[0].data["by"] == "staff:clerk"
    assert retried[0].actor == "staff:clerk"


def test_after_the_last_attempt_the_message_is_parked_and_can_be_dropped(
    svc, smtp, smtp_mode, amqp_uri, ops
):
    smtp_mode("tempfail")
    address = unique_email("parked")
    message_id, _ = queue_secure(amqp_uri, address)
    row = svc.wait_status(message_id, "failed", timeout=20)
    assert row["total_attempts"] == 6
    assert [e.type for e in history(svc, message_id)] == [
        "EmailQueued",
        *["EmailDeferred"] * 5,
        "EmailFailed",
    ]
    status, out, _ = ops("mail", "list", "--status", "failed")
    assert status == 0 and message_id in out

    status, out, _ = ops("mail", "drop", message_id, "--reason", "resident asked for a new link")
    assert status == 0
    assert svc.wait_status(message_id, "given_up")["last_error"] == "resident asked for a new link"
    with svc.store.read() as conn:
        held = conn.execute(
            sa.select(sa.func.count()).where(secure_spool.c.message_id == message_id)
        ).scalar()
    assert held == 0  # the link is forgotten

    # The server accepts again: a later message arrives, the dropped one never does.
    smtp_mode("ok")
    later = unique_email("after-drop")
    later_id, _ = queue_secure(amqp_uri, later)
    smtp.wait_for_message(to(later))
    assert svc.message_status(later_id) in ("sent", "queued")
    assert [m for m in smtp.messages() if m["To"] == address] == []
    status, _, err = ops("mail", "retry", message_id)
    assert status == 2 and "given_up" in err


def test_ops_mail_errors_are_one_line_with_status_2(svc, ops):
    status, _, err = ops("mail", "retry", "0f0f0f0f-0000-4000-8000-000000000000")
    assert status == 2 and err.strip().count("\n") == 0 and "no message" in err
    status, _, err = ops("mail", "retry", "not-a-message-id")
    assert status == 2 and "no message" in err
    status, _, err = ops("mail", "retry")
    assert status == 2 and "--all-failed" in err
