"""The local mailbox: a real SMTP sink and its JSON API in its own process, as make run runs it."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import smtplib
import subprocess
import sys
from email.message import EmailMessage

import pytest

from shared.rpc import rpc_client
from shared.testing import free_port, wait_for

pytestmark = pytest.mark.integration


class MailboxProcess:
    def __init__(self, directory) -> None:
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.notifications.mailbox",
                "--smtp-port",
                str(self.smtp_port),
                "--http-port",
                str(self.http_port),
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "ENV": "development"},
        )
        wait_for(lambda: self.get("/health")[0] == 200, timeout=15, what="the mailbox")

    def request(self, method: str, path: str, host: str | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        try:
            headers = {"Host": host} if host else {}
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type", "")
        finally:
            conn.close()

    def get(self, path: str, host: str | None = None) -> tuple[int, object]:
        status, body, content_type = self.request("GET", path, host)
        return status, json.loads(body) if "json" in content_type else body

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        message = EmailMessage()
        message["From"] = "City <no-reply@muniportal.example>"
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=5) as client:
            client.send_message(message)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory):
    box = MailboxProcess(tmp_path_factory.mktemp("mailbox"))
    yield box
    box.stop()


def test_a_captured_message_is_served_with_its_parts_and_links(mailbox):
    link = "http://localhost:8000/verify-email?token=abc123"
    mailbox.send(
        "ana@example.org",
        "Verify your email address",
        f"Hello,\n\nVerify:\n{link}\n\nor see https://www.example.org.",
        f'<p><a href="{link.replace("&", "&amp;")}">Verify</a></p>',
    )
    status, messages = mailbox.get("/messages?to=ana@example.org")
    assert status == 200
    message = messages[0]
    assert message["from"] == "City <no-reply@muniportal.example>"
    assert message["to"] == "ana@example.org"
    assert message["subject"] == "Verify your email address"
    assert message["date"] == "2026-11-22T10:00:00+00:00"
    assert link in message["text"]
    assert message["html"] == f'<p><a href="{link}">Verify</a></p>\n'
    assert message["links"] == [link, "https://www.example.org"]
    assert message["envelope_to"] == ["ana@example.org"]

    status, one = mailbox.get(f"/messages/{message['id']}")
    assert status == 200 and one == message
    status, raw, content_type = mailbox.request("GET", f"/messages/{message['id']}/raw")
    assert status == 200 and content_type == "message/rfc822" and b"Subject: Verify" in raw


def test_newest_first_filter_limit_and_deletion(mailbox):
    for n in range(3):
        mailbox.send("ben@example.org", f"note {n}", f"note {n}")
    status, messages = mailbox.get("/messages?to=ben@example.org&limit=2")
    assert status == 200 and [m["subject"] for m in messages] == ["note 2", "note 1"]
    assert messages[0]["html"] is None  # a text-only message has no HTML part

    status, _, _ = mailbox.request("DELETE", f"/messages/{messages[0]['id']}")
    assert status == 200
    assert [m["subject"] for m in mailbox.get("/messages?to=ben@example.org")[1]] == [
        "note 1",
        "note 0",
    ]
    assert mailbox.get(f"/messages/{messages[0]['id']}")[0] == 404
    status, body, _ = mailbox.request("DELETE", "/messages")
    assert status == 200 and json.loads(body)["deleted"] >= 2
    assert mailbox.get("/messages")[1] == []


def test_bad_requests_get_clear_json_errors(mailbox):
    assert mailbox.get("/messages?limit=lots") == (
        400,
        {"status": 400, "title": "limit must be a whole number"},
    )
    assert mailbox.get("/messages/999999")[0] == 404
    assert mailbox.get("/nowhere")[0] == 404
    assert mailbox.request("POST", "/messages")[0] == 405


def test_only_requests_for_localhost_are_answered(mailbox):
    # A page on another site that rebinds its name to 127.0.0.1 must not read the links.
    status, body = mailbox.get("/messages", host="attacker.example:8026")
    assert status == 403 and body["title"] == "the mailbox answers only to localhost"
    assert mailbox.get("/messages", host=f"localhost:{mailbox.http_port}")[0] == 200


def test_the_mailbox_refuses_to_run_in_production(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "services.notifications.mailbox", "--dir", str(tmp_path)],
        env={**os.environ, "ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "muniportal mailbox: refusing to run with ENV=production"


def test_the_service_delivers_to_the_mailbox_and_the_link_is_clickable(
    mailbox, start_notifications, amqp_uri
):
    start_notifications("sqlite", SMTP_HOST="127.0.0.1", SMTP_PORT=mailbox.smtp_port)
    address = "new-resident@example.org"
    link = f"https://portal.example.test/verify-email?token={secrets.token_urlsafe(32)}"
    with rpc_client(amqp_uri) as cluster:
        cluster.notifications.send_secure_email(
            kind="verify_email",
            to=address,
            context={"display_user_id": "newbie"},
            secret_url=link,
            idempotency_key=f"mailbox:{link}",
        )
    message = wait_for(
        lambda: next(iter(mailbox.get(f"/messages?to={address}")[1]), None),
        timeout=15,
        what="the verification email in the mailbox",
    )
    assert message["subject"].startswith("Verify your email address")
    assert link in message["links"]
    assert f'href="{link}"' in message["html"]
