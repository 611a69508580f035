"""Health, the OpenAPI document and the home page's announcements."""

from __future__ import annotations

from werkzeug.wrappers import Response

from services.gateway.routing import route
from shared.ops.registry import STORED_SERVICES

HEALTH_TIMEOUT = 2.0


@route("GET", "/api/v1/health", auth="none", tag="meta", errors=(503,))
def health(ctx):
    """200 when every service answers a ping within 2 s; otherwise 503, per service."""
    statuses = ctx.services.ping_all(list(STORED_SERVICES), HEALTH_TIMEOUT)
    healthy = all(s["status"] == "ok" for s in statuses.values())
    body = {"status": "ok" if healthy else "degraded", "services": statuses}
    return (200 if healthy else 503), body


@route("GET", "/api/v1/openapi.json", auth="none", tag="meta")
def openapi(ctx):
    """This API's OpenAPI 3 document."""
    return Response(
        ctx.runtime.openapi(),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@route("GET", "/api/v1/announcements", auth="optional", tag="home", errors=(503,))
def announcements(ctx):
    """The announcements the home page shows today (guests see the public ones)."""
    items = ctx.services.notifications.active_announcements(ctx.auth is not None)
    return {"announcements": items}
