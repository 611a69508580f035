"""Unit tests of the aggregates: rules checked, events recorded, state rebuilt from them."""

import datetime as dt

import pytest

from services.identity.domain.errors import AccountLocked, EmailNotVerified, UserIdTaken
from services.identity.domain.legacy import LegacyUser, legacy_id_for
from services.identity.domain.user import EmailAddress, User
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.events import Envelope

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def _replayed(agg):
    """The same aggregate rebuilt from its recorded events, as a load would."""
    envelopes = [
        Envelope("e", ev.type, 1, agg.stream_id, i, i, NOW, None, None, None, "identity", ev.data)
        for i, ev in enumerate(agg.pending_events(), start=1)
    ]
    return type(agg).from_events(agg.id, envelopes)


def _user():
    user = User("ana")
    user.register(display_user_id="Ana", email="ana@example.org")
    return user


def test_registering_twice_is_refused():
    user = _user()
    with pytest.raises(UserIdTaken):
        user.register(display_user_id="ANA", email="other@example.org")


def test_sign_in_waits_for_a_verified_email():
    user = _user()
    with pytest.raises(EmailNotVerified):
        user.check_can_sign_in()
    assert user.verify_email("ANA@example.org") is True
    assert user.verify_email("ana@example.org") is False  # already verified: no new event
    user.check_can_sign_in()


def test_ten_consecutive_failures_lock_and_state_replays():
    user = _user()
    user.verify_email("ana@example.org")
    locks = [user.sign_in_failed(client_ip="10.0.0.1", lock_after=10) for _ in range(10)]
    assert locks == [False] * 9 + [True]
    with pytest.raises(AccountLocked):
        user.check_can_sign_in()
    replayed = _replayed(user)
    assert replayed.locked and replayed.failures == 10
    assert [e.type for e in user.pending_events()][-2:] == ["SignInFailed", "AccountLocked"]
    assert user.unlock("email_link") is True
    assert user.unlock("email_link") is False
    assert not _replayed(user).locked and _replayed(user).failures == 0


def test_a_success_resets_consecutive_failures():
    user = _user()
    for _ in range(9):
        user.sign_in_failed(client_ip=None, lock_after=10)
    user.signed_in(
        session_id="s1",
        method="password",
        remember_me=False,
        client_ip=None,
        user_agent=None,
        expires_at=NOW,
    )
    assert user.pending_events()[-1].data["failures_before"] == 9
    assert user.sign_in_failed(client_ip=None, lock_after=10) is False
    assert _replayed(user).failures == 1


def test_external_users_have_no_password_to_change():
    user = User("ext-1")
    user.register(display_user_id="ext-1", email="e@example.org", via="oidc", provider="google")
    with pytest.raises(Forbidden) as refused:
        user.change_password(0)
    assert refused.value.code == "no_local_password" and "google" in refused.value.detail


def test_an_email_change_to_the_same_address_is_refused():
    user = _user()
    with pytest.raises(InvalidInput):
        user.request_email_change("ANA@example.org")


def test_an_address_has_one_owner():
    address = EmailAddress("k")
    address.claim("ana@example.org", "ana")
    address.claim("ana@example.org", "ana")  # idempotent
    with pytest.raises(Conflict):
        address.claim("ana@example.org", "bob")
    address.release("ana@example.org", "ana")
    address.claim("ana@example.org", "bob")
    assert _replayed(address).owner == "bob"


def test_legacy_users_import_idempotently_and_are_claimed_once():
    legacy = LegacyUser(legacy_id_for("OldAna"))
    assert legacy_id_for("OldAna") == legacy_id_for(" oldana ")
    assert legacy.load_from_import("OldAna", "ana@example.org", ["1"]) == "imported"
    legacy = _replayed(legacy)
    assert legacy.load_from_import("OldAna", "ana@example.org", ["1"]) == "unchanged"
    assert legacy.load_from_import("OldAna", "ana@example.org", ["1", "2"]) == "updated"
    assert legacy.matches("ANA@example.org", "ana")
    legacy.decline("bob")
    assert not legacy.matches("ana@example.org", "bob")
    legacy.claim("ana")
    with pytest.raises(Conflict):
        legacy.claim("carl")
    assert legacy.load_from_import("OldAna", "new@example.org", ["9"]) == "unchanged"
