"""The accounts service's nameko entrypoints: load with marshmallow, call a handler, dump."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from nameko.dependency_providers import Config

from services.accounts import handlers, queries, schemas
from services.accounts.domain.identifiers import is_identifier, parse_identifier
from services.accounts.domain.links import ThrottleLimits, account_not_linked
from services.accounts.projections import PROJECTIONS
from shared import nameko as kernel
from shared.errors import NotFound
from shared.messaging import consumes
from shared.rpc import rpc

log = logging.getLogger(__name__)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _number(value: Any, label: str) -> str | None:
    """A normalized identifier, or None when it cannot be one (so it matches nothing)."""
    return parse_identifier("number", value, label=label) if is_identifier(value) else None


# The base is reached through its module: a class imported into this namespace would be
# started by `nameko run` as a service of its own ("kernel").
class AccountsService(kernel.KernelService):
    name = "accounts"
    store = kernel.Store(PROJECTIONS)
    config = Config()

    def _limits(self) -> ThrottleLimits:
        return ThrottleLimits(
            failures=int(self.config.get("LINK_FAILURE_LIMIT") or 10),
            window_seconds=int(self.config.get("LINK_FAILURE_WINDOW") or 3600),
        )

    def _actor(self, user_id: str | None = None) -> str | None:
        if self.store.actor:
            return self.store.actor
        return f"user:{handlers.clean_user_id(user_id)}" if user_id else None

    # -- verifying and linking -------------------------------------------------------------

    @rpc
    def check_utility_values(
        self, account_number: Any, customer_id: Any, throttle_key: str | None = None
    ) -> dict[str, str]:
        """Whether the two values belong to one utility account (registration, quick pay)."""
        return handlers.check_utility_values(
            self.store,
            account_number=account_number,
            customer_id=customer_id,
            throttle_key=throttle_key,
            limits=self._limits(),
            actor=self.store.actor or "system",
        )

    @rpc
    def link_account(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Link a utility account or a general-billing customer from the values on a bill."""
        data = schemas.LinkRequest().load(payload or {})
        return handlers.link_account(
            self.store,
            user_id=user_id,
            link_type=data["type"],
            account_number=data["account_number"],
            customer_id=data["customer_id"],
            name=data["name"],
            limits=self._limits(),
            actor=self._actor(user_id),
        )

    @rpc
    def link_verified(self, user_id: str, kind: str, number: Any, via: str) -> dict[str, Any]:
        """Link values another service has verified (registration, invoice search)."""
        return handlers.link_verified(
            self.store, user_id=user_id, kind=kind, number=number, via=via, actor=self._actor()
        )

    @rpc
    def list_links(self, user_id: str) -> list[dict[str, Any]]:
        """The user's linked accounts: name, account, details."""
        user_id = handlers.clean_user_id(user_id)
        with self.store.read() as conn:
            return queries.list_links(conn, user_id, _today())

    @rpc
    def unlink(self, user_id: str, link_id: str) -> dict[str, Any]:
        """Remove one of the user's links."""
        return handlers.unlink(
            self.store, user_id=user_id, link_id=link_id, actor=self._actor(user_id)
        )

    # -- authorization ---------------------------------------------------------------------

    @rpc
    def can_access(self, user_id: str, account_number: Any) -> bool:
        """True only when the user holds a link to this utility account."""
        user_id = handlers.clean_user_id(user_id)
        number = _number(account_number, "account number")
        if number is None:
            return False
        with self.store.read() as conn:
            return queries.has_account_link(conn, user_id, number)

    @rpc
    def can_access_customer(self, user_id: str, customer_id: Any) -> bool:
        """True only when the user holds a link to this general-billing customer."""
        user_id = handlers.clean_user_id(user_id)
        number = _number(customer_id, "customer ID")
        if number is None:
            return False
        with self.store.read() as conn:
            return queries.has_customer_link(conn, user_id, number)

    @rpc
    def accessible(self, user_id: str) -> dict[str, list[str]]:
        """Every account and customer the user may reach (the gateway caches it)."""
        user_id = handlers.clean_user_id(user_id)
        with self.store.read() as conn:
            return queries.accessible(conn, user_id)

    @rpc
    def linked_users(self, account_number: Any) -> list[str]:
        """The users holding a link to a utility account (for notices)."""
        number = _number(account_number, "account number")
        if number is None:
            return []
        with self.store.read() as conn:
            return queries.users_linked_to(conn, number)

    # -- search and remembered values ------------------------------------------------------

    @rpc
    def search_utility(
        self, user_id: str, account_number: Any, customer_id: Any, remember: bool = False
    ) -> dict[str, Any]:
        """Utility search by account number + customer ID; a match links the account."""
        return handlers.search_utility(
            self.store,
            user_id=user_id,
            account_number=account_number,
            customer_id=customer_id,
            remember=bool(remember),
            limits=self._limits(),
            actor=self._actor(user_id),
        )

    @rpc
    def remembered_values(self, user_id: str, module: str) -> dict[str, Any]:
        """The search values the user asked to remember for a module, or null."""
        user_id = handlers.clean_user_id(user_id)
        module = handlers.check_module(module)
        with self.store.read() as conn:
            return {"values": queries.remembered(conn, user_id, module)}

    @rpc
    def remember_values(self, user_id: str, module: str, values: dict[str, Any]) -> dict:
        """Remember a module's search values (general billing: after billing found the invoice)."""
        return handlers.remember_values(
            self.store, user_id=user_id, module=module, values=values, actor=self._actor(user_id)
        )

    @rpc
    def forget_values(self, user_id: str, module: str) -> dict[str, Any]:
        """Forget a module's remembered search values."""
        return handlers.forget_values(
            self.store, user_id=user_id, module=module, actor=self._actor(user_id)
        )

    # -- account data ----------------------------------------------------------------------

    def _check_account(self, conn: Any, account_number: Any, user_id: str | None) -> str:
        number = _number(account_number, "account number")
        if user_id is not None:
            user = handlers.clean_user_id(user_id)
            if number is None or not queries.has_account_link(conn, user, number):
                raise account_not_linked()
        if number is None:
            raise NotFound("No such utility account.", code="account_not_found")
        return number

    @rpc
    def account_details(self, account_number: Any, user_id: str | None = None) -> dict[str, Any]:
        """An account's registry data; with user_id, only through the user's link."""
        with self.store.read() as conn:
            number = self._check_account(conn, account_number, user_id)
            details = queries.account_details(conn, number, _today())
        if details is None:
            raise NotFound(f"No utility account {number}.", code="account_not_found")
        return details

    @rpc
    def customer_info(self, customer_id: Any, user_id: str | None = None) -> dict[str, Any]:
        """Name, address and customer ID; with user_id, only through one of the user's links."""
        number = _number(customer_id, "customer ID")
        with self.store.read() as conn:
            if user_id is not None:
                user = handlers.clean_user_id(user_id)
                if number is None or not queries.may_see_customer(conn, user, number):
                    raise NotFound(
                        "You have no linked account for this customer.",
                        code="customer_not_linked",
                    )
            info = queries.customer_info(conn, number, _today()) if number else None
        if info is None:
            raise NotFound("No such customer.", code="customer_not_found")
        return info

    @rpc
    def get_preferences(self, account_number: Any, user_id: str | None = None) -> dict[str, Any]:
        """Paperless or printed bills, and email notices, for an account."""
        with self.store.read() as conn:
            number = self._check_account(conn, account_number, user_id)
            if queries.account_row(conn, number) is None:
                raise NotFound(f"No utility account {number}.", code="account_not_found")
            return handlers.get_preferences(conn, number)

    @rpc
    def set_preferences(
        self, user_id: str, account_number: Any, paperless: Any, email_notices: Any
    ) -> dict[str, Any]:
        """Choose paperless or printed bills and email notices for a linked account."""
        return handlers.set_preferences(
            self.store,
            user_id=user_id,
            account_number=account_number,
            paperless=paperless,
            email_notices=email_notices,
            actor=self._actor(user_id),
        )

    # -- address changes -------------------------------------------------------------------

    @rpc
    def request_address_change(
        self, user_id: str, account_number: Any, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Ask staff to change the mailing address from an effective date."""
        data = schemas.AddressChangeRequest().load(payload or {})
        return handlers.request_address_change(
            self.store,
            user_id=user_id,
            account_number=account_number,
            payload=data,
            actor=self._actor(user_id),
        )

    @rpc
    def cancel_address_request(self, user_id: str, request_id: str) -> dict[str, Any]:
        """Withdraw a request staff have not decided yet."""
        return handlers.cancel_address_request(
            self.store, user_id=user_id, request_id=request_id, actor=self._actor(user_id)
        )

    @rpc
    def address_requests(
        self, account_number: Any, user_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The address change requests of the account's customer, newest first."""
        with self.store.read() as conn:
            number = self._check_account(conn, account_number, user_id)
            row = queries.account_row(conn, number)
            if row is None:
                raise NotFound(f"No utility account {number}.", code="account_not_found")
            user = handlers.clean_user_id(user_id) if user_id is not None else None
            return queries.requests_for_customer(conn, row.customer_id, for_user=user)

    # -- events of other services ----------------------------------------------------------

    @consumes("identity", "LegacyAccountsClaimed")
    def on_legacy_accounts_claimed(self, event: Any, uow: Any) -> None:
        """Restore the links a re-registering user held in the old portal."""
        data = schemas.LegacyAccountsClaimed().load(event.data, unknown="exclude")
        restored = handlers.restore_legacy_links(
            uow,
            user_id=data["user_id"],
            account_numbers=data["account_numbers"],
            now=dt.datetime.now(dt.UTC),
        )
        skipped = len(data["account_numbers"]) - len(restored)
        if skipped:
            log.warning(
                "legacy claim %s: %d account number(s) not in the registry",
                event.event_id,
                skipped,
            )
