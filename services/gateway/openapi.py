"""The OpenAPI 3 document, built from the route table and the same marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from services.gateway import schemas as s
from services.gateway.problems import TITLES
from services.gateway.routing import UNSAFE, Route


def build_spec(routes: list[Route], public_url: str) -> dict[str, Any]:
    spec = APISpec(
        title="muniportal API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "The resident portal's JSON API. Errors are application/problem+json. "
                "Sign in with POST /api/v1/sessions; send the session cookie with "
                "X-CSRF-Token on unsafe methods, or Authorization: Bearer <token>."
            )
        },
        servers=[{"url": public_url}],
    )
    spec.components.schema("Problem", schema=s.ProblemSchema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "cookie", {"type": "apiKey", "in": "cookie", "name": "mp_session"}
    )
    by_path: dict[str, dict[str, Any]] = {}
    for route in routes:
        by_path.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "tags": [route.tag],
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in route.path_params
        ],
    }
    if route.query is not None:
        op["parameters"].append({"in": "query", "schema": route.query})
    for name, required, description in route.headers:
        op["parameters"].append(
            {
                "in": "header",
                "name": name,
                "required": required,
                "description": description,
                "schema": {"type": "string"},
            }
        )
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    elif route.raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    if route.auth in ("user",):
        op["security"] = [{"bearer": []}, {"cookie": []}]
    elif route.auth in ("optional", "cart"):
        op["security"] = [{}, {"bearer": []}, {"cookie": []}]
    content_type = route.content_type
    if route.status == 204:
        ok: dict[str, Any] = {"description": "Done"}
    elif route.response is not None:
        ok = {"description": "OK", "content": {content_type: {"schema": route.response}}}
    elif content_type == "application/pdf":
        ok = {
            "description": "OK",
            "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    else:
        ok = {"description": "OK", "content": {content_type: {"schema": {"type": "object"}}}}
    responses: dict[str, Any] = {str(route.status): ok}
    errors = set(route.errors)
    if route.body is not None or route.query is not None:
        errors |= {422}
    if route.method in UNSAFE and route.auth != "none":
        errors |= {403}
    if route.auth == "user":
        errors |= {401}
    if route.body is not None or route.raw_body:
        errors |= {413, 415}
    if route.throttle:
        errors |= {429}
    errors |= {404, 405, 500, 503}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": TITLES.get(status, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    op["responses"] = responses
    return op
