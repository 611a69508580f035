"""The notifications service's nameko entrypoints: load with marshmallow, call a handler, dump."""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from services.notifications import handlers, spool
from services.notifications.delivery import Mailer
from services.notifications.projections import PROJECTIONS
from services.notifications.schemas import MessagesQuerySchema, SecureEmailSchema
from services.notifications.settings import Settings
from shared.events import Envelope
from shared.messaging import consumes
from shared.nameko import KernelService, Store
from shared.rpc import rpc
from shared.uow import UnitOfWork


class NotificationStore(Store):
    """The kernel store, plus the secure spool table (not a projection: never rebuilt)."""

    def setup(self) -> None:
        super().setup()
        spool.ensure_table(self.store.events.engine)  # type: ignore[union-attr]


class NotificationSettings(DependencyProvider):
    """The parsed settings (cities, links, retry policy), read once at start."""

    def setup(self) -> None:
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> Settings:
        return self.settings


class NotificationsService(KernelService):
    name = "notifications"
    store = NotificationStore(PROJECTIONS, poll_interval=0.25)
    mailer = Mailer()
    settings = NotificationSettings()

    # -- RPC -----------------------------------------------------------------------------

    @rpc
    def send_secure_email(
        self,
        kind: str,
        to: str,
        context: dict[str, Any] | None,
        secret_url: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Queue a verify/reset/unlock email whose link is kept only until it is delivered."""
        payload = SecureEmailSchema().load(
            {
                "kind": kind,
                "to": to,
                "context": context or {},
                "secret_url": secret_url,
                "idempotency_key": idempotency_key,
            }
        )
        return handlers.send_secure_email(self.store, self.mailer, **payload)

    @rpc
    def active_announcements(self, signed_in: bool = False) -> list[dict[str, Any]]:
        """The announcements the home page shows today, for a guest or a signed-in resident."""
        return handlers.active_announcements(
            self.store, signed_in=bool(signed_in), today=self.settings.today()
        )

    @rpc
    def messages(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The delivery log, newest first (staff)."""
        query = MessagesQuerySchema().load({"status": status, "limit": limit})
        return handlers.list_messages(self.store, **query)

    # -- identity ------------------------------------------------------------------------

    @consumes("identity", "UserRegistered")
    def on_user_registered(self, event: Envelope, uow: UnitOfWork) -> None:
        """Learn the user's email (the recipients projection does it)."""

    @consumes("identity", "EmailVerified")
    def on_email_verified(self, event: Envelope, uow: UnitOfWork) -> None:
        """Learn that the user's email is verified (the recipients projection does it)."""

    @consumes("identity", "EmailChanged")
    def on_email_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the old address that the login's email changed."""
        handlers.notify(uow, self.mailer, event)

    @consumes("identity", "PasswordChanged")
    def on_password_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the user their password changed."""
        handlers.notify(uow, self.mailer, event)

    @consumes("identity", "PasswordReset")
    def on_password_reset(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the user their password was reset."""
        handlers.notify(uow, self.mailer, event)

    @consumes("identity", "UserIdReminderRequested")
    def on_user_id_reminder_requested(self, event: Envelope, uow: UnitOfWork) -> None:
        """Email the user ID to the address that asked for it."""
        handlers.notify(uow, self.mailer, event)

    @consumes("identity", "LegacyAccountsClaimed")
    def on_legacy_accounts_claimed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell a re-registered user which accounts are linked again."""
        handlers.notify(uow, self.mailer, event)

    # -- accounts ------------------------------------------------------------------------

    @consumes("accounts", "LinkCreated")
    def on_link_created(self, event: Envelope, uow: UnitOfWork) -> None:
        """Learn who is linked to an account (the recipients projection does it)."""

    @consumes("accounts", "LinkRemoved")
    def on_link_removed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Forget a removed link (the recipients projection does it)."""

    @consumes("accounts", "PreferencesChanged")
    def on_preferences_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Learn an account's paperless and email-notice choices (the projection does it)."""

    @consumes("accounts", "AddressChangeRequested")
    def on_address_change_requested(self, event: Envelope, uow: UnitOfWork) -> None:
        """Acknowledge a change-of-address request."""
        handlers.notify(uow, self.mailer, event)

    @consumes("accounts", "AddressChangeApproved")
    def on_address_change_approved(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the resident their change of address was approved."""
        handlers.notify(uow, self.mailer, event)

    @consumes("accounts", "AddressChangeRejected")
    def on_address_change_rejected(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the resident their change of address was rejected."""
        handlers.notify(uow, self.mailer, event)

    # -- billing -------------------------------------------------------------------------

    @consumes("billing", "BillIssued")
    def on_bill_issued(self, event: Envelope, uow: UnitOfWork) -> None:
        """Email a new bill to the users of a paperless account."""
        handlers.notify(uow, self.mailer, event)

    # -- payments ------------------------------------------------------------------------

    @consumes("payments", "PaymentSucceeded")
    def on_payment_succeeded(self, event: Envelope, uow: UnitOfWork) -> None:
        """Email the receipt."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "PaymentRefunded")
    def on_payment_refunded(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the payer about a refund."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "PaymentReturned")
    def on_payment_returned(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the payer a payment was returned and the bills are open again."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "PaymentChargedBack")
    def on_payment_charged_back(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the payer a card payment was charged back and the bills are open again."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "PaymentFailed")
    def on_payment_failed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell a web payer their payment did not go through."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "LatePaymentRefunded")
    def on_late_payment_refunded(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the payer why a payment that came after its checkout closed was refunded."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "AutopayEnrolled")
    def on_autopay_enrolled(self, event: Envelope, uow: UnitOfWork) -> None:
        """Confirm automatic payments are on."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "AutopayCancelled")
    def on_autopay_cancelled(self, event: Envelope, uow: UnitOfWork) -> None:
        """Confirm automatic payments are off."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "AutopayChanged")
    def on_autopay_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Confirm a change to automatic payments (card, email or timing)."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "AutopayScheduled")
    def on_autopay_scheduled(self, event: Envelope, uow: UnitOfWork) -> None:
        """Give advance notice of an automatic charge."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "AutopayChargeFailed")
    def on_autopay_charge_failed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Tell the resident an automatic charge failed and the bill is still open."""
        handlers.notify(uow, self.mailer, event)

    @consumes("payments", "CardExpiringSoon")
    def on_card_expiring_soon(self, event: Envelope, uow: UnitOfWork) -> None:
        """Ask the resident to update the card used for automatic payments."""
        handlers.notify(uow, self.mailer, event)
