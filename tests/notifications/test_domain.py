"""Unit tests: the message life cycle, backoff, settings, the spool's encryption, rendering."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from services.notifications.domain.kinds import KINDS
from services.notifications.domain.message import (
    Message,
    MessageNotSendable,
    RetryPolicy,
    message_id_for,
)
from services.notifications.rendering import render, render_subject
from services.notifications.settings import Settings, SettingsError, SmtpSettings
from services.notifications.spool import SecretUnavailable, Spool, ensure_table, load_cipher

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy(max_attempts=4, base_seconds=30, max_seconds=100, jitter=0)


def queued(kind="password_changed") -> Message:
    message = Message(message_id_for("test", kind))
    message.queue(
        kind=kind, to="ana@example.org", subject="s", city="demo", context={"display_user_id": "a"}
    )
    return message


def test_the_default_policy_rides_out_a_ten_minute_outage():
    policy = RetryPolicy()
    # Time from the first attempt to the last, with the jitter at its shortest.
    window = sum(policy.delay(n, spread=0.0) for n in range(1, policy.max_attempts))
    assert window > 10 * 60


def test_backoff_doubles_then_caps_and_jitter_stays_within_bounds():
    assert [POLICY.delay(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]
    jittery = RetryPolicy(base_seconds=100, max_seconds=1000, jitter=0.1)
    assert jittery.delay(1, spread=0.0) == pytest.approx(90)
    assert jittery.delay(1, spread=1.0) == pytest.approx(110)


def test_temporary_failures_defer_until_the_last_attempt_then_park():
    message = queued()
    for attempt in (1, 2, 3):
        message.attempt_failed(error="451 busy", permanent=False, now=NOW, policy=POLICY, spread=0)
        assert message.status == "deferred" and message.attempts == attempt
    message.attempt_failed(error="451 busy", permanent=False, now=NOW, policy=POLICY, spread=0)
    assert message.status == "failed"
    types = [e.type for e in message.pending_events()]
    assert types == [
        "EmailQueued",
        "EmailDeferred",
        "EmailDeferred",
        "EmailDeferred",
        "EmailFailed",
    ]
    deferred = message.pending_events()[1]
    assert deferred.data["next_attempt_at"] == (NOW + dt.timedelta(seconds=30)).isoformat()


def test_a_permanent_refusal_fails_at_once_and_a_retry_starts_a_new_round():
    message = queued()
    message.attempt_failed(
        error="550 no such user", permanent=True, now=NOW, policy=POLICY, spread=0
    )
    assert message.status == "failed" and message.attempts == 1
    message.retry(by="staff:clerk")
    assert message.status == "queued" and message.attempts == 0 and message.total_attempts == 1
    message.sent(at=NOW)
    assert message.status == "sent"
    with pytest.raises(MessageNotSendable):
        message.retry(by="staff:clerk")
    with pytest.raises(MessageNotSendable):
        message.give_up(reason="x", by="staff:clerk")


def test_a_dropped_message_cannot_be_attempted_again():
    message = queued()
    message.give_up(reason="dropped", by="staff:clerk")
    assert message.status == "given_up"
    with pytest.raises(MessageNotSendable):
        message.attempt_failed(error="x", permanent=False, now=NOW, policy=POLICY, spread=0)


def test_a_message_is_queued_once():
    message = queued()
    with pytest.raises(MessageNotSendable):
        message.queue(
            kind="password_changed", to="b@example.org", subject="s", city="demo", context={}
        )


def test_message_ids_are_stable_per_trigger():
    assert message_id_for("event", "e1", "kind") == message_id_for("event", "e1", "kind")
    assert message_id_for("event", "e1", "kind") != message_id_for("event", "e2", "kind")


def test_production_requires_a_smtp_host_and_a_spool_key():
    with pytest.raises(SettingsError, match="SMTP_HOST"):
        SmtpSettings.from_config({"ENV": "production"})
    with pytest.raises(SettingsError, match="MAIL_SPOOL_KEY"):
        load_cipher({"ENV": "production"})
    dev = SmtpSettings.from_config({"ENV": "development"})
    assert (dev.host, dev.port, dev.security) == ("127.0.0.1", 8025, "none")


def test_bad_settings_name_the_setting():
    with pytest.raises(SettingsError, match="SMTP_SECURITY"):
        SmtpSettings.from_config({"SMTP_HOST": "mx", "SMTP_SECURITY": "ssl3"})
    with pytest.raises(SettingsError, match="SMTP_PORT"):
        SmtpSettings.from_config({"SMTP_HOST": "mx", "SMTP_PORT": "many"})
    with pytest.raises(SettingsError, match="MAIL_SPOOL_KEY"):
        load_cipher({"MAIL_SPOOL_KEY": "not-a-key"})


def test_a_single_city_deployment_overrides_the_sender_and_contact_block():
    settings = Settings.from_config(
        {
            "CITY_NAME": "City of Naperville",
            "MAIL_FROM": "Naperville Finance <css@naperville.example>",
            "CITY_HOURS": "Mon, Tue, Thu, Fri 7:30 am to 5:00 pm; Wed 10:00 am to 2:00 pm",
        }
    )
    city = settings.city(None)
    assert city.name == "City of Naperville"
    assert city.sender_address == "css@naperville.example"
    assert city.hours == ("Mon, Tue, Thu, Fri 7:30 am to 5:00 pm", "Wed 10:00 am to 2:00 pm")
    text = render("password_changed", {"when": NOW.isoformat()}, city).text
    assert "Wed 10:00 am to 2:00 pm" in text


def test_the_spool_encrypts_expires_and_survives_key_rotation(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'spool.db'}")
    ensure_table(engine)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    secret = "https://portal.example/reset?token=abcdefghijklmnop"
    with engine.begin() as conn:
        Spool(load_cipher({"MAIL_SPOOL_KEY": old_key}), 3600).put(conn, "m1", secret, NOW)
        stored = conn.execute(sa.text("SELECT ciphertext FROM secure_spool")).scalar()
        assert "token" not in stored and secret not in stored
        rotated = Spool(load_cipher({"MAIL_SPOOL_KEY": f"{new_key},{old_key}"}), 3600)
        assert rotated.get(conn, "m1", NOW) == secret
        with pytest.raises(SecretUnavailable, match="expired"):
            rotated.get(conn, "m1", NOW + dt.timedelta(hours=2))
        assert Spool.expired(conn, NOW + dt.timedelta(hours=2)) == ["m1"]
        with pytest.raises(SecretUnavailable, match="decrypted"):
            Spool(load_cipher({"MAIL_SPOOL_KEY": new_key}), 3600).get(conn, "m1", NOW)
        Spool.purge(conn, "m1")
        with pytest.raises(SecretUnavailable, match="no longer held"):
            rotated.get(conn, "m1", NOW)


def test_every_kind_renders_a_text_and_an_html_part_with_the_city():
    city = Settings.from_config({}).city(None)
    context = {
        "display_user_id": "ana",
        "when": NOW.isoformat(),
        "new_email_masked": "a***@example.org",
        "account_numbers": ["28624"],
        "bill_number": "98465",
        "account_number": "28624",
        "due_date": "2017-01-23",
        "amount_due": "127.11",
        "confirmation_number": "C-1",
        "amount_total": "127.11",
        "allocations": [{"bill_number": "98465", "account_number": "28624", "amount": "127.11"}],
        "amount": "127.11",
        "charge_date": "2017-01-20",
        "action_url": "https://portal.example/x",
    }
    for name, kind in KINDS.items():
        secret = "https://portal.example/secret?token=t" if kind.secure else None
        rendered = render(name, context, city, to="ana@example.org", secret_url=secret)
        assert rendered.subject and "\n" not in rendered.subject
        assert city.name in rendered.text and city.name in rendered.html, name
        assert "Monday to Friday" in rendered.text and "Monday to Friday" in rendered.html
        assert rendered.html.lstrip().startswith("<!DOCTYPE html>")


def test_subjects_cannot_carry_a_header_injection():
    city = Settings.from_config({}).city(None)
    subject = render_subject("bill_ready", {"bill_number": "1\r\nBcc: eve@example.org"}, city)
    assert "\n" not in subject and "\r" not in subject


def test_money_is_formatted_exactly():
    from services.notifications.rendering import money

    assert money("1234.5") == "$1,234.50"
    assert money("0.1") == "$0.10"
    assert money("-3") == "-$3.00"


def test_the_demo_announcements_load_once(tmp_path):
    from services.notifications import demo, handlers
    from services.notifications.projections import PROJECTIONS
    from shared.uow import ServiceStore

    store = ServiceStore("notifications", f"sqlite:///{tmp_path / 'n.db'}", PROJECTIONS)
    store.migrate()
    assert demo.load(store) == {"announcements_posted": 2}
    assert demo.load(store) == {"announcements_posted": 0}
    today = dt.date(2026, 11, 22)
    guests = handlers.active_announcements(store, signed_in=False, today=today)
    residents = handlers.active_announcements(store, signed_in=True, today=today)
    assert [a["title"] for a in guests] == ["Welcome to the Citizen Self Service portal"]
    assert len(residents) == 2
    store.dispose()
