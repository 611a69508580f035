"""Each email triggered by another service's event: recipient, subject, link, preferences.

Events are published into the real RabbitMQ as identity, accounts, billing and payments
publish them. The service runs with one worker, so each queue is consumed strictly in
order: an email that arrives for a later "marker" event proves that the events before it
in the same queue were handled, which is how the tests show that something was NOT sent.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from services.notifications.projections import links, preferences, users
from shared.ops import cli
from shared.store import inbox_table
from shared.testing import wait_for
from tests.notifications.conftest import PUBLIC_URL, html_of, links_in, text_of, to, unique_email

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(start_notifications):
    return start_notifications("postgresql", max_workers=1)


class World:
    """Residents and accounts, made by publishing the events their services would."""

    def __init__(self, svc, producer, smtp) -> None:
        self.svc = svc
        self.producer = producer
        self.smtp = smtp
        self.versions: dict[str, int] = {}

    def _next(self, stream: str) -> int:
        self.versions[stream] = self.versions.get(stream, 0) + 1
        return self.versions[stream]

    def emit(self, source: str, event_type: str, data: dict, stream: str, **kwargs):
        return self.producer.emit(
            source, event_type, data, stream_id=stream, version=self._next(stream), **kwargs
        )

    def _row(self, table, **where):
        with self.svc.store.read() as conn:
            query = sa.select(table).where(*[table.c[k] == v for k, v in where.items()])
            return conn.execute(query).mappings().first()

    def user(
        self, verified: bool = True, display: str | None = None, user_id: str | None = None
    ) -> tuple[str, str]:
        user_id = user_id or f"u{uuid.uuid4().hex[:10]}"
        email = unique_email(user_id)
        stream = f"user-{user_id}"
        self.emit(
            "identity",
            "UserRegistered",
            {
                "user_id": user_id,
                "display_user_id": display or user_id.upper(),
                "email": email,
                "via": "password",
            },
            stream,
        )
        if verified:
            self.emit("identity", "EmailVerified", {"user_id": user_id, "email": email}, stream)
        wait_for(
            lambda: (
                (row := self._row(users, user_id=user_id)) and row["email_verified"] == verified
            ),
            what=f"notifications to learn user {user_id}",
        )
        return user_id, email

    def account(self) -> str:
        return str(uuid.uuid4().int % 10**8)

    def link(self, user_id: str, account: str) -> str:
        link_id = uuid.uuid4().hex
        self.emit(
            "accounts",
            "LinkCreated",
            {
                "link_id": link_id,
                "user_id": user_id,
                "type": "utility",
                "account_number": account,
                "customer_id": "405583",
                "via": "search",
            },
            f"links-{user_id}",
        )
        wait_for(lambda: self._row(links, link_id=link_id), what="the link")
        return link_id

    def unlink(self, user_id: str, account: str, link_id: str) -> None:
        self.emit(
            "accounts",
            "LinkRemoved",
            {"link_id": link_id, "user_id": user_id, "account_number": account},
            f"links-{user_id}",
        )
        wait_for(lambda: self._row(links, link_id=link_id)["removed"], what="the unlink")

    def prefs(self, account: str, paperless: bool, email_notices: bool) -> None:
        self.emit(
            "accounts",
            "PreferencesChanged",
            {"account_number": account, "paperless": paperless, "email_notices": email_notices},
            f"account-{account}",
        )
        wait_for(
            lambda: (
                (row := self._row(preferences, account_number=account))
                and (row["paperless"], row["email_notices"]) == (paperless, email_notices)
            ),
            what="the preferences",
        )

    def mail_to(self, address: str) -> list:
        return [m for m in self.smtp.messages() if m["To"] == address]

    def one_mail_to(self, address: str, what: str = "an email"):
        message = self.smtp.wait_for_message(to(address), what=f"{what} to {address}")
        return message

    def handled(self, event, consumer: str) -> None:
        def seen():
            with self.svc.store.read() as conn:
                query = sa.select(sa.func.count()).where(
                    inbox_table.c.consumer == f"notifications.{consumer}",
                    inbox_table.c.event_id == event.event_id,
                )
                return conn.execute(query).scalar()

        wait_for(seen, what=f"{consumer} to handle {event.type}")


@pytest.fixture(scope="module")
def world(svc, producer, smtp):
    return World(svc, producer, smtp)


# -- identity ------------------------------------------------------------------------------


def test_forgotten_user_id_goes_to_the_address_that_asked(world):
    user_id, email = world.user(display="Ana.Lopez")
    world.emit(
        "identity",
        "UserIdReminderRequested",
        {"user_id": user_id, "email": email},
        f"user-{user_id}",
    )
    message = world.one_mail_to(email)
    assert message["Subject"] == "Your City of Pleasanton (demo) portal user ID"
    assert "Ana.Lopez" in text_of(message)
    assert links_in(message) == [f"{PUBLIC_URL}/sign-in"]


@pytest.mark.parametrize(
    ("event_type", "subject", "link"),
    [
        ("PasswordChanged", "portal password was changed", "/forgot-password"),
        ("PasswordReset", "portal password was reset", "/sign-in"),
    ],
)
def test_changed_credentials_are_notified_to_the_user(world, event_type, subject, link):
    user_id, email = world.user()
    world.emit("identity", event_type, {"user_id": user_id}, f"user-{user_id}")
    message = world.one_mail_to(email)
    assert subject in message["Subject"]
    assert links_in(message) == [PUBLIC_URL + link]
    assert user_id.upper() in text_of(message)


def test_a_changed_email_is_notified_to_the_old_address_and_later_mail_goes_to_the_new(world):
    user_id, old = world.user()
    new = unique_email("new")
    world.emit(
        "identity",
        "EmailChanged",
        {"user_id": user_id, "old_email": old, "new_email": new},
        f"user-{user_id}",
    )
    message = world.one_mail_to(old)
    assert (
        "email address of your City of Pleasanton (demo) portal login changed"
        in (message["Subject"])
    )
    masked = new[0] + "***@example.org"
    assert masked in text_of(message) and masked in html_of(message)
    assert new not in text_of(message)  # only a hint of the new address
    assert links_in(message) == []  # "call us", not a link to click
    world.emit("identity", "PasswordChanged", {"user_id": user_id}, f"user-{user_id}")
    world.one_mail_to(new, "the next notice")
    assert len(world.mail_to(old)) == 1
    # The new address is the verified one now: account mail goes there too.
    account = world.account()
    world.link(user_id, account)
    world.prefs(account, paperless=True, email_notices=True)
    bill(world, account)
    world.smtp.wait_for_message(
        lambda m: m["To"] == new and "bill" in m["Subject"], what="the bill at the new address"
    )


def test_restored_links_after_re_registration_are_listed(world):
    user_id, email = world.user()
    world.emit(
        "identity",
        "LegacyAccountsClaimed",
        {"user_id": user_id, "legacy_ids": ["L-1", "L-2"], "account_numbers": ["28624", "31337"]},
        f"user-{user_id}",
    )
    message = world.one_mail_to(email)
    assert "accounts are linked again" in message["Subject"]
    assert "Account 28624" in text_of(message) and "Account 31337" in text_of(message)
    assert links_in(message) == [f"{PUBLIC_URL}/settings/links"]


def test_a_duplicate_event_sends_one_email(world):
    user_id, email = world.user()
    event = world.producer.envelope(
        "identity", "PasswordChanged", {"user_id": user_id}, stream_id=f"user-{user_id}", version=9
    )
    world.producer.publish(event, event, event)
    world.one_mail_to(email)
    # A marker in the same queue, after the copies: once its email is out, the copies
    # have been handled.
    marker_user, marker_email = world.user()
    world.emit("identity", "PasswordChanged", {"user_id": marker_user}, f"user-{marker_user}")
    world.one_mail_to(marker_email, "the marker")
    assert len(world.mail_to(email)) == 1
    assert len(world.svc.messages_to(email)) == 1


def test_a_notice_for_a_user_not_known_yet_is_parked_and_sent_when_retried(
    world, amqp_uri, monkeypatch, capsys
):
    user_id = f"late{uuid.uuid4().hex[:8]}"
    early = world.emit("identity", "PasswordChanged", {"user_id": user_id}, f"user-{user_id}")
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    queue = "evt-identity-PasswordChanged--notifications.on_password_changed"

    def parked() -> dict:
        capsys.readouterr()
        cli.main(["dead-letters", "notifications", "list", "--queue", queue, "--json"])
        return {m["message_id"]: m for m in json.loads(capsys.readouterr().out)}

    row = wait_for(lambda: parked().get(early.event_id), what="the notice to be parked")
    assert "no email known for user" in row["error"]
    _, email = world.user(user_id=user_id)  # identity's UserRegistered arrives late
    cli.main(["dead-letters", "notifications", "retry", "--id", early.event_id])
    message = world.one_mail_to(email, "the retried notice")
    assert "password was changed" in message["Subject"]


# -- billing: paperless --------------------------------------------------------------------


def bill(world, account: str, number: str | None = None, **extra):
    number = number or str(uuid.uuid4().int % 10**6)
    return world.emit(
        "billing",
        "BillIssued",
        {
            "bill_number": number,
            "bill_type": "UTILITY",
            "account_number": account,
            "customer_id": "405583",
            "statement_date": "2016-11-30",
            "due_date": "2017-01-23",
            "lines": [{"description": "PLEASANTON WATER FIXED CHARGE", "amount": "90.35"}],
            "previous_balance": "0.00",
            "payments": "0.00",
            "penalty": "0.00",
            "total": "127.11",
            "balance_due": "127.11",
            **extra,
        },
        f"bill-{number}",
    )


def test_a_new_bill_goes_to_the_verified_users_of_a_paperless_account_only(world):
    account = world.account()
    ana, ana_email = world.user()
    ben, ben_email = world.user()
    unverified, unverified_email = world.user(verified=False)
    gone, gone_email = world.user()
    for user in (ana, ben, unverified):
        world.link(user, account)
    world.unlink(gone, account, world.link(gone, account))

    printed = bill(world, account)  # no preference yet: printed bills, no email
    world.handled(printed, "on_bill_issued")
    world.prefs(account, paperless=True, email_notices=True)
    issued = bill(world, account, "98465" + uuid.uuid4().hex[:4])

    for address in (ana_email, ben_email):
        message = world.one_mail_to(address, "the bill")
        assert message["Subject"] == (
            f"Your City of Pleasanton (demo) bill {issued.data['bill_number']} is ready"
        )
        assert links_in(message) == [
            f"{PUBLIC_URL}/bills/{issued.data['bill_number']}",
            f"{PUBLIC_URL}/accounts/{account}/preferences",  # how to stop them
        ]
        assert message["List-Unsubscribe"] == f"<{PUBLIC_URL}/accounts/{account}/preferences>"
        assert "$127.11" in text_of(message) and "January 23, 2017" in text_of(message)
    # The printed bill came first in the same queue and was handled: it sent nothing.
    for address in (ana_email, ben_email):
        assert len(world.mail_to(address)) == 1
        assert len(world.svc.messages_to(address)) == 1
    assert world.svc.messages_to(unverified_email) == []
    assert world.svc.messages_to(gone_email) == []


def test_turning_paperless_off_stops_bill_emails(world):
    account = world.account()
    user_id, email = world.user()
    world.link(user_id, account)
    world.prefs(account, paperless=True, email_notices=True)
    bill(world, account)
    world.one_mail_to(email, "the first bill")
    world.prefs(account, paperless=False, email_notices=True)
    second = bill(world, account)
    world.handled(second, "on_bill_issued")
    assert len(world.mail_to(email)) == 1
    assert [m["kind"] for m in world.svc.messages_to(email)] == ["bill_ready"]


# -- payments ------------------------------------------------------------------------------


def paid(world, *, user_id=None, email=None, account="28624"):
    payment_id = uuid.uuid4().hex
    return world.emit(
        "payments",
        "PaymentSucceeded",
        {
            "payment_id": payment_id,
            "checkout_id": uuid.uuid4().hex,
            "confirmation_number": f"MP-{payment_id[:8].upper()}",
            "owner": f"user:{user_id}" if user_id else f"guest:{payment_id[:6]}",
            "user_id": user_id,
            "email": email,
            "amount_total": "261.57",
            "convenience_fee": "0.00",
            "allocations": [
                {"bill_number": "98820", "account_number": account, "amount": "134.46"},
                {"bill_number": "98465", "account_number": account, "amount": "127.11"},
            ],
            "paid_at": "2026-11-22T18:30:00+00:00",
        },
        f"payment-{payment_id}",
    )


def test_a_receipt_goes_to_the_email_given_at_checkout(world):
    user_id, _ = world.user()
    billing_email = unique_email("billing")
    event = paid(world, user_id=user_id, email=billing_email)
    message = world.one_mail_to(billing_email, "the receipt")
    assert message["Subject"] == (
        f"Payment receipt {event.data['confirmation_number']} from City of Pleasanton (demo)"
    )
    text = text_of(message)
    assert "$134.46" in text and "$127.11" in text and "$261.57" in text
    assert "November 22, 2026 at 10:30 am PST" in text
    assert links_in(message) == [f"{PUBLIC_URL}/payments"]


def test_a_guest_receipt_has_no_link_to_a_history_they_do_not_have(world):
    email = unique_email("guest")
    paid(world, email=email)
    assert links_in(world.one_mail_to(email, "the guest receipt")) == []


def test_a_refund_goes_to_the_payer_of_the_payment(world):
    payer = unique_email("payer")
    payment = paid(world, email=payer)
    world.one_mail_to(payer, "the receipt")
    world.emit(
        "payments",
        "PaymentRefunded",
        {
            "payment_id": payment.data["payment_id"],
            "amount": "127.11",
            "allocations": [{"bill_number": "98465", "amount": "127.11"}],
            "reason": "duplicate payment",
            "email": None,
        },
        payment.stream_id,
    )
    wait_for(lambda: len(world.mail_to(payer)) == 2, what="the refund notice")
    refund = [m for m in world.mail_to(payer) if "refunded" in m["Subject"]][0]
    assert "$127.11" in text_of(refund) and payment.data["confirmation_number"] in text_of(refund)
    assert "duplicate payment" in text_of(refund)


def test_a_returned_payment_tells_the_payer_the_bills_are_open_again(world):
    user_id, _ = world.user()
    payer = unique_email("returned")
    payment = paid(world, user_id=user_id, email=payer)
    world.one_mail_to(payer, "the receipt")
    world.emit(
        "payments",
        "PaymentReturned",
        {"payment_id": payment.data["payment_id"], "amount": "261.57", "reason": "NSF"},
        payment.stream_id,
    )
    wait_for(lambda: len(world.mail_to(payer)) == 2, what="the return notice")
    notice = [m for m in world.mail_to(payer) if "returned" in m["Subject"]][0]
    assert notice["Subject"] == "Your payment to City of Pleasanton (demo) was returned"
    assert "$261.57" in text_of(notice) and "NSF" in text_of(notice)
    assert "open again" in text_of(notice)
    assert links_in(notice) == [f"{PUBLIC_URL}/"]


def autopay(world, event_type: str, account: str, email: str, **data):
    return world.emit(
        "payments",
        event_type,
        {"account_number": account, "email": email, **data},
        f"autopay-{account}",
    )


def test_autopay_notices_honour_email_notices_but_failures_always_go_out(world):
    account = world.account()
    email = unique_email("autopay")
    world.prefs(account, paperless=False, email_notices=False)
    quiet = autopay(
        world,
        "AutopayScheduled",
        account,
        email,
        bill_number="98465",
        charge_date="2017-01-20",
        amount="127.11",
    )
    failed = autopay(
        world, "AutopayChargeFailed", account, email, bill_number="98465", reason="card declined"
    )
    message = world.one_mail_to(email, "the failure notice")
    assert message["Subject"] == f"Your automatic payment for account {account} failed"
    assert "card declined" in text_of(message)
    assert links_in(message) == [f"{PUBLIC_URL}/bills/98465"]
    world.handled(quiet, "on_autopay_scheduled")
    world.handled(failed, "on_autopay_charge_failed")
    # Queued in the same transaction as the inbox claim: the log is complete by now.
    assert [m["kind"] for m in world.svc.messages_to(email)] == ["autopay_failed"]
    assert len(world.mail_to(email)) == 1

    world.prefs(account, paperless=False, email_notices=True)
    autopay(
        world,
        "AutopayScheduled",
        account,
        email,
        bill_number="98466",
        charge_date="2017-02-20",
        amount="130.00",
    )
    wait_for(lambda: len(world.mail_to(email)) == 2, what="the advance notice")
    notice = [m for m in world.mail_to(email) if "Automatic payment of" in m["Subject"]][0]
    assert notice["Subject"] == "Automatic payment of $130.00 on February 20, 2017"
    assert links_in(notice) == [
        f"{PUBLIC_URL}/accounts/{account}/autopay",
        f"{PUBLIC_URL}/accounts/{account}/preferences",
    ]


def test_enrolment_cancellation_and_an_expiring_card_are_notified(world):
    account = world.account()
    user_id, email = world.user()
    world.link(user_id, account)
    autopay(world, "AutopayEnrolled", account, None, user_id=user_id, card_last4="4242")
    autopay(world, "AutopayCancelled", account, None, user_id=user_id)
    autopay(world, "CardExpiringSoon", account, email, expires="2026-12")
    wait_for(lambda: len(world.mail_to(email)) == 3, what="three autopay emails")
    subjects = sorted(m["Subject"] for m in world.mail_to(email))
    assert subjects == sorted(
        [
            f"Automatic payments are on for account {account}",
            f"Automatic payments are off for account {account}",
            f"The card for automatic payments on account {account} expires soon",
        ]
    )
    enrolled = [m for m in world.mail_to(email) if "are on" in m["Subject"]][0]
    assert "ending 4242" in text_of(enrolled)
    for message in world.mail_to(email):
        assert links_in(message)[0] == f"{PUBLIC_URL}/accounts/{account}/autopay"
    expiring = [m for m in world.mail_to(email) if "expires soon" in m["Subject"]][0]
    assert len(links_in(expiring)) == 1  # always sent: no preference to point at
    assert expiring["List-Unsubscribe"] is None


# -- accounts: address changes -------------------------------------------------------------


def test_each_step_of_an_address_change_is_notified(world):
    account = world.account()
    user_id, email = world.user()
    request_id = uuid.uuid4().hex
    world.emit(
        "accounts",
        "AddressChangeRequested",
        {
            "request_id": request_id,
            "user_id": user_id,
            "account_number": account,
            "address_line1": "4100 Main St",
            "city": "Pleasanton",
            "state": "CA",
            "zip": "94566",
            "effective_date": "2026-12-01",
        },
        f"address-{request_id}",
    )
    received = world.one_mail_to(email, "the acknowledgement")
    assert received["Subject"] == f"We received your change of address for account {account}"
    assert "4100 Main St, Pleasanton, CA 94566" in text_of(received)
    assert "December 1, 2026" in text_of(received)
    world.emit(
        "accounts", "AddressChangeApproved", {"request_id": request_id}, f"address-{request_id}"
    )
    wait_for(lambda: len(world.mail_to(email)) == 2, what="the decision")
    approved = [m for m in world.mail_to(email) if "approved" in m["Subject"]][0]
    assert "4100 Main St" in text_of(approved)
    assert links_in(approved) == [
        f"{PUBLIC_URL}/accounts/{account}/address",
        f"{PUBLIC_URL}/accounts/{account}/preferences",
    ]


def test_a_rejection_says_why_and_email_notices_off_silences_address_notices(world):
    account = world.account()
    user_id, email = world.user()
    request_id = uuid.uuid4().hex
    data = {"request_id": request_id, "user_id": user_id, "account_number": account}
    world.emit(
        "accounts",
        "AddressChangeRejected",
        {**data, "reason": "the effective date is in the past"},
        f"address-{request_id}",
    )
    rejected = world.one_mail_to(email, "the rejection")
    assert "was not approved" in rejected["Subject"]
    assert "the effective date is in the past" in text_of(rejected)

    world.prefs(account, paperless=False, email_notices=False)
    quiet = world.emit(
        "accounts", "AddressChangeRejected", {**data, "reason": "again"}, f"address-{request_id}"
    )
    world.handled(quiet, "on_address_change_rejected")
    assert len(world.svc.messages_to(email)) == 1
    assert len(world.mail_to(email)) == 1


def test_a_legacy_bill_imported_after_its_due_date_is_not_announced(world):
    account = world.account()
    user_id, email = world.user()
    world.link(user_id, account)
    world.prefs(account, paperless=True, email_notices=True)
    history = bill(world, account, issued_via="import")  # due 2017-01-23
    world.handled(history, "on_bill_issued")
    current = bill(world, account, issued_via="import", due_date="2099-01-23")
    message = world.one_mail_to(email, "the current imported bill")
    assert current.data["bill_number"] in message["Subject"]
    assert [m["kind"] for m in world.svc.messages_to(email)] == ["bill_ready"]


def test_a_failed_web_payment_is_told_but_an_autopay_failure_is_left_to_its_own_notice(world):
    payer = unique_email("declined")
    autopay_failure = world.emit(
        "payments",
        "PaymentFailed",
        {"payment_id": uuid.uuid4().hex, "kind": "autopay", "reason": "Declined", "email": payer},
        f"payment-{uuid.uuid4().hex}",
    )
    world.handled(autopay_failure, "on_payment_failed")
    world.emit(
        "payments",
        "PaymentFailed",
        {
            "payment_id": uuid.uuid4().hex,
            "kind": "web",
            "reason": "The card was declined.",
            "reason_code": "card_declined",
            "email": payer,
        },
        f"payment-{uuid.uuid4().hex}",
    )
    message = world.one_mail_to(payer, "the declined notice")
    assert message["Subject"] == "Your payment to City of Pleasanton (demo) did not go through"
    assert "The card was declined." in text_of(message)
    assert links_in(message) == [f"{PUBLIC_URL}/cart"]


def test_a_late_payment_refund_and_a_chargeback_are_explained(world):
    late = unique_email("late")
    world.emit(
        "payments",
        "LatePaymentRefunded",
        {
            "payment_id": uuid.uuid4().hex,
            "amount": "127.11",
            "reason": "the checkout had expired",
            "email": late,
        },
        f"payment-{uuid.uuid4().hex}",
    )
    refund = world.one_mail_to(late, "the late payment refund")
    assert "$127.11" in text_of(refund) and "refunded it in full" in text_of(refund)

    payer = unique_email("chargeback")
    payment = paid(world, email=payer)
    world.one_mail_to(payer, "the receipt")
    world.emit(
        "payments",
        "PaymentChargedBack",
        {"payment_id": payment.data["payment_id"], "amount": "261.57", "reason": "disputed"},
        payment.stream_id,
    )
    wait_for(lambda: len(world.mail_to(payer)) == 2, what="the chargeback notice")
    notice = [m for m in world.mail_to(payer) if "returned" in m["Subject"]][0]
    assert "disputed" in text_of(notice) and "open again" in text_of(notice)


def test_a_change_to_autopay_is_confirmed(world):
    account = world.account()
    email = unique_email("autopay-change")
    autopay(world, "AutopayChanged", account, email, card_last4="4242", days_before=5)
    message = world.one_mail_to(email, "the autopay change")
    assert message["Subject"] == f"Automatic payments changed for account {account}"
    assert "ending 4242" in text_of(message) and "5 days before" in text_of(message)
