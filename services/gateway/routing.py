"""The API's route table: one declaration per route, read by the dispatcher and OpenAPI."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from marshmallow import Schema
from werkzeug.routing import Map, Rule

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclasses.dataclass
class Route:
    method: str
    path: str  # OpenAPI style: /api/v1/bills/{bill_number}
    handler: Callable[..., Any]
    auth: str = "user"  # user | optional | none | cart
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    throttle: str | None = None
    tag: str = "portal"
    errors: tuple[int, ...] = ()
    raw_body: bool = False
    headers: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    content_type: str = "application/json"

    @property
    def summary(self) -> str:
        doc = (self.handler.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.handler.__name__

    @property
    def rule(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


ROUTES: list[Route] = []


def route(method: str, path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare an API route: ``@route("GET", "/api/v1/me", response=MeSchema)``."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append(Route(method, path, handler, **options))
        return handler

    return register


def url_map(routes: list[Route]) -> Map:
    """A werkzeug map whose endpoints are indexes into `routes`."""
    rules = [Rule(r.rule, methods=[r.method], endpoint=str(i)) for i, r in enumerate(routes)]
    return Map(rules, strict_slashes=False, merge_slashes=False)
