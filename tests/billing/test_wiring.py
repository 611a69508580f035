"""The billing service's declared queues match its consumers, and its ops verbs are registered."""

from pathlib import Path

import yaml

from services.billing.service import BillingService
from shared.ops.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_every_consumer_has_its_queue_declared_and_no_other():
    declared = yaml.safe_load((ROOT / "deploy/rabbitmq/consumers/billing.yaml").read_text())[
        "consumers"
    ]
    in_code = set()
    for name in dir(BillingService):
        source_event = getattr(getattr(BillingService, name), "__consumes__", None)
        if source_event:
            in_code.add((source_event[0], source_event[1], f"billing.{name}"))
    assert {(c["source"], c["event"], c["consumer"]) for c in declared} == in_code
    assert len(in_code) == 12


def test_the_ops_verbs_are_there():
    parser = build_parser()
    for argv in (
        ["import", "reads", "x.csv"],
        ["import", "bills", "x.csv", "--dry-run"],
        ["export", "payments", "--date", "2026-11-21"],
        ["billing-run", "--cycle", "1", "--statement-date", "2026-11-20"],
        ["billing-runs"],
        ["assess-penalties"],
    ):
        assert callable(parser.parse_args(argv).func)
