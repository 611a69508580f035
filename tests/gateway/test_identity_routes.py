"""Registering, verifying, signing in and out, recovery and profile changes, over HTTP."""

from __future__ import annotations

import urllib.parse

import requests

from tests.gateway.conftest import PASSWORD, Client, problem, unique, verification_token


def test_resident_registers_with_a_bill_verifies_and_signs_in(stack, client):
    user_id = unique()
    email = f"{user_id}@example.org"
    response = client.post(
        "/api/v1/registrations",
        {
            "user_id": user_id,
            "email": email,
            "password": PASSWORD,
            "account_number": "028624",
            "customer_id": "405583",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending_verification"
    assert body["linked_account"] == "28624"

    unverified = client.post("/api/v1/sessions", {"login": user_id, "password": PASSWORD})
    assert problem(unverified, 403)["code"] == "email_not_verified"

    token = verification_token(stack, email)
    verified = client.post("/api/v1/email-verifications", {"token": token})
    assert verified.status_code == 200
    assert verified.json()["email"] == email
    again = client.post("/api/v1/email-verifications", {"token": token})
    assert problem(again, 422)["code"] == "token_used"

    signed_in = client.post(
        "/api/v1/sessions", {"login": email, "password": PASSWORD, "remember_me": True}
    )
    assert signed_in.status_code == 201, signed_in.text
    session = signed_in.json()
    assert {"token", "csrf_token", "expires_at"} <= set(session)
    cookie = signed_in.headers["Set-Cookie"]
    assert "mp_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=" in cookie  # remember me: a lasting cookie
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["user"]["user_id"] == user_id.lower()
    links = client.get("/api/v1/me/links").json()["links"]
    assert [link["account_number"] for link in links] == ["28624"]


def test_registration_errors_name_the_field(stack, client):
    body = problem(
        client.post("/api/v1/registrations", {"user_id": "x", "email": "not-an-email"}), 422
    )
    assert "password" in body["errors"]
    half = client.post(
        "/api/v1/registrations",
        {
            "user_id": unique(),
            "email": "a@example.org",
            "password": PASSWORD,
            "account_number": "1",
        },
    )
    assert set(problem(half, 422)["errors"]) == {"customer_id"}
    wrong = client.post(
        "/api/v1/registrations",
        {
            "user_id": unique(),
            "email": f"{unique()}@example.org",
            "password": PASSWORD,
            "account_number": "28624",
            "customer_id": "999999",
        },
    )
    assert problem(wrong, 422)["code"] == "no_account_match"


def test_a_taken_user_id_is_a_conflict(stack, make_resident, client):
    taken = make_resident()
    response = client.post(
        "/api/v1/registrations",
        {"user_id": taken.user_id, "email": f"{unique()}@example.org", "password": PASSWORD},
    )
    assert problem(response, 409)["code"] == "user_id_taken"


def test_wrong_password_is_401_and_sign_out_ends_the_session(stack, make_resident):
    resident = make_resident()
    other = Client(stack.base_url)
    wrong = other.post("/api/v1/sessions", {"login": resident.user_id, "password": "nope nope 1"})
    assert problem(wrong, 401)["code"] == "invalid_credentials"
    assert resident.delete("/api/v1/sessions/current").status_code == 204
    assert problem(resident.get("/api/v1/me"), 401)["code"] == "not_signed_in"
    bearer = Client(stack.base_url)
    stale = bearer.get("/api/v1/me", headers={"Authorization": f"Bearer {resident.token}"})
    problem(stale, 401)


def test_not_signed_in_is_401_on_every_private_route(client):
    for method, path in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/me/links"),
        ("GET", "/api/v1/me/sessions"),
        ("GET", "/api/v1/me/payments"),
        ("GET", "/api/v1/accounts/28624/summary"),
        ("GET", "/api/v1/customers/12345/invoices"),
        ("DELETE", "/api/v1/sessions/current"),
    ]:
        assert client.request(method, path).status_code == 401, path


def test_sign_in_is_throttled_per_address_with_retry_after(client):
    limit = 30  # tests/stack.py THROTTLES["THROTTLE_SIGNIN"]
    for _ in range(limit):
        assert client.post("/api/v1/sessions", {}).status_code == 422
    response = client.post("/api/v1/sessions", {})
    body = problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert body["retry_after"] == int(response.headers["Retry-After"])
    fresh = Client(client.base_url)
    assert fresh.post("/api/v1/sessions", {}).status_code == 422


def test_registration_is_throttled_per_address(client):
    for _ in range(30):
        assert client.post("/api/v1/registrations", {}).status_code == 422
    problem(client.post("/api/v1/registrations", {}), 429)


def test_recovery_requests_answer_the_same_for_any_address(stack, make_resident, client):
    resident = make_resident()
    for path in (
        "/api/v1/password-resets",
        "/api/v1/user-id-reminders",
        "/api/v1/unlock-requests",
        "/api/v1/email-verifications/resend",
    ):
        known = client.post(path, {"email": resident.email})
        unknown = client.post(path, {"email": f"{unique()}@example.org"})
        assert known.status_code == unknown.status_code == 202, path
        assert known.json() == unknown.json()
    reminder = stack.wait_for_mail(resident.email, "user id")
    assert resident.user_id in reminder.get_body(("plain",)).get_content().lower()
    problem(client.post("/api/v1/password-resets", {"email": 42}), 422)


def test_password_reset_from_the_emailed_link(stack, make_resident):
    resident = make_resident()
    client = Client(stack.base_url)
    assert client.post("/api/v1/password-resets", {"email": resident.email}).status_code == 202
    text = stack.wait_for_mail(resident.email, "reset").get_body(("plain",)).get_content()
    link = next(w for w in text.split() if "reset-password?token=" in w)
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    bad = client.post("/api/v1/password-resets/confirm", {"token": "nope", "new_password": "x"})
    problem(bad, 422)
    new_password = "A brand new passphrase 7"
    done = client.post(
        "/api/v1/password-resets/confirm", {"token": token, "new_password": new_password}
    )
    assert done.status_code == 200, done.text
    # Every session ended: the old cookie no longer works (after the short session cache).
    assert (
        client.post(
            "/api/v1/sessions", {"login": resident.user_id, "password": new_password}
        ).status_code
        == 201
    )


def test_unlock_with_a_bad_token_is_422(client):
    problem(client.post("/api/v1/unlocks", {"token": "not-a-token"}), 422)


def test_change_password_and_email(stack, make_resident):
    resident = make_resident()
    wrong = resident.post(
        "/api/v1/me/password", {"current_password": "wrong one 1", "new_password": "x" * 20}
    )
    assert "current_password" in problem(wrong, 422)["errors"]
    changed = resident.post(
        "/api/v1/me/password",
        {"current_password": PASSWORD, "new_password": "Another good passphrase 3"},
    )
    assert changed.status_code == 200, changed.text
    new_email = f"{unique()}@example.org"
    response = resident.post(
        "/api/v1/me/email", {"password": "Another good passphrase 3", "new_email": new_email}
    )
    assert response.status_code == 202, response.text
    assert response.json()["pending_email"] == new_email
    assert verification_token(stack, new_email)


def test_sessions_are_listed_and_revoked(stack, make_resident):
    resident = make_resident()
    second = Client(stack.base_url)
    other = second.post("/api/v1/sessions", {"login": resident.user_id, "password": PASSWORD})
    assert other.status_code == 201
    sessions = resident.get("/api/v1/me/sessions").json()["sessions"]
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    missing = resident.delete("/api/v1/me/sessions/no-such-session")
    problem(missing, 404)
    other_id = next(s["session_id"] for s in sessions if not s["current"])
    assert resident.delete(f"/api/v1/me/sessions/{other_id}").status_code == 204
    assert second.get("/api/v1/me").status_code == 401
    assert len(resident.get("/api/v1/me/sessions").json()["sessions"]) == 1
    assert resident.delete("/api/v1/me/sessions").json()["revoked"] == 0


def test_external_sign_in_with_the_test_provider(stack, client):
    providers = client.get("/api/v1/external-providers").json()["providers"]
    assert [p["provider"] for p in providers] == ["mock"]
    unknown = client.post("/api/v1/external-sign-ins", {"provider": "nope"})
    assert unknown.status_code in (404, 422)
    start = client.post("/api/v1/external-sign-ins", {"provider": "mock"})
    assert start.status_code == 200, start.text
    url = start.json()["authorization_url"]
    assert url.startswith(stack.oidc_url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["redirect_uri"] == [f"{stack.base_url}/sign-in/external/mock"]
    subject = unique("sub")
    requests.put(
        f"{stack.oidc_url}/users/{subject}",
        json={"email": f"{subject}@example.org", "email_verified": True, "name": "Ext Resident"},
        timeout=10,
    ).raise_for_status()
    consent = requests.post(url, data={"sub": subject}, allow_redirects=False, timeout=10)
    assert consent.status_code in (302, 303), consent.text[:300]
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(consent.headers["Location"]).query)
    bad = client.post(
        "/api/v1/external-sign-ins/complete",
        {"provider": "mock", "code": back["code"][0], "state": "forged"},
    )
    assert bad.status_code in (401, 422)
    done = client.post(
        "/api/v1/external-sign-ins/complete",
        {"provider": "mock", "code": back["code"][0], "state": back["state"][0]},
    )
    assert done.status_code == 201, done.text
    assert done.json()["user"]["email"] == f"{subject}@example.org"
    assert client.get("/api/v1/me").status_code == 200


def test_registration_challenge_and_legacy_claims(stack, make_resident, client):
    challenge = client.get("/api/v1/registrations/challenge")
    assert challenge.status_code == 200
    assert {"challenge_id", "question"} <= set(challenge.json())
    resident = make_resident()
    assert resident.get("/api/v1/me/legacy-matches").json() == {"matches": []}
    claimed = resident.post("/api/v1/me/legacy-claims", {"legacy_ids": []})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["restored"] == []
    problem(resident.post("/api/v1/me/legacy-claims", {"legacy_ids": "all"}), 422)
