"""Recovery and account changes: forgot user ID or password, change password or email."""

import pytest

from shared.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthorized

pytestmark = pytest.mark.integration

NEW = "a brand new passphrase 7"


def test_reset_answers_the_same_whether_or_not_the_address_exists(identity):
    _, email, _ = identity.register_verified()
    _, stranger = identity.new_user("nobody")
    assert identity.rpc.request_password_reset(email, identity.ip()) == {}
    assert identity.rpc.request_password_reset(stranger, identity.ip()) == {}
    identity.link_token(email, "/reset-password")
    assert identity.mails_to(stranger) == []


def test_reset_revokes_every_session_does_not_sign_in_and_is_single_use(identity):
    user_id, email, password = identity.register_verified("reset")
    sessions = [identity.sign_in(user_id, password) for _ in range(2)]
    identity.rpc.request_password_reset(email, identity.ip())
    token = identity.link_token(email, "/reset-password")

    assert identity.rpc.reset_password(token, NEW) == {}  # no session in the answer
    for session in sessions:
        with pytest.raises(Unauthorized):
            identity.rpc.authenticate(session["token"])
    reset = identity.bus.wait("PasswordReset", user_id=user_id.lower())
    assert reset["data"]["sessions_ended"] == 2 and reset["data"]["email"] == email
    with pytest.raises(Unauthorized):
        identity.sign_in(user_id, password)
    identity.sign_in(user_id, NEW)
    notice = identity.wait_mail(email, "every session was signed out")
    assert user_id in str(notice.get_body(("plain",)).get_content())
    with pytest.raises(InvalidInput) as again:
        identity.rpc.reset_password(token, "yet another passphrase 9")
    assert again.value.code == "token_used"


def test_a_weak_new_password_keeps_the_reset_link_usable(identity):
    user_id, email, _ = identity.register_verified()
    identity.rpc.request_password_reset(email, identity.ip())
    token = identity.link_token(email, "/reset-password")
    with pytest.raises(InvalidInput) as weak:
        identity.rpc.reset_password(token, "qwerty123")
    assert "too common" in weak.value.errors["new_password"]
    identity.rpc.reset_password(token, NEW)
    identity.sign_in(user_id, NEW)


def test_only_the_newest_reset_link_works(identity):
    user_id, email, _ = identity.register_verified()
    identity.rpc.request_password_reset(email, identity.ip())
    old = identity.link_token(email, "/reset-password")
    identity.rpc.request_password_reset(email, identity.ip())
    new = identity.link_token(email, "/reset-password", after=2)
    with pytest.raises(InvalidInput):
        identity.rpc.reset_password(old, NEW)
    identity.rpc.reset_password(new, NEW)


def test_a_reset_also_unlocks_a_locked_account(identity):
    user_id, email, _ = identity.register_verified()
    for _ in range(10):
        with pytest.raises((Unauthorized, Forbidden)):
            identity.sign_in(user_id, "guessing wrong again")
    identity.rpc.request_password_reset(email, identity.ip())
    identity.rpc.reset_password(identity.link_token(email, "/reset-password"), NEW)
    assert identity.sign_in(user_id, NEW)["user"]["locked"] is False
    identity.bus.wait("AccountUnlocked", user_id=user_id.lower(), via="password_reset")


def test_forgot_user_id_is_mailed_through_an_event_and_never_revealed(identity):
    user_id, email, _ = identity.register_verified("Forgetful")
    _, stranger = identity.new_user()
    assert identity.rpc.remind_user_id(email, identity.ip()) == {}
    assert identity.rpc.remind_user_id(stranger, identity.ip()) == {}
    event = identity.bus.wait("UserIdReminderRequested", user_id=user_id.lower())
    assert event["data"]["display_user_id"] == user_id and event["data"]["email"] == email
    assert not identity.bus.of("UserIdReminderRequested", email=stranger)
    reminder = identity.wait_mail(email, "You asked for the user ID")
    assert f"    {user_id}" in reminder.get_body(("plain",)).get_content()
    assert identity.mails_to(stranger) == []


def test_recovery_requests_are_limited_per_address(identity):
    _, email, _ = identity.register_verified()
    for _ in range(5):
        identity.rpc.request_password_reset(email, identity.ip())
    with pytest.raises(RateLimited):
        identity.rpc.remind_user_id(email, identity.ip())


