"""The sandbox processor's HTTP interface: its API, its hosted pages and its test controls."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jinja2
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from services.payments.sandbox.bank import Bank, BankError
from services.payments.sandbox.cards import TEST_CARDS, read_card_form
from services.payments.sandbox.webhooks import MODES, Dispatcher

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
)

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

URLS = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/v1/checkout/sessions", endpoint="create_session", methods=["POST"]),
        Rule("/v1/checkout/sessions/<sid>", endpoint="get_session", methods=["GET"]),
        Rule("/v1/checkout/sessions/<sid>/cancel", endpoint="cancel_session", methods=["POST"]),
        Rule("/v1/setup/sessions", endpoint="create_setup", methods=["POST"]),
        Rule("/v1/setup/sessions/<sid>", endpoint="get_session", methods=["GET"]),
        Rule("/v1/payments/<pid>", endpoint="get_payment", methods=["GET"]),
        Rule("/v1/payments/<pid>/refunds", endpoint="refund", methods=["POST"]),
        Rule("/v1/payments/<pid>/void", endpoint="void", methods=["POST"]),
        Rule("/v1/charges", endpoint="charge", methods=["POST"]),
        Rule("/v1/cards/<token>", endpoint="get_card", methods=["GET"]),
        Rule("/v1/transactions", endpoint="transactions", methods=["GET"]),
        Rule("/pay/<sid>", endpoint="pay_page", methods=["GET", "POST"]),
        Rule("/setup/<sid>", endpoint="setup_page", methods=["GET", "POST"]),
        Rule("/sandbox/settings", endpoint="settings", methods=["GET", "POST"]),
        Rule("/sandbox/webhooks", endpoint="deliveries", methods=["GET"]),
        Rule("/sandbox/payments/<pid>/return", endpoint="simulate_return", methods=["POST"]),
        Rule(
            "/sandbox/payments/<pid>/chargeback", endpoint="simulate_chargeback", methods=["POST"]
        ),
        Rule("/sandbox/payments/<pid>/settle", endpoint="settle", methods=["POST"]),
    ]
)


def json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def time_left(expires_at: float) -> str:
    seconds = max(0, int(expires_at - time.time()))
    minutes, seconds = divmod(seconds, 60)
    m_unit = "minute" if minutes == 1 else "minutes"
    s_unit = "second" if seconds == 1 else "seconds"
    return f"{minutes} {m_unit}, and {seconds} {s_unit}"


class SandboxApp:
    def __init__(self, bank: Bank, dispatcher: Dispatcher, api_key: str, merchant: str) -> None:
        self.bank = bank
        self.dispatcher = dispatcher
        self.api_key = api_key
        self.merchant = merchant

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except BankError as exc:
            response = json_response(
                exc.status, {"error": {"code": exc.code, "message": exc.message}}
            )
        except HTTPException as exc:
            response = json_response(
                exc.code or 500, {"error": {"code": "http", "message": exc.description}}
            )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = URLS.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        if endpoint.startswith(
            (
                "create_",
                "get_",
                "cancel_",
                "refund",
                "void",
                "charge",
                "transactions",
                "settings",
                "deliveries",
                "simulate_",
                "settle",
            )
        ):
            self.authenticate(request)
        return getattr(self, f"on_{endpoint}")(request, **args)

    def authenticate(self, request: Request) -> None:
        supplied = request.headers.get("Authorization", "")
        expected = f"Bearer {self.api_key}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise BankError(
                401, "unauthorized", "a valid API key is required (Authorization: Bearer ...)"
            )

    def body(self, request: Request) -> dict[str, Any]:
        raw = request.get_data(cache=True, parse_form_data=False)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise BankError(400, "invalid_json", "the body must be JSON") from None
        if not isinstance(data, dict):
            raise BankError(400, "invalid_json", "the body must be a JSON object")
        return data

    def render(
        self, template: str, status: int = 200, redirects_to: str | None = None, **context: Any
    ) -> Response:
        html = TEMPLATES.get_template(template).render(
            merchant=self.merchant, cards=TEST_CARDS, **context
        )
        headers = dict(PAGE_HEADERS)
        if redirects_to:
            # The form's answer is a 303 to the merchant's return URL, and browsers apply
            # form-action to that redirect too: allow the return URL's origin.
            parts = urllib.parse.urlsplit(redirects_to)
            headers["Content-Security-Policy"] += f" {parts.scheme}://{parts.netloc}"
        return Response(html, status=status, mimetype="text/html", headers=headers)

    # -- pages --------------------------------------------------------------------------

    def on_index(self, request: Request) -> Response:
        return self.render(
            "message.html",
            title="Sandbox card processor",
            message="This stands in for a card processor in development and tests.",
            show_cards=True,
        )

    def on_health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", **self.dispatcher.settings()})

    def on_pay_page(self, request: Request, sid: str) -> Response:
        return self._hosted(request, sid, setup=False)

    def on_setup_page(self, request: Request, sid: str) -> Response:
        return self._hosted(request, sid, setup=True)

    def _hosted(self, request: Request, sid: str, *, setup: bool) -> Response:
        try:
            row = self.bank.session_row(sid)
        except BankError:
            raise NotFound() from None
        if (row["kind"] == "setup") != setup:
            raise NotFound()
        session = dict(row)
        cancel_url = with_query(row["return_url"], session_id=sid, status="canceled")
        if row["status"] in ("expired", "canceled"):
            return self.render(
                "message.html",
                status=410,
                title="This payment session has ended",
                message=(
                    "The time to pay has run out or the payment was canceled. Nothing was "
                    "charged. Return to start again."
                    if row["status"] == "expired"
                    else "This payment was canceled. Nothing was charged."
                ),
                link=cancel_url,
            )
        if row["status"] != "open":
            # Submitted already (double click, back button): show where it stands.
            return Response(
                status=303,
                headers={
                    "Location": with_query(row["return_url"], session_id=sid, status=row["status"])
                },
            )
        action = f"/{'setup' if setup else 'pay'}/{sid}"
        context = {
            "session": session,
            "setup": setup,
            "action": action,
            "cancel_url": cancel_url,
            "time_left": time_left(row["expires_at"]),
            "form": {},
            "errors": {},
        }
        if request.method == "GET":
            return self.render("pay.html", redirects_to=row["return_url"], **context)
        form = {k: request.form.get(k, "") for k in ("name", "card_number", "expiry", "cvc")}
        entry, errors = read_card_form(form, dt.datetime.now(dt.UTC).date())
        if entry is None:
            return self.render(
                "pay.html",
                status=400,
                redirects_to=row["return_url"],
                **{**context, "form": form, "errors": errors},
            )
        result = self.bank.complete_setup(sid, entry) if setup else self.bank.pay(sid, entry)
        params = {"session_id": sid, "status": result["status"]}
        if setup and result.get("card_token"):
            params["card_token"] = result["card_token"]
        return Response(status=303, headers={"Location": with_query(row["return_url"], **params)})

    # -- API ----------------------------------------------------------------------------

    def _idempotent(self, request: Request, scope: str, action: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        code, body = self.bank.idempotent(scope, key, action)
        return json_response(code, body)

    def on_create_session(self, request: Request) -> Response:
        data = self.body(request)
        return self._idempotent(
            request, "session", lambda: self.bank.create_session("payment", data)
        )

    def on_create_setup(self, request: Request) -> Response:
        data = self.body(request)
        return self._idempotent(request, "setup", lambda: self.bank.create_session("setup", data))

    def on_get_session(self, request: Request, sid: str) -> Response:
        return json_response(200, self.bank.get_session(sid))

    def on_cancel_session(self, request: Request, sid: str) -> Response:
        code, body = self.bank.cancel_session(sid)
        return json_response(code, body)

    def on_get_payment(self, request: Request, pid: str) -> Response:
        return json_response(200, self.bank.get_payment(pid))

    def on_refund(self, request: Request, pid: str) -> Response:
        data = self.body(request)
        return self._idempotent(request, f"refund:{pid}", lambda: self.bank.refund(pid, data))

    def on_void(self, request: Request, pid: str) -> Response:
        data = self.body(request)
        return self._idempotent(request, f"void:{pid}", lambda: self.bank.void(pid, data))

    def on_charge(self, request: Request) -> Response:
        data = self.body(request)
        return self._idempotent(request, "charge", lambda: self.bank.charge(data))

    def on_get_card(self, request: Request, token: str) -> Response:
        return json_response(200, self.bank.get_card(token))

    def on_transactions(self, request: Request) -> Response:
        try:
            day = dt.date.fromisoformat(request.args.get("date", ""))
        except ValueError:
            raise BankError(400, "invalid_date", "date must be YYYY-MM-DD") from None
        return json_response(
            200, {"date": day.isoformat(), "transactions": self.bank.transactions(day)}
        )

    # -- sandbox controls ---------------------------------------------------------------

    def on_settings(self, request: Request) -> Response:
        if request.method == "POST":
            data = self.body(request)
            if "webhook_mode" in data:
                if data["webhook_mode"] not in MODES:
                    raise BankError(
                        400, "invalid_mode", f"webhook_mode must be one of {', '.join(MODES)}"
                    )
                self.dispatcher.mode = data["webhook_mode"]
            if "webhook_url" in data:
                self.dispatcher.url = str(data["webhook_url"])
            if "delay_seconds" in data:
                self.bank.delay_seconds = float(data["delay_seconds"])
            if "retry_base" in data:
                self.dispatcher.retry_base = float(data["retry_base"])
            if "webhook_secrets" in data:
                self.dispatcher.secrets = [str(s) for s in data["webhook_secrets"]]
        return json_response(200, self.dispatcher.settings())

    def on_deliveries(self, request: Request) -> Response:
        limit = int(request.args.get("limit", 500))
        found = self.dispatcher.deliveries(limit, request.args.get("payment_id"))
        return json_response(200, {"deliveries": found})

    def on_simulate_return(self, request: Request, pid: str) -> Response:
        return json_response(200, self.bank.simulate(pid, "return", self.body(request)))

    def on_simulate_chargeback(self, request: Request, pid: str) -> Response:
        return json_response(200, self.bank.simulate(pid, "chargeback", self.body(request)))

    def on_settle(self, request: Request, pid: str) -> Response:
        return json_response(200, self.bank.settle(pid))
