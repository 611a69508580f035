"""Which emails an event from another service warrants, to whom, and with what in them.

Each trigger reads the recipients projection (inside the consuming transaction)
and returns drafts; `allowed` then applies the account's preferences. Nothing
here sends or records anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.notifications.domain.kinds import ALWAYS, EMAIL_NOTICES, KINDS, PAPERLESS
from services.notifications.projections import (
    address_requests,
    format_address,
    links,
    payments,
    preferences,
    users,
)
from services.notifications.rendering import mask_email
from services.notifications.settings import Settings
from shared.errors import MuniportalError
from shared.events import Envelope

log = logging.getLogger(__name__)

# With no PreferencesChanged seen yet, an account gets printed bills and email notices.
DEFAULT_PAPERLESS = False
DEFAULT_EMAIL_NOTICES = True


class RecipientUnknown(MuniportalError):
    """An event names a user whose email this service has not learned (yet)."""

    kind = "not_found"
    status = 404


@dataclasses.dataclass(frozen=True)
class Draft:
    kind: str
    to: str
    context: dict[str, Any]
    account_number: str | None = None  # whose preferences decide, for policy kinds


class Lookup:
    """Reads of the recipients projection within the consumer's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def user(self, user_id: str | None) -> Any:
        if not user_id:
            return None
        return (
            self.conn.execute(sa.select(users).where(users.c.user_id == user_id)).mappings().first()
        )

    def user_email(self, user_id: str | None, what: str) -> str:
        row = self.user(user_id)
        if row is None or not row["email"]:
            raise RecipientUnknown(f"no email known for user {user_id!r}; {what} not sent yet")
        return row["email"]

    def display_user_id(self, user_id: str | None) -> str:
        row = self.user(user_id)
        return (row["display_user_id"] if row else None) or (user_id or "")

    def account_users(self, account_number: str | None) -> list[Any]:
        """Users linked to the account whose email is verified (bills never go elsewhere)."""
        if not account_number:
            return []
        query = (
            sa.select(users)
            .join(links, links.c.user_id == users.c.user_id)
            .where(
                links.c.account_number == account_number,
                links.c.removed.is_(False),
                users.c.email.is_not(None),
                users.c.email_verified.is_(True),
            )
            .order_by(users.c.user_id)
        )
        return list(self.conn.execute(query).mappings())

    def preferences(self, account_number: str | None) -> tuple[bool, bool]:
        if not account_number:
            return DEFAULT_PAPERLESS, DEFAULT_EMAIL_NOTICES
        row = self.conn.execute(
            sa.select(preferences.c.paperless, preferences.c.email_notices).where(
                preferences.c.account_number == account_number
            )
        ).first()
        if row is None:
            return DEFAULT_PAPERLESS, DEFAULT_EMAIL_NOTICES
        return bool(row.paperless), bool(row.email_notices)

    def address_request(self, request_id: Any) -> Any:
        if request_id is None:
            return None
        return (
            self.conn.execute(
                sa.select(address_requests).where(address_requests.c.request_id == str(request_id))
            )
            .mappings()
            .first()
        )

    def payment(self, payment_id: Any) -> Any:
        if payment_id is None:
            return None
        return (
            self.conn.execute(sa.select(payments).where(payments.c.payment_id == str(payment_id)))
            .mappings()
            .first()
        )


def allowed(draft: Draft, lookup: Lookup) -> bool:
    """The account's preferences: paperless for bills, email notices for account notices."""
    policy = KINDS[draft.kind].policy
    if policy not in (PAPERLESS, EMAIL_NOTICES):
        return True
    paperless, notices = lookup.preferences(draft.account_number)
    return paperless if policy == PAPERLESS else notices


Trigger = Callable[[Envelope, Lookup, Settings], list[Draft]]
TRIGGERS: dict[tuple[str, str], Trigger] = {}


def trigger(source: str, event_type: str) -> Callable[[Trigger], Trigger]:
    def register(fn: Trigger) -> Trigger:
        TRIGGERS[(source, event_type)] = fn
        return fn

    return register


def drafts_for(event: Envelope, lookup: Lookup, settings: Settings) -> list[Draft]:
    """Every email this event warrants that the account's preferences allow, one per address."""
    fn = TRIGGERS.get((event.source, event.type))
    if fn is None:
        return []
    out: list[Draft] = []
    seen: set[str] = set()
    for draft in fn(event, lookup, settings):
        key = draft.to.strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        if allowed(draft, lookup):
            out.append(_with_preferences_link(draft, settings))
        else:
            log.info(
                "%s for %s not sent: the account's preferences say no",
                draft.kind,
                draft.account_number,
            )
    return out


