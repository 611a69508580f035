"""A service down: its pages say so by name (503); every other page keeps working."""

from __future__ import annotations

from tests.gateway.conftest import problem


def test_billing_down_gives_503_naming_it_while_the_rest_works(stack, make_resident):
    resident = make_resident(link=("28624", "405583"))
    stack.stop_service("billing")
    try:
        down = resident.get("/api/v1/bills/98465")
        body = problem(down, 503)
        assert body["service"] == "billing"
        assert "billing" in body["detail"]
        assert resident.get("/api/v1/me").status_code == 200
        assert resident.get("/api/v1/me/links").status_code == 200
        assert resident.get("/api/v1/cart").status_code == 200
        health = resident.get("/api/v1/health")
        assert health.status_code == 503
        services = health.json()["services"]
        assert services["billing"]["status"] != "ok"
        assert services["identity"]["status"] == "ok"
    finally:
        stack.start_service("billing")
        stack.wait_healthy(timeout=60)
    assert resident.get("/api/v1/bills/98465").status_code == 200


def test_identity_down_keeps_public_pages_and_says_so_at_sign_in(stack, make_resident):
    resident = make_resident()
    stack.stop_service("identity")
    try:
        announcements = resident.get("/api/v1/announcements")
        assert announcements.status_code == 200
        from tests.gateway.conftest import Client

        body = problem(
            Client(stack.base_url).post("/api/v1/sessions", {"login": "x", "password": "y"}),
            503,
        )
        assert body["service"] == "identity"
    finally:
        stack.start_service("identity")
        stack.wait_healthy(timeout=60)
