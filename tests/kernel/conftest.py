"""Kernel fixtures: the example pair (ledger -> tally) on real RabbitMQ and a real store."""

import os
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "example"


@pytest.fixture(autouse=True)
def example_services(monkeypatch):
    """Let the ops tool and topology loader see the example pair."""
    monkeypatch.setenv(
        "MUNIPORTAL_SERVICE_MODULES",
        "ledger=tests.kernel.example.ledger,tally=tests.kernel.example.tally",
    )
    monkeypatch.setenv("MUNIPORTAL_TOPOLOGY", str(EXAMPLE / "topology.yaml"))


@pytest.fixture
def pair(container_factory, service_config, tmp_path, request):
    """Start ledger and tally on the given database backend (sqlite by default)."""
    from tests.kernel.example.ledger.service import LedgerService
    from tests.kernel.example.tally.service import TallyService

    def start(db: str = "sqlite", **extra):
        if db == "sqlite":
            ledger_db = f"sqlite:///{tmp_path / 'ledger.db'}"
            tally_db = f"sqlite:///{tmp_path / 'tally.db'}"
        else:
            ledger_db = tally_db = request.getfixturevalue("pg_url")
        notify = tmp_path / "notices.txt"
        common = dict(
            TOPOLOGY_FILE=str(EXAMPLE / "topology.yaml"), NOTIFY_FILE=str(notify), **extra
        )
        ledger = container_factory(LedgerService, service_config(ledger_db, **common))
        tally = container_factory(TallyService, service_config(tally_db, **common))
        ledger.start()
        tally.start()
        return {
            "ledger": ledger,
            "tally": tally,
            "ledger_db": ledger_db,
            "tally_db": tally_db,
            "notices": notify,
        }

    return start


def notices(path) -> list[str]:
    return path.read_text().splitlines() if os.path.exists(path) else []
