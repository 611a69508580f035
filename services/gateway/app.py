"""The dispatcher: every HTTP request passes here, from routing to problem+json.

Order for an API request: request ID, route match (404/405), origin check on unsafe
methods (403), throttle (429), body size (413), JSON body and query (422), session
or guest credentials (401) and their CSRF token (403), the handler, then the security
headers on whatever answer comes out. A bug becomes a 500 problem with the request
ID and no details; the traceback goes to the log only.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from marshmallow import ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from services.gateway import problems, security, static
from services.gateway.cache import ReadCache, SessionCache
from services.gateway.context import Ctx
from services.gateway.problems import Problem
from services.gateway.routing import ROUTES, UNSAFE, Route, url_map
from services.gateway.settings import Settings
from services.gateway.throttle import Throttle, Throttled
from shared.errors import MuniportalError
from shared.events import flatten_messages

log = logging.getLogger(__name__)


class Runtime:
    """What lives as long as the gateway process: settings, caches, throttles, routes."""

    def __init__(self, settings: Settings) -> None:
        from services.gateway import api  # noqa: F401 - registers the routes

        self.settings = settings
        self.cache = ReadCache(settings.cache_seconds, settings.dirty_seconds)
        self.users = ReadCache(settings.cache_seconds * 2, settings.dirty_seconds)
        self.sessions = SessionCache(settings.session_cache_seconds)
        self.throttle = Throttle(settings.throttles)
        self.routes: list[Route] = list(ROUTES)
        self.map = url_map(self.routes)
        self._security_headers = list(security.security_headers(settings.production).items())
        self._openapi: str | None = None
        # Schemas are stateless once built; building one per request was a tenth of a read.
        self._schemas: dict[type, Any] = {}
        self._matches: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._queries: dict[tuple[type, bytes], Any] = {}

    def openapi(self) -> str:
        if self._openapi is None:
            from services.gateway.openapi import build_spec

            self._openapi = json.dumps(build_spec(self.routes, self.settings.public_url))
        return self._openapi

    # -- the request --------------------------------------------------------------------

    def handle(self, request: Request, services: Any) -> Response:
        rid = security.request_id(request.environ.get("HTTP_X_REQUEST_ID"))
        services.set_context(correlation_id=rid)
        path = request.path
        try:
            if path == "/api" or path.startswith("/api/"):
                response = self._api(request, services, rid)
            elif path == "/dev" or path.startswith("/dev/"):
                from services.gateway import devmail

                response = devmail.serve(request, self.settings)
            else:
                response = static.serve(request, self.settings)
        except Problem as problem:
            response = problems.response(problem, rid)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, path, rid)
            response = problems.response(Problem(500, "An internal error occurred."), rid)
        # werkzeug's `in` on headers raises (and builds) an exception per miss: list once.
        present = {name.lower() for name, _ in response.headers}
        for name, value in self._security_headers:
            if name.lower() not in present:
                response.headers.add(name, value)
        response.headers[security.REQUEST_ID_HEADER] = rid
        return response

    def _match(self, request: Request) -> tuple[str, dict[str, Any]]:
        # Routing is a pure function of method and path; hot reads repeat both.
        key = (request.method, request.path)
        hit = self._matches.get(key)
        if hit is None:
            hit = self.map.bind_to_environ(request.environ).match()
            if len(self._matches) >= 4096:
                self._matches.clear()
            self._matches[key] = hit
        return hit[0], dict(hit[1])

    def _api(self, request: Request, services: Any, rid: str) -> Response:
        try:
            endpoint, args = self._match(request)
        except NotFound:
            raise Problem(
                404, f"There is no API route {request.path}.", code="route_not_found"
            ) from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise Problem(
                405,
                f"{request.method} is not allowed here (allowed: {allowed}).",
                headers={"Allow": allowed},
            ) from None
        route = self.routes[int(endpoint)]
        ctx = Ctx(self, request, services, rid)
        try:
            result = self._run(route, ctx, args)
            response = result if isinstance(result, Response) else self._json(route, result)
        except MuniportalError as exc:
            response = problems.response(self._problem(exc, ctx), rid)
        except Problem as problem:
            response = problems.response(problem, rid)
        # Set even on errors: a stale session cookie is cleared with its 401.
        if not any(name.lower() == "cache-control" for name, _ in response.headers):
            response.headers.add("Cache-Control", "no-store")
        for cookie in ctx.cookies:
            response.set_cookie(**cookie)
        return response

    def _problem(self, exc: MuniportalError, ctx: Ctx) -> Problem:
        if exc.kind == "unauthorized" and ctx.session_from_cookie:
            ctx.clear_session_cookies()
        return problems.from_error(exc)

    def _run(self, route: Route, ctx: Ctx, args: dict[str, Any]) -> Any:
        request = ctx.request
        if request.method in UNSAFE:
            self._check_origin(request)
        if route.throttle:
            try:
                self.throttle.hit(route.throttle, ctx.client_ip)
            except Throttled as exc:
                raise Problem(
                    429,
                    f"Too many attempts from your address. Try again in {exc.retry_after} s.",
                    code="throttled",
                    headers={"Retry-After": str(exc.retry_after)},
                    extra={"retry_after": exc.retry_after},
                ) from None
        ctx.body = self._body(route, request)
        ctx.query = self._query(route, request)
        ctx.authorize(route)
        result = route.handler(ctx, **args)
        return result

    def _check_origin(self, request: Request) -> None:
        origin = request.environ.get("HTTP_ORIGIN")
        if not origin:
            return  # not a browser, or a same-origin request of an older one
        allowed = {self._origin(self.settings.public_url), self._origin(request.host_url)}
        if self._origin(origin) not in allowed:
            raise Problem(403, "Cross-site requests are not allowed.", code="cross_origin")

    @staticmethod
    def _origin(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    def _body(self, route: Route, request: Request) -> Any:
        if route.body is None and not route.raw_body and not request.content_length:
            return None  # nothing expected, nothing sent: no stream to read
        limit = self.settings.max_webhook_bytes if route.raw_body else self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(limit)
        request.max_content_length = limit
        try:
            raw = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise _too_large(limit) from None
        if len(raw) > limit:
            raise _too_large(limit)
        if route.raw_body:
            return raw.decode("utf-8", errors="replace")
        if route.body is None:
            return None
        if not raw.strip():
            data: Any = {}
        else:
            mimetype = request.mimetype or ""
            if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
                raise Problem(
                    415, "Send the body as application/json.", code="unsupported_media_type"
                )
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise Problem(
                    422,
                    "The body is not valid JSON.",
                    code="malformed_json",
                    errors={"body": "must be JSON"},
                ) from None
        if not isinstance(data, dict):
            raise Problem(
                422,
                "The body must be a JSON object.",
                code="invalid",
                errors={"body": "must be a JSON object"},
            )
        return _load(self._schema(route.body), data)

    def _query(self, route: Route, request: Request) -> dict[str, Any]:
        if route.query is None:
            return {}
        # Loading is a pure function of the query string: keep the answers of the hot ones.
        key = (route.query, request.query_string)
        hit = self._queries.get(key)
        if hit is None:
            try:
                hit = _load(self._schema(route.query), request.args.to_dict())
            except Problem as problem:
                hit = problem
            if len(self._queries) >= 4096:
                self._queries.clear()
            self._queries[key] = hit
        if isinstance(hit, Problem):
            raise hit
        return dict(hit)

    def _schema(self, cls: type) -> Any:
        schema = self._schemas.get(cls)
        if schema is None:
            schema = self._schemas[cls] = cls()
        return schema

    @staticmethod
    def _json(route: Route, result: Any) -> Response:
        status = route.status
        if isinstance(result, tuple):
            status, result = result
        if status == 204 or result is None:
            return Response(status=204)
        return Response(
            json.dumps(result, default=str), status=status, content_type="application/json"
        )


def _too_large(limit: int) -> Problem:
    return Problem(413, f"The request body is larger than {limit} bytes.", code="body_too_large")


def _load(schema: Any, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = flatten_messages(exc.messages)
        fields = ", ".join(sorted(errors))
        raise Problem(
            422, f"Some fields are not valid: {fields}.", code="invalid", errors=errors
        ) from None