def test_change_password_needs_the_current_one_and_can_end_other_sessions(identity):
    user_id, email, password = identity.register_verified()
    here = identity.sign_in(user_id, password)
    elsewhere = identity.sign_in(user_id, password)
    with pytest.raises(InvalidInput) as wrong:
        identity.rpc.change_password(user_id, "not the password", NEW, True, here["session_id"])
    assert wrong.value.errors == {"current_password": "is not correct"}
    with pytest.raises(InvalidInput) as same:
        identity.rpc.change_password(user_id, password, password, True, here["session_id"])
    assert "different" in same.value.errors["new_password"]

    result = identity.rpc.change_password(user_id, password, NEW, True, here["session_id"])
    assert result == {"sessions_ended": 1}
    assert identity.rpc.authenticate(here["token"])["user_id"] == user_id.lower()
    with pytest.raises(Unauthorized):
        identity.rpc.authenticate(elsewhere["token"])
    identity.bus.wait("PasswordChanged", user_id=user_id.lower(), other_sessions_ended=1)
    identity.sign_in(user_id, NEW)
    identity.wait_mail(email, "password", after=1)  # the notice, after the verification link


def test_change_password_keeps_other_sessions_unless_asked(identity):
    user_id, _, password = identity.register_verified()
    here = identity.sign_in(user_id, password)
    elsewhere = identity.sign_in(user_id, password)
    identity.rpc.change_password(user_id, password, NEW, False, here["session_id"])
    identity.rpc.authenticate(elsewhere["token"])


def test_reauthentication_is_limited_per_user(identity):
    user_id, _, password = identity.register_verified()
    for _ in range(3):
        with pytest.raises(InvalidInput):
            identity.rpc.change_password(user_id, "wrong guess here", NEW)
    with pytest.raises(RateLimited):
        identity.rpc.change_password(user_id, password, NEW)


def test_change_email_reauthenticates_verifies_the_new_address_then_switches(identity):
    user_id, old, password = identity.register_verified("mover")
    _, new = identity.new_user("moved")
    with pytest.raises(InvalidInput) as wrong:
        identity.rpc.change_email(user_id, "wrong password 1", new)
    assert wrong.value.errors == {"password": "is not correct"}
    assert identity.rpc.change_email(user_id, password, new) == {"pending_email": new}
    assert identity.rpc.get_profile(user_id)["email"] == old  # not until verified

    verified = identity.rpc.verify_email(identity.link_token(new, "/verify-email"))
    assert verified["purpose"] == "email_change" and verified["email"] == new
    assert identity.rpc.get_profile(user_id)["email"] == new
    changed = identity.bus.wait("EmailChanged", user_id=user_id.lower())
    assert changed["data"]["old_email"] == old and changed["data"]["new_email"] == new
    identity.sign_in(new, password)
    with pytest.raises(Unauthorized):
        identity.sign_in(old, password)
    notice = identity.wait_mail(old, "was changed")  # the old address is told
    assert f"{new[0]}***@example.org" in notice.get_body(("plain",)).get_content()


def test_an_address_verified_by_another_account_stays_with_it(identity):
    owner, email, _ = identity.register_verified("owner")
    user_id, other_email, password = identity.register_verified("other")
    identity.rpc.change_email(user_id, password, email)  # no sign of the owner in the answer
    with pytest.raises(Conflict) as taken:
        identity.rpc.verify_email(identity.link_token(email, "/verify-email", after=1))
    assert taken.value.code == "email_taken" and owner in taken.value.detail
    assert identity.rpc.get_profile(user_id)["email"] == other_email


def test_registering_with_an_address_that_has_an_account_reveals_nothing_until_verified(identity):
    owner, email, _ = identity.register_verified("first")
    newcomer, _ = identity.new_user("second")
    answer = identity.register(newcomer, email, "another fine passphrase")
    assert answer["status"] == "pending_verification"
    with pytest.raises(Conflict) as taken:
        identity.rpc.verify_email(identity.link_token(email, "/verify-email", after=1))
    assert owner in taken.value.detail  # only the address's owner reads this
