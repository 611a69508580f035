"""Links between a portal user and the city's accounts, and the throttle on guessing.

A user reaches an account's data only through a link they hold. A utility link
grants one utility account; a customer link grants one general-billing
customer. Several users may hold links to the same account (a household).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from shared.aggregate import Aggregate, applies
from shared.errors import InvalidInput, NotFound, RateLimited

NO_MATCH_MESSAGE = "No account matches these values. Check them against your bill and try again."


def no_account_match() -> InvalidInput:
    """The one answer for values that match nothing, whichever value was wrong."""
    return InvalidInput(NO_MATCH_MESSAGE, code="no_account_match")


class LinkNotFound(NotFound):
    """The user holds no such link (or it belongs to someone else: same answer)."""


class AccountNotLinked(NotFound):
    """The user has no link to this account: the same answer whether it exists or not."""


def account_not_linked() -> AccountNotLinked:
    return AccountNotLinked(
        "You have no linked account with this number.", code="account_not_linked"
    )


@dataclass(frozen=True)
class ThrottleLimits:
    """At most `failures` unmatched attempts per `window_seconds`, per user (or per key)."""

    failures: int = 10
    window_seconds: int = 3600


class LinkThrottled(RateLimited):
    """Too many unmatched attempts in the window."""


class UserLinks(Aggregate):
    """One user's links and remembered search values."""

    stream_type = "user"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.links: dict[str, dict[str, Any]] = {}
        self.remembered: dict[str, dict[str, str]] = {}

    def find(self, type: str, number: str) -> dict[str, Any] | None:
        """The user's link to this utility account or general-billing customer, if any."""
        key = "account_number" if type == "utility" else "customer_id"
        for link in self.links.values():
            if link["type"] == type and link[key] == number:
                return link
        return None

    def link(
        self,
        *,
        link_id: str,
        type: str,
        account_number: str | None,
        customer_id: str,
        via: str,
        now: dt.datetime,
    ) -> dict[str, Any]:
        """Link an account the caller has verified; linking it again returns the same link."""
        existing = self.find(type, account_number if type == "utility" else customer_id)
        if existing is not None:
            return existing
        self.record(
            "LinkCreated",
            {
                "link_id": link_id,
                "user_id": self.id,
                "type": type,
                "account_number": account_number if type == "utility" else None,
                "customer_id": customer_id,
                "via": via,
                "created_at": now.isoformat(),
            },
        )
        return self.links[link_id]

    def unlink(self, link_id: str, *, reason: str = "user") -> dict[str, Any]:
        """Remove a link; remembered values that would bring it back are forgotten too."""
        link = self.links.get(link_id)
        if link is None:
            raise LinkNotFound("You have no such linked account.", code="link_not_found")
        self.record(
            "LinkRemoved",
            {
                "link_id": link_id,
                "user_id": self.id,
                "type": link["type"],
                "account_number": link["account_number"],
                "customer_id": link["customer_id"],
                "reason": reason,
            },
        )
        for module, values in list(self.remembered.items()):
            # Remembered values search (and so link) at once on the next visit.
            if link["type"] == "utility" and values.get("account_number") == link["account_number"]:
                self.forget(module)
            elif link["type"] == "customer" and values.get("customer_id") == link["customer_id"]:
                self.forget(module)
        return link

    def remember(self, module: str, values: dict[str, str]) -> None:
        """Keep the last search values of a module ("Remember these values")."""
        if self.remembered.get(module) == values:
            return
        self.record(
            "SearchValuesRemembered", {"user_id": self.id, "module": module, "values": values}
        )

    def forget(self, module: str) -> None:
        if module not in self.remembered:
            return
        self.record("SearchValuesForgotten", {"user_id": self.id, "module": module})

    @applies("LinkCreated")
    def _linked(self, data: dict[str, Any]) -> None:
        self.links[data["link_id"]] = dict(data)

    @applies("LinkRemoved")
    def _unlinked(self, data: dict[str, Any]) -> None:
        self.links.pop(data["link_id"], None)

    @applies("SearchValuesRemembered")
    def _remembered(self, data: dict[str, Any]) -> None:
        self.remembered[data["module"]] = dict(data["values"])

    @applies("SearchValuesForgotten")
    def _forgotten(self, data: dict[str, Any]) -> None:
        self.remembered.pop(data["module"], None)


class LinkGuard(Aggregate):
    """Counts unmatched attempts per user (or other key), so accounts cannot be guessed.

    Kept in the event store: replicas share it, and two concurrent failures
    cannot both slip under the limit (the second append conflicts and retries).
    A success does not reset the count, so one known account cannot be used to
    keep guessing others.
    """

    stream_type = "linkguard"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.failures: list[dt.datetime] = []

    def recent(self, now: dt.datetime, limits: ThrottleLimits) -> list[dt.datetime]:
        start = now - dt.timedelta(seconds=limits.window_seconds)
        return [at for at in self.failures if at > start]

    def ensure_allowed(self, now: dt.datetime, limits: ThrottleLimits) -> None:
        """Refuse, before looking at the values, once the window holds too many failures."""
        recent = self.recent(now, limits)
        if len(recent) < limits.failures:
            return
        oldest_that_counts = sorted(recent)[-limits.failures]
        wait = oldest_that_counts + dt.timedelta(seconds=limits.window_seconds) - now
        seconds = max(1, math.ceil(wait.total_seconds()))
        minutes = max(1, math.ceil(seconds / 60))
        raise LinkThrottled(
            f"Too many attempts matched no account. For your security, account linking "
            f"is paused; try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            code="link_attempts_throttled",
            extra={"retry_after": seconds},
        )

    def record_failure(self, now: dt.datetime, module: str) -> None:
        self.record("LinkAttemptFailed", {"key": self.id, "module": module, "at": now.isoformat()})

    @applies("LinkAttemptFailed")
    def _failed(self, data: dict[str, Any]) -> None:
        self.failures.append(dt.datetime.fromisoformat(data["at"]))
