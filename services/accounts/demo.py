"""The accounts part of the demo city, loaded through the same import as the ops tool.

`demo/city.csv` holds the seed guides' examples (account 28624 / customer
405583, CITY OF PLEASANTON; the general-billing EXAMPLE CUSTOMER, customer
12345); `demo/generated.csv` a few thousand generated accounts in two billing
cycles (written by `demo/generate.py`, deterministic). Loading again changes
nothing: the import records only what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.accounts import handlers
from services.accounts.importer import read_file

DEMO_DIR = Path(__file__).with_name("demo")
FILES = ("city.csv", "generated.csv")


def load(store: Any) -> dict[str, Any]:
    """Import the demo files; idempotent."""
    store.migrate()
    summary: dict[str, Any] = {}
    for name in FILES:
        plan = read_file(str(DEMO_DIR / name), filename=f"demo/{name}")
        if plan.errors:
            raise ValueError("the demo data has bad rows:\n" + "\n".join(plan.report()))
        result = handlers.import_registry(store, plan, actor="system")
        summary[name] = {"customers": result["customers"], "accounts": result["accounts"]}
    return summary
