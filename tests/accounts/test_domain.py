"""Aggregates and rules, without a store."""

import datetime as dt

import pytest

from services.accounts.domain.links import LinkGuard, LinkThrottled, ThrottleLimits, UserLinks
from services.accounts.domain.preferences import AccountPreferences
from services.accounts.domain.registry import Customer, import_event
from shared.errors import Conflict, InvalidInput, NotFound

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
LIMITS = ThrottleLimits(failures=10, window_seconds=3600)
ADDRESS = {
    "line1": "123 MAIN STREET",
    "line2": None,
    "city": "PLEASANTON",
    "state": "CA",
    "zip": "94566-7320",
}
NEW_ADDRESS = {**ADDRESS, "line1": "4 VALLEY AVE"}


def guard_with_failures(times):
    guard = LinkGuard("user:ana")
    for at in times:
        guard.record_failure(at, "utility")
    return guard


def test_the_throttle_allows_nine_failures_and_stops_at_ten():
    guard = guard_with_failures([T0 + dt.timedelta(minutes=i) for i in range(9)])
    guard.ensure_allowed(T0 + dt.timedelta(minutes=10), LIMITS)
    guard.record_failure(T0 + dt.timedelta(minutes=10), "utility")
    with pytest.raises(LinkThrottled) as caught:
        guard.ensure_allowed(T0 + dt.timedelta(minutes=11), LIMITS)
    # The oldest failure (10:00) leaves the window at 11:00: 49 minutes from 10:11.
    assert caught.value.retry_after == 49 * 60
    assert "try again in 49 minutes" in caught.value.detail
    assert caught.value.status == 429


def test_the_throttle_window_slides():
    guard = guard_with_failures([T0 + dt.timedelta(minutes=i) for i in range(10)])
    with pytest.raises(LinkThrottled):
        guard.ensure_allowed(T0 + dt.timedelta(minutes=59), LIMITS)
    guard.ensure_allowed(T0 + dt.timedelta(minutes=60, seconds=1), LIMITS)


def test_the_throttle_state_survives_a_replay():
    guard = guard_with_failures([T0] * 10)
    replayed = LinkGuard.from_events("user:ana", _envelopes(guard))
    with pytest.raises(LinkThrottled):
        replayed.ensure_allowed(T0 + dt.timedelta(minutes=1), LIMITS)


def _envelopes(agg):
    from shared.events import Envelope

    return [
        Envelope(
            str(i), e.type, 1, agg.stream_id, i + 1, i + 1, T0, None, None, None, "accounts", e.data
        )
        for i, e in enumerate(agg.pending_events())
    ]


def test_linking_twice_returns_the_same_link_and_records_once():
    links = UserLinks("ana")
    first = links.link(
        link_id="l1",
        type="utility",
        account_number="28624",
        customer_id="405583",
        via="link",
        now=T0,
    )
    again = links.link(
        link_id="l2",
        type="utility",
        account_number="28624",
        customer_id="405583",
        via="search",
        now=T0,
    )
    assert again["link_id"] == first["link_id"] == "l1"
    assert [e.type for e in links.pending_events()] == ["LinkCreated"]


def test_unlinking_forgets_remembered_values_that_would_relink():
    links = UserLinks("ana")
    links.link(
        link_id="l1",
        type="utility",
        account_number="28624",
        customer_id="405583",
        via="search",
        now=T0,
    )
    links.remember("utility", {"account_number": "28624", "customer_id": "405583"})
    links.remember("general", {"customer_id": "12345", "bill_number": "25"})
    links.unlink("l1")
    assert "utility" not in links.remembered and "general" in links.remembered
    assert [e.type for e in links.pending_events()][-2:] == ["LinkRemoved", "SearchValuesForgotten"]


def test_unlinking_a_link_the_user_does_not_hold_is_not_found():
    with pytest.raises(NotFound):
        UserLinks("ana").unlink("someone-elses")


