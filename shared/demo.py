"""The demo city: each service loads its part from `services/<name>/demo.py`.

A service's ``demo.load(store)`` must be idempotent: `make run` calls it every
time, and it changes nothing the second time.
"""

from __future__ import annotations

import importlib

from shared.ops.registry import STORED_SERVICES, open_store

# Registry first: bills refer to accounts, links to users.
ORDER = ("accounts", "identity", "billing", "payments", "notifications")


def load_demo_city() -> dict[str, object]:
    results: dict[str, object] = {}
    for service in sorted(STORED_SERVICES, key=ORDER.index):
        try:
            module = importlib.import_module(f"services.{service}.demo")
        except ModuleNotFoundError as exc:
            if exc.name == f"services.{service}.demo":
                continue
            raise
        store = open_store(service)
        try:
            results[service] = module.load(store)
        finally:
            store.dispose()
    return results
