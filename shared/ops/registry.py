"""Where the ops tool finds each service's store, projections and extra verbs.

By convention a service ``services/<name>/`` may have:

* ``projections.py`` with ``PROJECTIONS: list[type[Projection]]``;
* ``ops.py`` with ``register(subparsers, groups)`` adding its own verbs
  (``groups["import"]`` and ``groups["export"]`` are shared verb groups).

``MUNIPORTAL_SERVICE_MODULES="ledger=tests.kernel.example.ledger,..."`` adds
services that live elsewhere (the kernel's example pair in the tests).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from shared.projection import Projection
from shared.uow import ServiceStore

STORED_SERVICES = ("identity", "accounts", "billing", "payments", "notifications")
ALL_SERVICES = (*STORED_SERVICES, "gateway")


class UnknownName(LookupError):
    """A service, projection or stream the operator named does not exist."""


def extra_modules() -> dict[str, str]:
    raw = os.environ.get("MUNIPORTAL_SERVICE_MODULES", "")
    out = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, module = item.partition("=")
        out[name.strip()] = module.strip()
    return out


def known_services() -> list[str]:
    return [*STORED_SERVICES, *extra_modules()]


def _module(service: str, leaf: str) -> ModuleType | None:
    base = extra_modules().get(service, f"services.{service}")
    try:
        return importlib.import_module(f"{base}.{leaf}")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == f"{base}.{leaf}" or f"{base}.{leaf}".startswith(exc.name)):
            return None
        raise


def projections_of(service: str) -> list[type[Projection]]:
    module = _module(service, "projections")
    return list(getattr(module, "PROJECTIONS", [])) if module else []


def ops_module(service: str) -> ModuleType | None:
    return _module(service, "ops")


def open_store(service: str, url: str | None = None) -> ServiceStore:
    """The service's store as the ops tool (or a test) uses it: no nameko, no relay."""
    if service not in known_services():
        raise UnknownName(f"unknown service {service!r} (known: {', '.join(known_services())})")
    return ServiceStore(service, url, projections_of(service), pool_size=4)
