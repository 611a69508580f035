"""Signing in, locking, unlocking and sessions, through the service's RPC."""

import datetime as dt

import pytest

from shared.errors import Forbidden, NotFound, RateLimited, Unauthorized

pytestmark = pytest.mark.integration


def _now():
    return dt.datetime.now(dt.UTC)


def test_wrong_user_and_wrong_password_get_the_same_answer(identity):
    user_id, email, password = identity.register_verified()
    with pytest.raises(Unauthorized) as wrong_password:
        identity.sign_in(user_id, password + "x")
    nobody, _ = identity.new_user("nobody")
    with pytest.raises(Unauthorized) as wrong_user:
        identity.sign_in(nobody, password)
    with pytest.raises(Unauthorized) as wrong_email:
        identity.sign_in(f"{nobody}@example.org", password)
    answers = {(e.value.code, e.value.detail) for e in (wrong_password, wrong_user, wrong_email)}
    assert answers == {("invalid_credentials", "The user ID, email or password is not correct.")}


def test_sign_in_by_user_id_or_email_in_any_case(identity):
    user_id, email, password = identity.register_verified("Mixed")
    for login in (user_id, user_id.upper(), email, email.upper()):
        assert identity.sign_in(login, password)["user"]["user_id"] == user_id.lower()


def test_every_sign_in_gets_a_new_session_and_token(identity):
    user_id, _, password = identity.register_verified()
    first = identity.sign_in(user_id, password)
    second = identity.sign_in(user_id, password)
    assert first["token"] != second["token"] and first["session_id"] != second["session_id"]
    for session in (first, second):
        seen = identity.rpc.authenticate(session["token"])
        assert seen["user_id"] == user_id.lower() and seen["session_id"] == session["session_id"]


def test_remember_me_lasts_30_days_otherwise_30_minutes_idle(identity):
    user_id, _, password = identity.register_verified()
    remembered = identity.sign_in(user_id, password, remember_me=True)
    ordinary = identity.sign_in(user_id, password)
    long_end = dt.datetime.fromisoformat(remembered["expires_at"]) - _now()
    short_end = dt.datetime.fromisoformat(ordinary["expires_at"]) - _now()
    assert dt.timedelta(days=29, hours=23) < long_end <= dt.timedelta(days=30)
    assert dt.timedelta(minutes=29) < short_end <= dt.timedelta(minutes=30)
    assert identity.rpc.authenticate(remembered["token"])["remember_me"] is True
    assert identity.rpc.authenticate(ordinary["token"])["remember_me"] is False


def test_sign_out_ends_the_session_on_the_server(identity):
    user_id, _, password = identity.register_verified()
    session = identity.sign_in(user_id, password)
    other = identity.sign_in(user_id, password)
    assert identity.rpc.sign_out(session["token"]) == {}
    with pytest.raises(Unauthorized) as ended:
        identity.rpc.authenticate(session["token"])
    assert ended.value.code == "session_invalid"
    assert identity.rpc.sign_out(session["token"]) == {}  # twice is fine
    assert identity.rpc.authenticate(other["token"])["user_id"] == user_id.lower()
    identity.bus.wait("SessionEnded", session_id=session["session_id"], reason="signed_out")


@pytest.mark.parametrize("token", ["", "garbage", "x" * 10_000, None, 42, "<script>"])
def test_junk_session_tokens_are_not_signed_in(identity, token):
    with pytest.raises(Unauthorized) as refused:
        identity.rpc.authenticate(token)
    assert refused.value.code == "session_invalid"


def test_user_lists_sessions_and_revokes_the_others(identity):
    user_id, _, password = identity.register_verified()
    here = identity.sign_in(user_id, password, user_agent="Firefox on the kitchen laptop")
    phone = identity.sign_in(user_id, password, user_agent="Safari on a phone")
    library = identity.sign_in(user_id, password, user_agent="Library kiosk")
    listed = identity.rpc.list_sessions(user_id, here["session_id"])
    assert {s["session_id"] for s in listed} == {
        here["session_id"],
        phone["session_id"],
        library["session_id"],
    }
    assert [s["current"] for s in listed if s["session_id"] == here["session_id"]] == [True]
    assert {s["user_agent"] for s in listed} >= {"Safari on a phone", "Library kiosk"}

    identity.rpc.revoke_session(user_id, library["session_id"])
    with pytest.raises(Unauthorized):
        identity.rpc.authenticate(library["token"])
    assert identity.rpc.revoke_other_sessions(user_id, here["session_id"]) == {"revoked": 1}
    with pytest.raises(Unauthorized):
        identity.rpc.authenticate(phone["token"])
    remaining = identity.rpc.list_sessions(user_id, here["session_id"])
    assert [s["session_id"] for s in remaining] == [here["session_id"]]


