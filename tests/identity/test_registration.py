"""A resident registers, proves their email and signs in, through the service's RPC."""

import pytest

from shared.errors import Conflict, Forbidden, InvalidInput, RateLimited

pytestmark = pytest.mark.integration

GOOD = "quiet river lantern 42"


def test_resident_registers_verifies_by_the_emailed_link_and_signs_in(identity):
    user_id, email = identity.new_user("Ana")
    result = identity.register(user_id, email, GOOD)
    assert result == {
        "user_id": user_id.lower(),
        "display_user_id": user_id,
        "email": email,
        "status": "pending_verification",
    }
    with pytest.raises(Forbidden) as refused:
        identity.sign_in(user_id, GOOD)
    assert refused.value.code == "email_not_verified"

    token = identity.link_token(email, "/verify-email")
    assert len(token) >= 43  # 256 bits in base64url; the rules ask for 128 at least
    mail = identity.mails_to(email)[0]
    assert "Verify your email address" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert f"user ID {user_id}" in text and "expires in 24 hours" in text
    verified = identity.rpc.verify_email(token)
    assert verified["user_id"] == user_id.lower() and verified["email"] == email
    assert verified["legacy_matches"] == [] and verified["restored"] == []

    session = identity.sign_in(user_id.upper(), GOOD)
    assert session["user"]["email_verified"] is True
    assert session["user"]["display_user_id"] == user_id
    assert session["user"]["has_password"] is True


def test_verification_link_is_single_use_and_unknown_links_are_refused(identity):
    user_id, email = identity.new_user()
    identity.register(user_id, email, GOOD)
    token = identity.link_token(email, "/verify-email")
    identity.rpc.verify_email(token)
    with pytest.raises(InvalidInput) as used:
        identity.rpc.verify_email(token)
    assert used.value.code == "token_used"
    with pytest.raises(InvalidInput) as unknown:
        identity.rpc.verify_email(token[:-4] + "AAAA")
    assert unknown.value.code == "token_invalid"


def test_verification_can_be_resent_and_either_link_works(identity):
    user_id, email = identity.new_user()
    identity.register(user_id, email, GOOD)
    first = identity.link_token(email, "/verify-email")
    assert identity.rpc.resend_verification(email, identity.ip()) == {}
    second = identity.link_token(email, "/verify-email", after=1)
    assert second != first
    identity.rpc.verify_email(second)
    assert identity.sign_in(email, GOOD)["user"]["user_id"] == user_id.lower()


def test_resend_answers_the_same_for_an_unknown_address(identity):
    _, nobody = identity.new_user("ghost")
    assert identity.rpc.resend_verification(nobody, identity.ip()) == {}
    assert identity.mails_to(nobody) == []


def test_user_ids_are_unique_without_regard_to_case(identity):
    user_id, email = identity.new_user("Case")
    identity.register(user_id, email, GOOD)
    _, other = identity.new_user()
    with pytest.raises(Conflict) as taken:
        identity.register(user_id.swapcase(), other, GOOD)
    assert taken.value.code == "user_id_taken"
    assert taken.value.errors == {"user_id": "is already taken"}


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short7!", "at least 8"),
        ("password1", "too common"),
        ("Iloveyou2", "too common"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("x" * 257, "at most 256"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(identity, password, reason):
    user_id, email = identity.new_user()
    with pytest.raises(InvalidInput) as refused:
        identity.register(user_id, email, password)
    assert reason in refused.value.errors["password"]
    with pytest.raises(Exception) as missing:
        identity.rpc.get_profile(user_id)
    assert missing.value.code == "user_not_found"


@pytest.mark.parametrize(
    "password",
    [
        "the tram to the harbour leaves at dawn",  # lowercase words only: no composition rules
        "ñandú café crème brûlée",  # unicode
        "z" + "9h#Tq w" * 9,  # 64 characters
    ],
)
def test_passphrases_without_composition_rules_are_accepted(identity, password):
    user_id, email = identity.new_user()
    assert identity.register(user_id, email, password)["status"] == "pending_verification"
    identity.rpc.verify_email(identity.link_token(email, "/verify-email"))
    assert identity.sign_in(email, password)["user"]["user_id"] == user_id.lower()


def test_password_may_not_be_the_user_id(identity):
    user_id, email = identity.new_user("samepw")
    with pytest.raises(InvalidInput) as refused:
        identity.register(user_id, email, user_id.upper())
    assert "user ID" in refused.value.errors["password"]


BAD_VALUES = [
    "",
    " ",
    "x" * 10_000,
    "名前ユーザー",
    "a'; DROP TABLE users;--",
    "<script>x</script>",
]


@pytest.mark.parametrize("field", ["user_id", "email"])
@pytest.mark.parametrize(
    "value", BAD_VALUES, ids=["empty", "blank", "huge", "unicode", "sql", "html"]
)
def test_bad_input_gets_a_field_error_and_changes_nothing(identity, field, value):
    user_id, email = identity.new_user()
    payload = {"user_id": user_id, "email": email, "password": GOOD, "client_ip": identity.ip()}
    payload[field] = value
    before = identity.event_count()
    with pytest.raises(InvalidInput) as refused:
        identity.rpc.register(payload)
    assert field in refused.value.errors
    assert identity.event_count() == before


@pytest.mark.parametrize("payload", [None, [], "text", {"user_id": 5, "email": [], "password": {}}])
def test_malformed_payloads_are_refused_with_field_errors(identity, payload):
    with pytest.raises(InvalidInput) as refused:
        identity.rpc.register(payload)
    assert refused.value.errors


def test_registrations_are_limited_per_ip(identity):
    ip = identity.ip()
    for _ in range(4):
        user_id, email = identity.new_user()
        identity.register(user_id, email, GOOD, client_ip=ip)
    user_id, email = identity.new_user()
    with pytest.raises(RateLimited) as limited:
        identity.register(user_id, email, GOOD, client_ip=ip)
    assert limited.value.retry_after > 0  # (over RPC, nameko turns the number into text)
    identity.register(user_id, email, GOOD)  # another network is not affected


def test_registrations_are_limited_per_email_and_refusals_count(identity):
    _, email = identity.new_user()
    for _ in range(3):
        user_id, _ = identity.new_user()
        with pytest.raises(InvalidInput):
            identity.register(user_id, email, "password")  # refused, but still counted
    user_id, _ = identity.new_user()
    with pytest.raises(RateLimited):
        identity.register(user_id, email, GOOD)
