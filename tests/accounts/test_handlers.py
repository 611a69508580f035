"""Handler rules that need a clock or a quiet store: the throttle window, read-only checks."""

import datetime as dt

import pytest

from services.accounts import handlers
from services.accounts.domain.links import ThrottleLimits
from shared.errors import InvalidInput, RateLimited
from tests.accounts.conftest import load_rows
from tests.accounts.helpers import event_count, service_rows, unique_user

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
LIMITS = ThrottleLimits(failures=10, window_seconds=3600)


def link(store, user, customer, at):
    return handlers.link_account(
        store,
        user_id=user,
        link_type="utility",
        account_number="28624",
        customer_id=customer,
        limits=LIMITS,
        now=at,
    )


def test_the_throttle_lifts_when_the_hour_has_passed(sqlite_store):
    load_rows(sqlite_store, service_rows("405583", "28624"))
    user = unique_user()
    for minute in range(10):
        with pytest.raises(InvalidInput):
            link(sqlite_store, user, "1", T0 + dt.timedelta(minutes=minute))
    with pytest.raises(RateLimited) as caught:
        link(sqlite_store, user, "405583", T0 + dt.timedelta(minutes=30))
    assert caught.value.retry_after == 30 * 60
    assert link(sqlite_store, user, "405583", T0 + dt.timedelta(minutes=60, seconds=1))


def test_an_unthrottled_check_records_nothing(sqlite_store):
    load_rows(sqlite_store, service_rows("405583", "28624"))
    before = event_count(sqlite_store)
    for customer in ("405583", "1"):
        try:
            handlers.check_utility_values(
                sqlite_store, account_number="28624", customer_id=customer, limits=LIMITS
            )
        except InvalidInput:
            pass
    assert event_count(sqlite_store) == before


def test_a_throttle_key_must_be_short_text(sqlite_store):
    with pytest.raises(InvalidInput) as caught:
        handlers.check_utility_values(
            sqlite_store,
            account_number="28624",
            customer_id="405583",
            throttle_key="x" * 101,
            limits=LIMITS,
        )
    assert "throttle_key" in caught.value.errors
