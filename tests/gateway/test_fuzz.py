"""Schemathesis over /api/v1/openapi.json: generated requests to every operation, no 5xx.

Bounded (MAX_EXAMPLES per operation) so the run takes a minute or two. Requests carry
a resident's bearer token, so the handlers behind authentication are fuzzed too.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 8
CASES = {"run": 0, "by_status": {}}


@pytest.fixture(scope="session")
def fuzz_counter(stack):
    """Counts the cases run; the total is printed (-s) and kept in the stack's directory."""
    yield CASES
    summary = f"schemathesis: {CASES['run']} cases, statuses {sorted(CASES['by_status'].items())}"
    print("\n" + summary)
    (stack.directory / "schemathesis.txt").write_text(summary + "\n")


@pytest.fixture(scope="session")
def fuzz_schema(stack):
    return schemathesis.openapi.from_url(f"{stack.base_url}/api/v1/openapi.json")


@pytest.fixture(scope="session")
def fuzz_token(stack):
    from tests.gateway.conftest import PASSWORD, Client, unique, verification_token

    client = Client(stack.base_url)
    user_id = unique("fuzz")
    email = f"{user_id}@example.org"
    body = {"user_id": user_id, "email": email, "password": PASSWORD}
    body.update(account_number="28624", customer_id="405583")
    assert client.post("/api/v1/registrations", body).status_code == 201
    client.post("/api/v1/email-verifications", {"token": verification_token(stack, email)})
    response = client.post("/api/v1/sessions", {"login": user_id, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return response.json()["token"]


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_5xx(case, fuzz_token, fuzz_counter):
    if case.path == "/api/v1/sessions/current" and case.method == "DELETE":
        return  # would end the fuzzing session itself; tested in test_identity_routes
    # An address per case: the per-address throttles would otherwise answer most cases.
    n = fuzz_counter["run"]
    address = f"10.250.{n // 256 % 256}.{n % 256}"
    headers = {"Authorization": f"Bearer {fuzz_token}", "X-Forwarded-For": address}
    response = case.call(headers=headers, timeout=30)
    fuzz_counter["run"] += 1
    statuses = fuzz_counter["by_status"]
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code != 500, response.text[:500]


def test_the_document_itself_is_valid_openapi(stack):
    doc = requests.get(f"{stack.base_url}/api/v1/openapi.json", timeout=10).json()
    loaded = schemathesis.openapi.from_dict(doc)
    assert len(list(loaded.get_all_operations())) >= 50
