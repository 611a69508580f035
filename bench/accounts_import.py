"""The demo city's registry import: first load and idempotent re-load, SQLite and PostgreSQL.

`make run` loads the demo every time, so the re-load must stay cheap; the first
load shows the import's throughput (streams per second).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from services.accounts import handlers
from services.accounts.demo import DEMO_DIR, FILES
from services.accounts.importer import read_file
from services.accounts.projections import PROJECTIONS
from shared import testing
from shared.uow import ServiceStore


def _run(url: str) -> dict[str, float]:
    store = ServiceStore("accounts", url, PROJECTIONS)
    store.migrate()
    plans = [read_file(str(DEMO_DIR / name)) for name in FILES]
    streams = sum(len(p.customers) + len(p.accounts) for p in plans)
    figures: dict[str, float] = {"streams": streams}
    try:
        for label in ("first_load_s", "reload_s"):
            started = time.perf_counter()
            for plan in plans:
                handlers.import_registry(store, plan)
            figures[label] = round(time.perf_counter() - started, 3)
        figures["first_load_streams_per_s"] = round(streams / figures["first_load_s"])
    finally:
        store.dispose()
    return figures


def main() -> dict:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        figures["sqlite"] = _run(f"sqlite:///{Path(tmp) / 'accounts.db'}")
    print("sqlite", figures["sqlite"], flush=True)
    base, container = testing.pg_base_url()
    url = testing.create_database(base)
    try:
        figures["postgresql"] = _run(url)
    finally:
        testing.drop_database(base, url)
        if container is not None:
            container.stop()
    print("postgresql", figures["postgresql"], flush=True)
    return figures
