"""The gateway: the JSON API under /api/v1, the web portal, and the processor's webhooks.

Two catch-all entrypoints hand every request to `app.Runtime.handle`, which routes
it through the API's own table (services/gateway/api/), so unknown routes and
methods get problem+json answers, not nameko's plain text. The event handlers
below only invalidate this replica's read caches: each replica gets its own copy
(broadcast, unreliable by design: a missed event ages out with the cache's TTL).
"""

from __future__ import annotations

from typing import Any

from nameko.containers import WorkerContext
from nameko.events import BROADCAST, event_handler
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler

from services.gateway.app import Runtime
from services.gateway.settings import Settings
from shared.rpc import ServiceDirectory, Services

METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"


class CatchAll(HttpRequestHandler):
    """nameko's http entrypoint, run in the server's own green thread.

    nameko would spawn a worker per request (a pool thread, dependency injection,
    lifecycle hooks, a signature check with `inspect`): measured, that was about a
    third of a cached read. The gateway's handlers need only the runtime and an RPC
    directory, which a WorkerContext of their own gives them (call IDs and context
    data travel as with a worker). The decorated methods document the routes.
    """

    def setup(self) -> None:
        super().setup()
        deps = self.container.dependencies
        self._services = next(d for d in deps if isinstance(d, Services))
        self._runtime = next(d for d in deps if isinstance(d, GatewayRuntime))

    def handle_request(self, request: Any) -> Any:
        request.shallow = False
        worker_ctx = WorkerContext(self.container, None, self)
        services = ServiceDirectory(
            worker_ctx, self._services.rpc_reply_listener, self._services.timeout
        )
        return self._runtime.runtime.handle(request, services)


http = CatchAll.decorator


class GatewayRuntime(DependencyProvider):
    """Settings, caches, throttles and routes: one per process, built at start."""

    def setup(self) -> None:
        self.runtime = Runtime(Settings.from_config(self.container.config))

    def get_dependency(self, worker_ctx: Any) -> Runtime:
        return self.runtime


def on_event(source: str, event_type: str) -> Any:
    return event_handler(source, event_type, handler_type=BROADCAST, reliable_delivery=False)


def _data(payload: Any) -> dict[str, Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    return data if isinstance(data, dict) else {}


class GatewayService:
    name = "gateway"
    services = Services()
    runtime = GatewayRuntime()

    @http(METHODS, "/")
    def root(self, request):
        """The web portal's home page."""
        return self.runtime.handle(request, self.services)

    @http(METHODS, "/<path:path>")
    def anything(self, request, path):
        """Every other path: the API, /dev/mail, or the web portal."""
        return self.runtime.handle(request, self.services)

    # -- cache invalidation ---------------------------------------------------------------

    def _bills_changed(self, payload: Any) -> None:
        data = _data(payload)
        self.runtime.cache.invalidate(
            f"a:{data['account_number']}" if data.get("account_number") else None,
            f"c:{data['customer_id']}" if data.get("customer_id") else None,
        )

    def _payment_moved(self, payload: Any) -> None:
        data = _data(payload)
        items = list(data.get("bills") or []) + list(data.get("allocations") or [])
        scopes = {f"a:{i['account_number']}" for i in items if i.get("account_number")}
        scopes |= {f"c:{i['customer_id']}" for i in items if i.get("customer_id")}
        scopes |= self.runtime.cache.scopes_of_bills(i.get("bill_number") for i in items)
        self.runtime.cache.mark_dirty(*scopes)

    @on_event("billing", "BillIssued")
    def on_bill_issued(self, payload):
        """A new bill: the account's lists change."""
        self._bills_changed(payload)

    @on_event("billing", "BillBalanceChanged")
    def on_bill_balance_changed(self, payload):
        """A payment, penalty or reversal moved a balance."""
        self._bills_changed(payload)

    @on_event("payments", "CheckoutOpened")
    def on_checkout_opened(self, payload):
        """Billing is about to flag the bills as pending a web payment."""
        self._payment_moved(payload)

    @on_event("payments", "CheckoutClosed")
    def on_checkout_closed(self, payload):
        """Billing is about to clear the pending flag."""
        self._payment_moved(payload)

    @on_event("payments", "PaymentSucceeded")
    def on_payment_succeeded(self, payload):
        """Billing is about to post the payment."""
        self._payment_moved(payload)

    @on_event("accounts", "LinkCreated")
    def on_link_created(self, payload):
        """The user may reach one more account."""
        self.runtime.users.invalidate(f"u:{_data(payload).get('user_id')}")

    @on_event("accounts", "LinkRemoved")
    def on_link_removed(self, payload):
        """The user may reach one account fewer."""
        self.runtime.users.invalidate(f"u:{_data(payload).get('user_id')}")

    @on_event("identity", "SessionEnded")
    def on_session_ended(self, payload):
        """A session ended elsewhere (sign-out, revoke, password change)."""
        session_id = _data(payload).get("session_id")
        if session_id:
            self.runtime.sessions.drop_session(str(session_id))
