"""Errors as application/problem+json: one table from error kind to HTTP status."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from shared.errors import MuniportalError

PROBLEM_TYPE = "https://muniportal.example/problems/"

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

# The kinds of shared/errors.py, by name, so no service module is imported here.
KIND_STATUS = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "unavailable": 503,
    "error": 500,
}


class Problem(Exception):
    """An HTTP error the gateway itself raises (not one a service sent)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or TITLES.get(status, "error").lower().replace(" ", "_")
        self.errors = errors or {}
        self.headers = headers or {}
        self.extra = extra or {}


def from_error(exc: MuniportalError) -> Problem:
    status = KIND_STATUS.get(exc.kind, 500)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if status == 429:
        headers["Retry-After"] = str(int(exc.extra.get("retry_after") or 60))
        extra["retry_after"] = int(headers["Retry-After"])
    if status == 503 and exc.extra.get("service"):
        extra["service"] = exc.extra["service"]
    for key in ("checkout_id", "reason"):
        if key in exc.extra:
            extra[key] = exc.extra[key]
    detail = exc.detail if status != 500 else "An internal error occurred."
    return Problem(status, detail, code=exc.code, errors=exc.errors, headers=headers, extra=extra)


def body_of(problem: Problem, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.code.replace("_", "-"),
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        "errors": problem.errors,
        "request_id": request_id,
    }
    body.update(problem.extra)
    return body


def response(problem: Problem, request_id: str) -> Response:
    return Response(
        json.dumps(body_of(problem, request_id)),
        status=problem.status,
        headers=problem.headers,
        content_type="application/problem+json",
    )