def test_a_user_cannot_revoke_someone_elses_session(identity):
    ana, _, password = identity.register_verified("ana")
    bob, _, bob_password = identity.register_verified("bob")
    bobs = identity.sign_in(bob, bob_password)
    with pytest.raises(NotFound):
        identity.rpc.revoke_session(ana, bobs["session_id"])
    assert identity.rpc.authenticate(bobs["token"])["user_id"] == bob.lower()


def test_profile_shows_the_last_successful_login_and_failures_since(identity):
    user_id, _, password = identity.register_verified()
    first = identity.sign_in(user_id, password, client_ip="192.0.2.10")
    assert first["user"]["last_successful_login"] is None
    for _ in range(2):
        with pytest.raises(Unauthorized):
            identity.sign_in(user_id, "not my password at all")
    second = identity.sign_in(user_id, password)
    profile = second["user"]
    assert profile["last_successful_login"] == first["user"]["current_login_at"]
    assert profile["last_successful_login_ip"] == "192.0.2.10"
    assert profile["failed_sign_ins_before_current_login"] == 2
    assert identity.rpc.get_profile(user_id) == profile


def test_ten_consecutive_failures_lock_the_account_and_mail_an_unlock_link(identity):
    user_id, email, password = identity.register_verified("lock")
    for _ in range(9):
        with pytest.raises(Unauthorized):
            identity.sign_in(user_id, "wrong password guess")
    with pytest.raises(Forbidden) as locked:
        identity.sign_in(user_id, "wrong password guess")
    assert locked.value.code == "account_locked"
    with pytest.raises(Forbidden) as still:
        identity.sign_in(user_id, password)  # even the right password waits for the unlock
    assert still.value.code == "account_locked"
    identity.bus.wait("AccountLocked", user_id=user_id.lower())
    assert identity.rpc.get_profile(user_id)["locked"] is True

    token = identity.link_token(email, "/unlock")
    assert "Unlock your" in identity.wait_mail(email, "/unlock?token=")["Subject"]
    assert identity.rpc.unlock(token) == {}  # unlocking does not sign in
    identity.bus.wait("AccountUnlocked", user_id=user_id.lower(), via="email_link")
    assert identity.sign_in(user_id, password)["user"]["locked"] is False


def test_a_success_resets_the_count_of_consecutive_failures(identity):
    user_id, _, password = identity.register_verified()
    for _round in range(2):
        for _ in range(9):
            with pytest.raises(Unauthorized):
                identity.sign_in(user_id, "wrong password guess")
        identity.sign_in(user_id, password)


def test_unknown_logins_answer_like_locked_accounts_after_ten_failures(identity):
    nobody, _ = identity.new_user("ghost")
    codes = []
    for _ in range(11):
        with pytest.raises((Unauthorized, Forbidden)) as refused:
            identity.sign_in(nobody, "some password 1")
        codes.append(refused.value.code)
    assert codes == ["invalid_credentials"] * 9 + ["account_locked"] * 2


def test_unlock_can_be_requested_again_with_the_same_answer_for_anyone(identity):
    user_id, email, password = identity.register_verified("relock")
    _, stranger = identity.new_user("stranger")
    assert identity.rpc.request_unlock(email) == {}  # not locked: nothing is sent
    assert identity.rpc.request_unlock(stranger) == {}
    for _ in range(10):
        with pytest.raises((Unauthorized, Forbidden)):
            identity.sign_in(user_id, "wrong password guess")
    identity.link_token(email, "/unlock")
    sent = len(identity.mails_to(email))
    assert identity.rpc.request_unlock(email, identity.ip()) == {}
    newest = identity.link_token(email, "/unlock", after=sent)
    identity.rpc.unlock(newest)
    identity.sign_in(user_id, password)
    assert identity.mails_to(stranger) == []


def test_failed_sign_ins_are_limited_per_ip(identity):
    ip = identity.ip()
    for _ in range(15):
        nobody, _ = identity.new_user("scan")
        with pytest.raises(Unauthorized):
            identity.sign_in(nobody, "password guess 1", client_ip=ip)
    user_id, _, password = identity.register_verified()
    with pytest.raises(RateLimited) as limited:
        identity.sign_in(user_id, password, client_ip=ip)
    assert limited.value.retry_after > 0
    assert identity.sign_in(user_id, password)["user"]["user_id"] == user_id.lower()


def test_no_raw_token_ever_reaches_the_bus(identity):
    user_id, email, password = identity.register_verified("secret")
    session = identity.sign_in(user_id, password)
    tokens = [session["token"], identity.link_token(email, "/verify-email")]
    identity.bus.wait("SignedIn", session_id=session["session_id"])
    assert identity.bus.raw
    assert not [raw for raw in identity.bus.raw for t in tokens if t in raw]
