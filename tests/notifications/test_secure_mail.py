"""Secure email (verify, reset, unlock) over real SMTP: content, idempotency, and the secret's path.

One notifications service (SQLite) and one SMTP server serve the whole module.
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest
import sqlalchemy as sa

from services.notifications.spool import secure_spool
from shared.errors import InvalidInput
from shared.rpc import rpc_client
from tests.notifications.conftest import html_of, links_in, text_of, to, unique_email

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(start_notifications):
    return start_notifications("sqlite")


def secret_link(path: str = "verify-email") -> str:
    return f"https://portal.example.test/{path}?token={secrets.token_urlsafe(32)}"


def send(amqp_uri, **kwargs):
    with rpc_client(amqp_uri) as cluster:
        return cluster.notifications.send_secure_email(**kwargs)


@pytest.mark.parametrize(
    ("kind", "path", "subject", "phrase"),
    [
        ("verify_email", "verify-email", "Verify your email address", "expires in 24 hours"),
        ("reset_password", "reset-password", "Reset your", "expires in 60 minutes"),
        ("unlock_account", "unlock", "Unlock your", "too many unsuccessful sign-in attempts"),
    ],
)
def test_secure_email_arrives_with_its_link_in_text_and_html(
    svc, smtp, amqp_uri, kind, path, subject, phrase
):
    address = unique_email(kind)
    link = secret_link(path)
    result = send(
        amqp_uri,
        kind=kind,
        to=address,
        context={"display_user_id": "Ana.Lopez"},
        secret_url=link,
        idempotency_key=f"{kind}:{address}",
    )
    assert result["status"] == "queued" and result["duplicate"] is False

    message = smtp.wait_for_message(to(address), what=f"the {kind} email")
    assert message["From"] == "City of Pleasanton Utility Billing <no-reply@muniportal.example>"
    assert message["Subject"].startswith(subject)
    assert "City of Pleasanton (demo)" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    assert links_in(message) == [link]
    text = text_of(message)
    assert phrase in text
    assert "Ana.Lopez" in text
    # The city's contact block and business hours, in both parts.
    for part in (text, html_of(message)):
        assert "3333 Busch Road" in part
        assert "(925) 931-5500" in part
        assert "Monday to Friday, 7:00 am to 3:30 pm" in part
    assert f'href="{link}"' in html_of(message)
    assert svc.wait_status(result["message_id"], "sent")["attempts"] == 1


def test_html_part_escapes_what_the_caller_sent(svc, smtp, amqp_uri):
    address = unique_email("escape")
    send(
        amqp_uri,
        kind="verify_email",
        to=address,
        context={"display_user_id": "<script>alert(1)</script>"},
        secret_url=secret_link(),
        idempotency_key=f"escape:{address}",
    )
    html = html_of(smtp.wait_for_message(to(address)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_same_idempotency_key_sends_one_email(svc, smtp, amqp_uri):
    address = unique_email("twice")
    key = f"verify:{address}:1"
    first = send(
        amqp_uri, kind="verify_email", to=address, context={}, secret_url=secret_link(),
        idempotency_key=key,
    )  # fmt: skip
    svc.wait_status(first["message_id"], "sent")
    second = send(
        amqp_uri, kind="verify_email", to=address, context={}, secret_url=secret_link(),
        idempotency_key=key,
    )  # fmt: skip
    assert second == {"message_id": first["message_id"], "status": "sent", "duplicate": True}
    # A third, new key is a new email: proves the server would have shown a second one.
    third = send(
        amqp_uri, kind="verify_email", to=address, context={}, secret_url=secret_link(),
        idempotency_key=key + ":again",
    )  # fmt: skip
    svc.wait_status(third["message_id"], "sent")
    assert len([m for m in smtp.messages() if m["To"] == address]) == 2


def test_the_secret_link_never_lands_in_events_projections_or_logs(svc, smtp, amqp_uri, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="services.notifications")
    address = unique_email("secret")
    link = secret_link("reset-password")
    token = link.rsplit("=", 1)[1]
    result = send(
        amqp_uri,
        kind="reset_password",
        to=address,
        context={"display_user_id": "someone"},
        secret_url=link,
        idempotency_key=f"reset:{address}",
    )
    message = smtp.wait_for_message(to(address))
    assert token in text_of(message)  # delivered...
    svc.wait_status(result["message_id"], "sent")

    store = svc.store
    log_dump = json.dumps([e.to_wire() for e in store.events.read_all(0, 100000)])
    assert result["message_id"] in log_dump
    assert token not in log_dump
    with store.read() as conn:
        names = sa.inspect(conn).get_table_names()
        for name in names:
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).fetchall()
            assert token not in repr(rows), f"the token is in table {name}"
        # ...and forgotten once delivered.
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(secure_spool.c.message_id == result["message_id"])
            ).scalar()
            == 0
        )
    # The log did record this message's life, by its id only.
    assert any(result["message_id"] in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if token in r.getMessage()]


def test_an_undelivered_link_is_held_encrypted_and_purged_when_sent(svc, smtp, amqp_uri):
    address = unique_email("spool")
    link = secret_link("unlock")
    smtp.set_mode("tempfail")
    try:
        result = send(
            amqp_uri, kind="unlock_account", to=address, context={}, secret_url=link,
            idempotency_key=f"unlock:{address}",
        )  # fmt: skip
        svc.wait_status(result["message_id"], "deferred")
        with svc.store.read() as conn:
            row = conn.execute(
                sa.select(secure_spool).where(secure_spool.c.message_id == result["message_id"])
            ).first()
        assert row is not None
        assert link not in row.ciphertext and link.rsplit("=", 1)[1] not in row.ciphertext
    finally:
        smtp.set_mode("ok")
    svc.wait_status(result["message_id"], "sent")
    assert links_in(smtp.wait_for_message(to(address))) == [link]
    with svc.store.read() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(secure_spool.c.message_id == result["message_id"])
            ).scalar()
            == 0
        )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"kind": "bill_ready"}, "kind"),
        ({"to": "not-an-address"}, "to"),
        ({"to": "ana@example.org\r\nBcc: eve@example.org"}, "to"),
        ({"secret_url": "javascript:alert(1)"}, "secret_url"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"context": {"action_url": "https://evil.example"}}, "context"),
        ({"context": {"note": "x" * 501}}, "context"),
    ],
)
def test_bad_input_names_the_field_and_queues_nothing(svc, amqp_uri, override, field):
    address = unique_email("bad")
    payload = {
        "kind": "verify_email",
        "to": address,
        "context": {},
        "secret_url": secret_link(),
        "idempotency_key": f"bad:{address}",
        **override,
    }
    with pytest.raises(InvalidInput) as caught:
        send(amqp_uri, **payload)
    assert field in caught.value.errors
    assert svc.messages_to(payload["to"]) == []


def test_a_context_carrying_the_secret_is_refused(svc, amqp_uri):
    address = unique_email("leak")
    link = secret_link()
    with pytest.raises(InvalidInput) as caught:
        send(
            amqp_uri, kind="verify_email", to=address, context={"link": link},
            secret_url=link, idempotency_key=f"leak:{address}",
        )  # fmt: skip
    assert "secret" in caught.value.errors["context"]
    assert svc.messages_to(address) == []
