"""Bad input to every RPC gets an error naming the field, and changes nothing."""

import pytest

from shared.errors import InvalidInput, NotFound, Unauthorized

pytestmark = pytest.mark.integration

HUGE = "x" * 10_000
UNICODE = "名前ユーザー"
SQL = "a'; DROP TABLE users;--"
HTML = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def resident(identity):
    return identity.register_verified("bad")


def _unchanged(identity, call):
    before = identity.event_count()
    with pytest.raises(InvalidInput) as refused:
        call()
    assert identity.event_count() == before
    return refused.value


@pytest.mark.parametrize(
    "field, value",
    [
        ("login", ""),
        ("login", HUGE),
        ("password", ""),
        ("password", HUGE),
        ("client_ip", "not-an-ip"),
        ("client_ip", SQL),
        ("remember_me", "perhaps"),
    ],
)
def test_sign_in_fields(identity, resident, field, value):
    payload = {"login": resident[0], "password": resident[2], "client_ip": identity.ip()}
    payload[field] = value
    assert field in _unchanged(identity, lambda: identity.rpc.sign_in(payload)).errors


@pytest.mark.parametrize("login", [UNICODE, SQL, HTML, "ana\u202eevil"])
def test_odd_but_well_formed_logins_are_simply_wrong(identity, login):
    with pytest.raises(Unauthorized) as refused:
        identity.sign_in(login, "some password 1")
    assert refused.value.code == "invalid_credentials"


@pytest.mark.parametrize("email", ["", HUGE, UNICODE + "@example.org", SQL, HTML, None, 7])
@pytest.mark.parametrize(
    "method", ["resend_verification", "request_password_reset", "remind_user_id", "request_unlock"]
)
def test_mail_requests_check_the_address(identity, method, email):
    error = _unchanged(identity, lambda: getattr(identity.rpc, method)(email, identity.ip()))
    assert "email" in error.errors


@pytest.mark.parametrize("token", ["", HUGE, None, {"a": 1}])
@pytest.mark.parametrize("method", ["verify_email", "unlock"])
def test_link_tokens_are_checked(identity, method, token):
    error = _unchanged(identity, lambda: getattr(identity.rpc, method)(token))
    assert "token" in error.errors


@pytest.mark.parametrize("token", [UNICODE, SQL, HTML, "A" * 43])
def test_well_formed_but_unknown_links_are_invalid(identity, token):
    error = _unchanged(identity, lambda: identity.rpc.verify_email(token))
    assert error.code == "token_invalid"


def test_reset_password_checks_both_fields(identity):
    error = _unchanged(identity, lambda: identity.rpc.reset_password("", HUGE))
    assert set(error.errors) == {"token", "new_password"}


@pytest.mark.parametrize("user_id", ["", HUGE, UNICODE, SQL, HTML])
def test_user_ids_of_queries_are_checked(identity, user_id):
    for call in (
        lambda: identity.rpc.get_profile(user_id),
        lambda: identity.rpc.list_sessions(user_id, None),
        lambda: identity.rpc.legacy_matches(user_id),
        lambda: identity.rpc.revoke_other_sessions(user_id, None),
    ):
        assert "user_id" in _unchanged(identity, call).errors


def test_unknown_users_are_not_found(identity):
    nobody, _ = identity.new_user("nobody")
    with pytest.raises(NotFound):
        identity.rpc.get_profile(nobody)


def test_change_email_checks_the_new_address_first(identity, resident):
    user_id, _, password = resident
    for bad in ("", HUGE, SQL, HTML, UNICODE):
        error = _unchanged(identity, lambda b=bad: identity.rpc.change_email(user_id, password, b))
        assert "new_email" in error.errors


def test_claim_legacy_checks_its_list(identity, resident):
    user_id = resident[0]
    for bad in (None, "lg-1", [HUGE], [1, 2], ["x"] * 51):
        error = _unchanged(identity, lambda b=bad: identity.rpc.claim_legacy(user_id, b))
        assert "legacy_ids" in " ".join(error.errors)


def test_register_with_control_characters_and_wrong_types(identity):
    user_id, email = identity.new_user()
    payload = {"user_id": user_id + "\x00", "email": email, "password": 12345678, "client_ip": "x"}
    error = _unchanged(identity, lambda: identity.rpc.register(payload))
    assert set(error.errors) == {"user_id", "password", "client_ip"}
