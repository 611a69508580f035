"""The test stack itself: everything starts, and health says so."""

import requests


def test_every_service_answers_health(stack):
    response = requests.get(stack.base_url + "/api/v1/health", timeout=10)
    assert response.status_code == 200
    assert set(response.json()["services"]) == {
        "identity",
        "accounts",
        "billing",
        "payments",
        "notifications",
    }
    assert requests.get(stack.sandbox_url + "/health", timeout=5).ok
