"""The test SMTP server is real: smtplib talks to it and its answers can be switched."""

import smtplib
from email.message import EmailMessage

import pytest


def _send(server, subject="hello"):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "city@example.org", "ana@example.org", subject
    msg.set_content("body")
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.send_message(msg)


def test_messages_are_captured_and_parsed(smtp_server):
    _send(smtp_server, "first")
    assert (
        smtp_server.wait_for_message(lambda m: m["Subject"] == "first")["To"] == "ana@example.org"
    )


def test_tempfail_permfail_and_outage(smtp_server):
    smtp_server.set_mode("tempfail")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        _send(smtp_server)
    assert caught.value.smtp_code == 451
    smtp_server.set_mode("permfail")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        _send(smtp_server)
    assert caught.value.smtp_code == 550
    smtp_server.set_mode("ok")
    smtp_server.stop()
    with pytest.raises(OSError):
        _send(smtp_server)
    smtp_server.start()
    _send(smtp_server, "after the outage")
    assert [m["Subject"] for m in smtp_server.messages()] == ["after the outage"]