def test_remembering_the_same_values_records_nothing():
    links = UserLinks("ana")
    links.remember("utility", {"account_number": "1", "customer_id": "2"})
    links.remember("utility", {"account_number": "1", "customer_id": "2"})
    links.forget("general")
    assert len(links.pending_events()) == 1


def customer():
    c = Customer("405583")
    c.record(
        "CustomerImported",
        {
            "customer_id": "405583",
            "name": "CITY OF PLEASANTON",
            "mailing_address": ADDRESS,
            "email": None,
        },
    )
    return c


def request(c, request_id="AR-1", effective=dt.date(2026, 12, 1)):
    c.request_address_change(
        request_id=request_id,
        account_number="28624",
        user_id="ana",
        current_address=ADDRESS,
        new_address=NEW_ADDRESS,
        effective_date=effective,
        today=T0.date(),
        now=T0,
    )


def test_an_approved_request_changes_the_address_of_record_from_its_date():
    c = customer()
    request(c)
    c.approve_address_change("AR-1", staff="staff:kim", now=T0)
    types = [e.type for e in c.pending_events()]
    assert types[-2:] == ["AddressChangeApproved", "CustomerAddressChanged"]
    changed = c.pending_events()[-1].data
    assert changed["mailing_address"]["line1"] == "4 VALLEY AVE"
    assert changed["effective_date"] == "2026-12-01"


def test_a_customer_has_one_pending_request_at_a_time():
    c = customer()
    request(c)
    with pytest.raises(Conflict) as caught:
        request(c, "AR-2")
    assert caught.value.code == "address_request_pending"
    c.cancel_address_change("AR-1", user_id="ana", now=T0)
    request(c, "AR-2")


def test_a_decided_request_cannot_be_decided_again():
    c = customer()
    request(c)
    c.reject_address_change("AR-1", staff="staff:kim", reason="Not the owner", now=T0)
    with pytest.raises(Conflict) as caught:
        c.approve_address_change("AR-1", staff="staff:kim", now=T0)
    assert caught.value.extra["status"] == "rejected"


def test_a_rejection_needs_a_reason():
    c = customer()
    request(c)
    with pytest.raises(InvalidInput) as caught:
        c.reject_address_change("AR-1", staff="staff:kim", reason="  ", now=T0)
    assert caught.value.errors == {"reason": "is required"}


@pytest.mark.parametrize(
    "days, field_message", [(-31, "no more than 30 days ago"), (366, "within 365 days")]
)
def test_the_effective_date_must_be_reasonable(days, field_message):
    with pytest.raises(InvalidInput) as caught:
        request(customer(), effective=T0.date() + dt.timedelta(days=days))
    assert field_message in caught.value.errors["effective_date"]


def test_asking_for_the_current_address_is_refused():
    c = customer()
    with pytest.raises(InvalidInput) as caught:
        c.request_address_change(
            request_id="AR-1",
            account_number="28624",
            user_id="ana",
            current_address=ADDRESS,
            new_address=dict(ADDRESS),
            effective_date=T0.date(),
            today=T0.date(),
            now=T0,
        )
    assert caught.value.code == "same_address"


def test_preferences_record_only_changes():
    prefs = AccountPreferences("28624")
    assert prefs.change(customer_id="405583", paperless=True, email_notices=True, user_id="ana")
    assert not prefs.change(customer_id="405583", paperless=True, email_notices=True, user_id="bo")
    assert prefs.as_dict() == {"paperless": True, "email_notices": True}
    assert len(prefs.pending_events()) == 1


def test_an_unchanged_snapshot_records_nothing_and_a_change_names_its_fields():
    snap = {"customer_id": "1", "name": "A", "mailing_address": ADDRESS, "email": None}
    assert import_event("Customer", snap, None, False)[0] == "CustomerImported"
    assert import_event("Customer", dict(snap), snap, True) is None
    changed = import_event("Customer", {**snap, "email": "a@example.com"}, snap, True)
    assert changed[0] == "CustomerChanged" and changed[1]["changed"] == ["email"]