def _with_preferences_link(draft: Draft, settings: Settings) -> Draft:
    """Mail a preference allowed says where to turn it off (and a List-Unsubscribe header)."""
    if KINDS[draft.kind].policy == ALWAYS or not draft.account_number:
        return draft
    url = settings.link("preferences", account_number=draft.account_number)
    return dataclasses.replace(draft, context={**draft.context, "preferences_url": url})


def _to_account_or_email(
    kind: str, data: dict[str, Any], lookup: Lookup, context: dict[str, Any]
) -> list[Draft]:
    """The email the event names, else its user's, else every verified user of the account."""
    account = data.get("account_number")
    if data.get("email"):
        return [Draft(kind, data["email"], context, account)]
    if data.get("user_id"):
        return [Draft(kind, lookup.user_email(data["user_id"], kind), context, account)]
    return [Draft(kind, row["email"], context, account) for row in lookup.account_users(account)]


# -- identity ------------------------------------------------------------------------------


@trigger("identity", "UserIdReminderRequested")
def user_id_reminder(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    to = d.get("email") or lookup.user_email(d.get("user_id"), "user ID reminder")
    display = d.get("display_user_id") or lookup.display_user_id(d.get("user_id"))
    context = {"display_user_id": display, "action_url": s.link("sign_in")}
    return [Draft("user_id_reminder", to, context)]


@trigger("identity", "PasswordChanged")
def password_changed(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    user_id = e.data["user_id"]
    context = {
        "display_user_id": lookup.display_user_id(user_id),
        "when": e.occurred_at.isoformat(),
        "action_url": s.link("forgot_password"),
    }
    return [Draft("password_changed", lookup.user_email(user_id, "password notice"), context)]


@trigger("identity", "PasswordReset")
def password_reset(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    user_id = e.data["user_id"]
    context = {
        "display_user_id": lookup.display_user_id(user_id),
        "when": e.occurred_at.isoformat(),
        "action_url": s.link("sign_in"),
    }
    return [Draft("password_reset_done", lookup.user_email(user_id, "reset notice"), context)]


@trigger("identity", "EmailChanged")
def email_changed(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    if not d.get("old_email") or d.get("old_email", "").lower() == d.get("new_email", "").lower():
        return []
    context = {
        "display_user_id": lookup.display_user_id(d["user_id"]),
        "when": e.occurred_at.isoformat(),
        "new_email_masked": mask_email(d.get("new_email", "")),
    }
    return [Draft("email_changed", d["old_email"], context)]


@trigger("identity", "LegacyAccountsClaimed")
def links_restored(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    numbers = [str(n) for n in d.get("account_numbers") or []]
    if not numbers:
        return []
    context = {"account_numbers": numbers, "action_url": s.link("accounts")}
    return [Draft("links_restored", lookup.user_email(d["user_id"], "restored links"), context)]


# -- billing -------------------------------------------------------------------------------


def _historical(d: dict[str, Any], e: Envelope) -> bool:
    """A bill imported from the legacy system after its due date is history, not news."""
    if d.get("issued_via") != "import" or not d.get("due_date"):
        return False
    try:
        due = dt.date.fromisoformat(str(d["due_date"])[:10])
    except ValueError:
        return False
    return due < e.occurred_at.date()


@trigger("billing", "BillIssued")
def bill_ready(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    account = d.get("account_number")
    if not account:
        return []  # preferences are per utility account; invoices go on paper
    if _historical(d, e):
        return []
    context = {
        "bill_number": d["bill_number"],
        "account_number": account,
        "statement_date": d.get("statement_date"),
        "due_date": d.get("due_date"),
        "amount_due": d.get("balance_due") if d.get("balance_due") is not None else d.get("total"),
        "action_url": s.link("bill", bill_number=d["bill_number"]),
    }
    return [
        Draft("bill_ready", row["email"], context, account) for row in lookup.account_users(account)
    ]


# -- payments ------------------------------------------------------------------------------


@trigger("payments", "PaymentSucceeded")
def payment_receipt(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    to = d.get("email") or (lookup.user_email(d["user_id"], "receipt") if d.get("user_id") else "")
    if not to:
        return []
    context = {
        "confirmation_number": d.get("confirmation_number") or d.get("payment_id"),
        "paid_at": d.get("paid_at"),
        "amount_total": d.get("amount_total"),
        "convenience_fee": d.get("convenience_fee"),
        "allocations": [
            {
                "bill_number": a.get("bill_number"),
                "account_number": a.get("account_number"),
                "amount": a.get("amount"),
            }
            for a in d.get("allocations") or []
        ],
    }
    if d.get("user_id"):  # a guest has no payment history to look at
        context["action_url"] = s.link("payments")
    return [Draft("payment_receipt", to, context)]


def _reversal(kind: str, e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    payment = lookup.payment(d.get("payment_id"))
    to = d.get("email") or (payment["email"] if payment else None)
    if not to and payment and payment["user_id"]:
        to = lookup.user_email(payment["user_id"], kind)
    if not to:
        return []
    context = {
        "amount": d.get("amount") or (payment["amount_total"] if payment else None),
        "reason": d.get("reason"),
        "confirmation_number": payment["confirmation_number"] if payment else None,
    }
    if kind == "payment_returned" and payment and payment["user_id"]:
        context["action_url"] = s.link("home")
    return [Draft(kind, to, context)]


@trigger("payments", "PaymentRefunded")
def payment_refunded(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _reversal("payment_refunded", e, lookup, s)


@trigger("payments", "PaymentReturned")
def payment_returned(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _reversal("payment_returned", e, lookup, s)


@trigger("payments", "PaymentChargedBack")
def payment_charged_back(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    # To the payer a chargeback and a return look the same: the bills are open again.
    return _reversal("payment_returned", e, lookup, s)


@trigger("payments", "PaymentFailed")
def payment_failed(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    if d.get("kind") == "autopay":
        return []  # AutopayChargeFailed tells the resident, with the bill to pay
    payment = lookup.payment(d.get("payment_id"))
    to = d.get("email") or (payment["email"] if payment else None)
    if not to:
        return []
    context = {
        "reason": d.get("reason"),
        "amount": payment["amount_total"] if payment else None,
        "action_url": s.link("cart"),
    }
    return [Draft("payment_failed", to, context)]


@trigger("payments", "LatePaymentRefunded")
def late_payment_refunded(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    if not d.get("email"):
        return []
    context = {"amount": d.get("amount"), "reason": d.get("reason")}
    return [Draft("late_payment_refunded", d["email"], context)]


def _autopay_context(d: dict[str, Any], s: Settings) -> dict[str, Any]:
    return {
        "account_number": d["account_number"],
        "card": d.get("card") or (f"ending {d['card_last4']}" if d.get("card_last4") else None),
        "days_before": d.get("days_before"),
        "action_url": s.link("autopay", account_number=d["account_number"]),
    }


@trigger("payments", "AutopayEnrolled")
def autopay_enrolled(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _to_account_or_email("autopay_enrolled", e.data, lookup, _autopay_context(e.data, s))


@trigger("payments", "AutopayChanged")
def autopay_changed(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _to_account_or_email("autopay_changed", e.data, lookup, _autopay_context(e.data, s))


@trigger("payments", "AutopayCancelled")
def autopay_cancelled(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    context = {
        "account_number": d["account_number"],
        "action_url": s.link("autopay", account_number=d["account_number"]),
    }
    return _to_account_or_email("autopay_cancelled", d, lookup, context)


@trigger("payments", "AutopayScheduled")
def autopay_scheduled(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    context = {
        "account_number": d["account_number"],
        "bill_number": d.get("bill_number"),
        "charge_date": d.get("charge_date"),
        "amount": d.get("amount"),
        "action_url": s.link("autopay", account_number=d["account_number"]),
    }
    return _to_account_or_email("autopay_scheduled", d, lookup, context)


@trigger("payments", "AutopayChargeFailed")
def autopay_failed(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    context = {
        "account_number": d["account_number"],
        "bill_number": d.get("bill_number"),
        "reason": d.get("reason"),
        "action_url": (
            s.link("bill", bill_number=d["bill_number"])
            if d.get("bill_number")
            else s.link("account", account_number=d["account_number"])
        ),
    }
    return _to_account_or_email("autopay_failed", d, lookup, context)


@trigger("payments", "CardExpiringSoon")
def card_expiring(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    context = {
        "account_number": d["account_number"],
        "expires": d.get("expires"),
        "action_url": s.link("autopay", account_number=d["account_number"]),
    }
    return _to_account_or_email("card_expiring", d, lookup, context)


# -- accounts ------------------------------------------------------------------------------


def _address(kind: str, e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    d = e.data
    request = lookup.address_request(d.get("request_id"))
    user_id = d.get("user_id") or (request["user_id"] if request else None)
    account = d.get("account_number") or (request["account_number"] if request else None)
    if not account:
        return []
    context = {
        "account_number": account,
        "new_address": format_address(d) or (request["new_address"] if request else None),
        "effective_date": d.get("effective_date")
        or (request["effective_date"] if request else None),
        "reason": d.get("reason"),
        "action_url": s.link("address", account_number=account),
    }
    if user_id:
        return [Draft(kind, lookup.user_email(user_id, kind), context, account)]
    return [Draft(kind, row["email"], context, account) for row in lookup.account_users(account)]


@trigger("accounts", "AddressChangeRequested")
def address_received(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _address("address_change_received", e, lookup, s)


@trigger("accounts", "AddressChangeApproved")
def address_approved(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _address("address_change_approved", e, lookup, s)


@trigger("accounts", "AddressChangeRejected")
def address_rejected(e: Envelope, lookup: Lookup, s: Settings) -> list[Draft]:
    return _address("address_change_rejected", e, lookup, s)
