"""What every answer of the gateway has in common: headers, problems, limits, the web shell."""

from __future__ import annotations

import requests

from shared.ops.registry import open_store
from tests.gateway.conftest import Client, problem


def test_health_names_every_service(stack):
    response = requests.get(stack.base_url + "/api/v1/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == {"identity", "accounts", "billing", "payments", "notifications"}


def test_security_headers_on_api_pages_and_errors(stack):
    for path in ("/api/v1/health", "/api/v1/no-such-route", "/", "/bills/98465"):
        headers = requests.get(stack.base_url + path, timeout=10).headers
        csp = headers["Content-Security-Policy"]
        script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        style_src = next(p for p in csp.split(";") if p.strip().startswith("style-src"))
        assert "'unsafe-inline'" not in style_src  # the portal has no inline style either
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # ENV=development
        assert headers["X-Request-ID"]


def test_unknown_route_is_a_404_problem(client):
    body = problem(client.get("/api/v1/nothing-here"), 404)
    assert body["code"] == "route_not_found"
    assert body["type"].startswith("https://")
    assert body["request_id"]


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.request("PATCH", "/api/v1/health")
    problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_body_over_the_limit_is_413(client):
    response = client.post(
        "/api/v1/sessions", data="x" * 70_000, headers={"Content-Type": "application/json"}
    )
    body = problem(response, 413)
    assert "65536" in body["detail"]


def test_malformed_json_and_unknown_fields_are_422_naming_the_field(client):
    response = client.post(
        "/api/v1/sessions", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert problem(response, 422)["errors"] == {"body": "must be JSON"}
    body = problem(
        client.post("/api/v1/sessions", {"login": "x", "password": "y", "admin": True}), 422
    )
    assert set(body["errors"]) == {"admin"}
    body = problem(client.post("/api/v1/sessions", {"password": 5}), 422)
    assert {"login", "password"} <= set(body["errors"])


def test_form_bodies_are_refused_with_415(client):
    response = client.post("/api/v1/sessions", data={"login": "x"})
    problem(response, 415)


def test_cross_site_unsafe_request_is_403(client):
    response = client.post(
        "/api/v1/sessions",
        {"login": "x", "password": "y"},
        headers={"Origin": "https://evil.example"},
    )
    assert problem(response, 403)["code"] == "cross_origin"


def test_request_id_becomes_the_correlation_id_of_events(stack, resident):
    request_id = "test-correlation-" + resident.user_id
    response = resident.post(
        "/api/v1/me/links",
        {"type": "customer", "customer_id": "12345", "name": "EXAMPLE CUSTOMER"},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == request_id
    store = open_store("accounts", stack.store_url("accounts"))
    try:
        events = [
            e
            for e in store.events.read_all(0, 100_000, types=["LinkCreated"])
            if e.type == "LinkCreated" and e.data.get("user_id") == resident.user_id
        ]
    finally:
        store.dispose()
    created = [e for e in events if e.data["type"] == "customer"]
    assert created and created[0].correlation_id == request_id
    assert created[0].actor == f"user:{resident.user_id}"


def test_openapi_document_lists_the_pinned_routes(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/health", "get"),
        ("/api/v1/registrations", "post"),
        ("/api/v1/email-verifications", "post"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/sessions/current", "delete"),
        ("/api/v1/me", "get"),
        ("/api/v1/password-resets", "post"),
        ("/api/v1/me/links", "get"),
        ("/api/v1/me/links", "post"),
        ("/api/v1/me/links/{link_id}", "delete"),
        ("/api/v1/accounts/{account_number}/bills", "get"),
        ("/api/v1/accounts/{account_number}/summary", "get"),
        ("/api/v1/accounts/{account_number}/consumption", "get"),
        ("/api/v1/bills/{bill_number}", "get"),
        ("/api/v1/bills/{bill_number}/pdf", "get"),
        ("/api/v1/customers/{customer_id}/invoices", "get"),
        ("/api/v1/cart", "get"),
        ("/api/v1/cart/items", "post"),
        ("/api/v1/cart/items/{bill_number}", "delete"),
        ("/api/v1/checkouts", "post"),
        ("/api/v1/checkouts/{checkout_id}", "get"),
        ("/api/v1/quick-pay/lookups", "post"),
        ("/api/v1/me/payments", "get"),
        ("/api/v1/webhooks/processor", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing"
    bills = paths["/api/v1/accounts/{account_number}/bills"]["get"]
    schema_ref = bills["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/Bills")
    assert "Problem" in doc["components"]["schemas"]


def test_page_paths_answer_the_app_shell_and_files_their_type(stack):
    for path in ("/", "/sign-in", "/verify-email?token=abc", "/bills/98465", "/accounts/28624"):
        response = requests.get(stack.base_url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Cache-Control"] == "no-cache"
    missing = requests.get(stack.base_url + "/static/no-such-file.js", timeout=10)
    problem(missing, 404)
    traversal = requests.get(stack.base_url + "/static/../../pyproject.toml", timeout=10)
    assert traversal.status_code == 404 or "muniportal" not in traversal.text


def test_dev_mail_shows_the_local_mailbox(stack):
    import smtplib
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "city@example.org"
    message["To"] = "devmail-reader@example.org"
    message["Subject"] = "Verify <your> email"
    message.set_content("Open http://localhost:8000/verify-email?token=abc123 to verify.")
    with smtplib.SMTP("127.0.0.1", stack.mailbox_smtp_port, timeout=10) as smtp:
        smtp.send_message(message)
    page = requests.get(stack.base_url + "/dev/mail", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    # Emails are styled inline, so only this page allows inline style; never script.
    csp = page.headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in csp and "script-src 'none'" in csp
    assert "Verify &lt;your&gt; email" in page.text  # escaped, never raw HTML
    assert "<a href='http://localhost:8000/verify-email?token=abc123'>" in page.text
    problem(requests.get(stack.base_url + "/dev/other", timeout=10), 404)


def test_bearer_clients_need_no_csrf_but_cookie_clients_do(stack, resident):
    body = {"type": "customer", "customer_id": "12345", "name": "EXAMPLE CUSTOMER"}
    cookie_only = Client(stack.base_url)
    cookie_only.http.cookies.update(resident.http.cookies)
    assert problem(cookie_only.post("/api/v1/me/links", body), 403)["code"] == "csrf_failed"
    wrong = cookie_only.post("/api/v1/me/links", body, headers={"X-CSRF-Token": "forged"})
    problem(wrong, 403)
    bearer = Client(stack.base_url)
    response = bearer.post(
        "/api/v1/me/links", body, headers={"Authorization": f"Bearer {resident.token}"}
    )
    assert response.status_code == 201, response.text
    assert resident.get("/api/v1/me").json()["csrf_token"] == resident.csrf


def test_a_stale_session_cookie_is_cleared_with_its_401(client):
    client.http.cookies.set("mp_session", "no-such-session-token")
    response = client.get("/api/v1/me")
    problem(response, 401)
    assert "mp_session=;" in response.headers["Set-Cookie"]
    assert "Max-Age=0" in response.headers["Set-Cookie"]


def test_an_opaque_origin_is_cross_site(client):
    response = client.post(
        "/api/v1/sessions", {"login": "x", "password": "y"}, headers={"Origin": "null"}
    )
    assert problem(response, 403)["code"] == "cross_origin"
