"""Every kind of email this service sends, with its subject and the preference it honours.

Policies:

* ``always``: security notices and answers to the resident's own action (a
  receipt, a failed autopay charge); no preference can turn them off.
* ``paperless``: the bill itself; sent only when the account receives paperless bills.
* ``email_notices``: notices about changes to an account; sent only when the
  account's "email notices" preference is on (the default).
"""

from __future__ import annotations

import dataclasses

ALWAYS = "always"
PAPERLESS = "paperless"
EMAIL_NOTICES = "email_notices"


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    subject: str  # a Jinja expression template; gets the context and `city`
    policy: str = ALWAYS
    action: str = ""  # the label of the email's button, when it has a link
    secure: bool = False


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        # Secret-bearing, sent through the send_secure_email RPC (identity).
        Kind(
            "verify_email",
            "Verify your email address for {{ city.name }}",
            action="Verify my email address",
            secure=True,
        ),
        Kind(
            "reset_password",
            "Reset your {{ city.name }} portal password",
            action="Choose a new password",
            secure=True,
        ),
        Kind(
            "unlock_account",
            "Unlock your {{ city.name }} portal account",
            action="Unlock my account",
            secure=True,
        ),
        # identity
        Kind("user_id_reminder", "Your {{ city.name }} portal user ID", action="Sign in"),
        Kind(
            "password_changed",
            "Your {{ city.name }} portal password was changed",
            action="Reset my password",
        ),
        Kind(
            "password_reset_done",
            "Your {{ city.name }} portal password was reset",
            action="Sign in",
        ),
        Kind("email_changed", "The email address of your {{ city.name }} portal login changed"),
        Kind(
            "links_restored",
            "Your {{ city.name }} accounts are linked again",
            action="See your accounts",
        ),
        # billing
        Kind(
            "bill_ready",
            "Your {{ city.name }} bill {{ bill_number }} is ready",
            PAPERLESS,
            action="View your bill",
        ),
        # payments
        Kind(
            "payment_receipt",
            "Payment receipt {{ confirmation_number }} from {{ city.name }}",
            action="See your payments",
        ),
        Kind("payment_refunded", "Your payment to {{ city.name }} was refunded"),
        Kind(
            "payment_returned",
            "Your payment to {{ city.name }} was returned",
            action="Pay your bills",
        ),
        Kind(
            "payment_failed",
            "Your payment to {{ city.name }} did not go through",
            action="Try again",
        ),
        Kind(
            "late_payment_refunded",
            "Your late payment to {{ city.name }} was refunded",
        ),
        Kind(
            "autopay_enrolled",
            "Automatic payments are on for account {{ account_number }}",
            EMAIL_NOTICES,
            action="Manage automatic payments",
        ),
        Kind(
            "autopay_cancelled",
            "Automatic payments are off for account {{ account_number }}",
            EMAIL_NOTICES,
            action="Manage automatic payments",
        ),
        Kind(
            "autopay_changed",
            "Automatic payments changed for account {{ account_number }}",
            EMAIL_NOTICES,
            action="Manage automatic payments",
        ),
        Kind(
            "autopay_scheduled",
            "Automatic payment of {{ amount | money }} on {{ charge_date | longdate }}",
            EMAIL_NOTICES,
            action="Manage automatic payments",
        ),
        Kind(
            "autopay_failed",
            "Your automatic payment for account {{ account_number }} failed",
            action="Pay the bill",
        ),
        Kind(
            "card_expiring",
            "The card for automatic payments on account {{ account_number }} expires soon",
            action="Update your card",
        ),
        # accounts
        Kind(
            "address_change_received",
            "We received your change of address for account {{ account_number }}",
            EMAIL_NOTICES,
            action="See your request",
        ),
        Kind(
            "address_change_approved",
            "Your change of address for account {{ account_number }} was approved",
            EMAIL_NOTICES,
            action="See your account",
        ),
        Kind(
            "address_change_rejected",
            "Your change of address for account {{ account_number }} was not approved",
            EMAIL_NOTICES,
            action="See your account",
        ),
    )
}

SECURE_KINDS = tuple(name for name, kind in KINDS.items() if kind.secure)
