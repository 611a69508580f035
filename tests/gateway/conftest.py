"""Gateway API test rig: one whole portal stack (tests/stack.py) for the session.

Provides ``stack`` (every service, the gateway, the processor sandbox, a test SMTP
server: all real processes), ``Client`` (HTTP against the gateway, as a browser
with cookies + CSRF or as an API client with a bearer token), and ``resident``: a
registered, verified, signed-in user of their own, optionally linked to accounts.
Each client comes from an address of its own (X-Forwarded-For, which the stack
trusts), so the per-address throttles of one test never touch another. Nothing is
faked.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
import requests

from tests.stack import stack_fixture

stack = stack_fixture(scope="session")
PASSWORD = "Correct horse battery 9"
_addresses = itertools.count(1)


def new_address() -> str:
    n = next(_addresses)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


class Client:
    """The gateway over HTTP: a requests session from an address of its own."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address or new_address()
        self.csrf: str | None = None

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        headers = dict(kw.pop("headers", {}) or {})
        if self.csrf and method in ("POST", "PUT", "PATCH", "DELETE"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.http.request(method, self.base_url + path, headers=headers, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json=None, **kw) -> requests.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json=None, **kw) -> requests.Response:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)


class Resident:
    def __init__(self, client: Client, user_id: str, email: str, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.email = email
        self.token = token

    def __getattr__(self, name):
        return getattr(self.client, name)


def unique(prefix: str = "res") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def verification_token(stack, email: str) -> str:
    message = stack.wait_for_mail(email, "verify")
    text = message.get_body(("plain",)).get_content()
    return re.search(r"token=([A-Za-z0-9_\-.~%]+)", text).group(1)


def problem(response: requests.Response, status: int) -> dict:
    """The problem+json body of a response that must have this status."""
    assert response.status_code == status, response.text[:800]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == status
    return body


@pytest.fixture
def client(stack) -> Client:
    return Client(stack.base_url)


@pytest.fixture
def make_resident(stack):
    """make_resident(link=("28624", "405583")) -> a signed-in Resident with a cookie session."""

    def make(link: tuple[str, str] | None = None, remember_me: bool = False) -> Resident:
        client = Client(stack.base_url)
        user_id = unique()
        email = f"{user_id}@example.org"
        body = {"user_id": user_id, "email": email, "password": PASSWORD}
        if link:
            body.update(account_number=link[0], customer_id=link[1])
        response = client.post("/api/v1/registrations", body)
        assert response.status_code == 201, response.text
        token = verification_token(stack, email)
        response = client.post("/api/v1/email-verifications", {"token": token})
        assert response.status_code == 200, response.text
        response = client.post(
            "/api/v1/sessions", {"login": user_id, "password": PASSWORD, "remember_me": remember_me}
        )
        assert response.status_code == 201, response.text
        client.csrf = response.json()["csrf_token"]
        return Resident(client, user_id.lower(), email, response.json()["token"])

    return make


@pytest.fixture
def resident(make_resident) -> Resident:
    """A signed-in resident linked to the demo account 28624 (customer 405583)."""
    return make_resident(link=("28624", "405583"))
