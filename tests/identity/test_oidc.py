"""Community access: sign-in with an external OpenID Connect provider (a real one, started here)."""

import urllib.parse as up
import uuid

import pytest
import requests

from shared.errors import Conflict, Forbidden, InvalidInput, Unauthorized

pytestmark = pytest.mark.integration

CALLBACK = "https://portal.test/oidc/callback"


def _claims(identity, sub, **claims):
    claims.setdefault("email", f"{sub}@mail.example")
    claims.setdefault("email_verified", True)
    response = requests.put(f"{identity.oidc_issuer}/users/{sub}", json=claims, timeout=5)
    assert response.status_code == 204


def _authorize(identity, sub, provider="mock", tamper=None):
    """Start at the portal, sign in at the provider, come back: (code, state) from the redirect."""
    url = identity.rpc.oidc_start(provider, CALLBACK)["authorization_url"]
    if tamper:
        requests.post(f"{identity.oidc_issuer}/_control", json={"tamper": tamper}, timeout=5)
    answer = requests.post(url, data={"sub": sub}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = up.urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = dict(up.parse_qsl(location.query))
    return query["code"], query["state"]


def _sign_in(identity, sub, provider="mock", tamper=None):
    code, state = _authorize(identity, sub, provider, tamper)
    return identity.rpc.oidc_complete(provider, code, state, identity.ip(), "test browser")


def test_providers_are_listed_for_the_sign_in_page(identity):
    listed = identity.rpc.oidc_providers()
    assert {"provider": "mock", "name": "Mock ID"} in listed


def test_authorization_request_uses_pkce_state_and_nonce(identity):
    url = identity.rpc.oidc_start("mock", CALLBACK)["authorization_url"]
    query = dict(up.parse_qsl(up.urlparse(url).query))
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43 and query["redirect_uri"] == CALLBACK
    assert "openid" in query["scope"].split()


def test_first_external_sign_in_creates_a_user_without_a_password(identity):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub)
    first = _sign_in(identity, sub)
    user = first["user"]
    assert first["created"] is True
    assert user["has_password"] is False and user["external_provider"] == "mock"
    assert user["email"] == f"{sub}@mail.example" and user["email_verified"] is True
    assert identity.rpc.authenticate(first["token"])["user_id"] == user["user_id"]
    registered = identity.bus.wait("UserRegistered", user_id=user["user_id"])
    assert registered["data"]["via"] == "oidc"
    assert registered["data"]["issuer"] == identity.oidc_issuer

    again = _sign_in(identity, sub)
    assert again["created"] is False and again["user"]["user_id"] == user["user_id"]
    assert again["token"] != first["token"]

    with pytest.raises(Forbidden) as no_password:
        identity.rpc.change_password(user["user_id"], "anything at all", "something new 123")
    assert no_password.value.code == "no_local_password"
    with pytest.raises(Unauthorized):
        identity.sign_in(user["email"], "any password guess")


@pytest.mark.parametrize(
    "tamper, reason",
    [
        ("nonce", "id_token_invalid_claim_nonce"),
        ("aud", "id_token_invalid_claim_aud"),
        ("iss", "id_token_invalid_claim_iss"),
        ("expired", "id_token_expired_token_exp"),
        ("bad_signature", "id_token_bad_signature"),
        ("unknown_kid", "id_token_invalid_key_id"),
    ],
)
def test_id_tokens_that_fail_a_check_are_refused(identity, tamper, reason):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub)
    with pytest.raises(Unauthorized) as refused:
        _sign_in(identity, sub, tamper=tamper)
    assert refused.value.code == "external_sign_in_failed"
    assert refused.value.extra["reason"] == reason
    assert not identity.bus.of("ExternalIdentityLinked", subject=sub)


def test_a_rotated_signing_key_is_fetched_from_the_jwks(identity):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub)
    _sign_in(identity, sub, provider="mock-rotating")  # keys now cached
    rotated = _sign_in(identity, sub, provider="mock-rotating", tamper="rotate")
    assert rotated["created"] is False


def test_state_is_single_use(identity):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub)
    code, state = _authorize(identity, sub)
    identity.rpc.oidc_complete("mock", code, state, identity.ip())
    code2, _ = _authorize(identity, sub)
    with pytest.raises(Unauthorized) as replay:
        identity.rpc.oidc_complete("mock", code2, state, identity.ip())
    assert replay.value.extra["reason"] == "state"


def test_an_unverified_provider_email_is_not_accepted(identity):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub, email_verified=False)
    with pytest.raises(Forbidden) as refused:
        _sign_in(identity, sub)
    assert refused.value.code == "external_email_unverified"


def test_an_address_of_a_password_account_is_not_taken_over(identity):
    _, email, _ = identity.register_verified("local")
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    _claims(identity, sub, email=email)
    with pytest.raises(Conflict) as taken:
        _sign_in(identity, sub)
    assert taken.value.code == "email_in_use"


@pytest.mark.parametrize(
    "provider, redirect_uri, field",
    [
        ("nope", CALLBACK, "provider"),
        ("mock", "http://evil.example/cb", "redirect_uri"),
        ("mock", "javascript:alert(1)", "redirect_uri"),
        ("mock", "", "redirect_uri"),
        ("x" * 10_000, CALLBACK, "provider"),
    ],
    ids=["unknown-provider", "http-elsewhere", "javascript", "empty", "huge-provider"],
)
def test_bad_start_requests_name_the_field(identity, provider, redirect_uri, field):
    with pytest.raises(InvalidInput) as refused:
        identity.rpc.oidc_start(provider, redirect_uri)
    assert field in refused.value.errors
