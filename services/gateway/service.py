"""The gateway: the JSON API under /api/v1 and the web portal."""

import json

from nameko.web.handlers import http

from shared.ops.registry import STORED_SERVICES
from shared.rpc import Services

HEALTH_TIMEOUT = 2.0


class GatewayService:
    name = "gateway"
    services = Services()
    metrics = __import__("shared.metrics", fromlist=["Metrics"]).Metrics()  # health, /metrics

    @http("GET", "/api/v1/health")
    def health(self, request):
        """200 when every service answers a ping within 2 s; otherwise 503, per service."""
        statuses = self.services.ping_all(list(STORED_SERVICES), HEALTH_TIMEOUT)
        healthy = all(s["status"] == "ok" for s in statuses.values())
        body = {"status": "ok" if healthy else "degraded", "services": statuses}
        return (
            200 if healthy else 503,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
            json.dumps(body),
        )
