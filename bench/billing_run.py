"""Billing run benchmark: 100,000 accounts with one read each, on PostgreSQL.

Stages, each timed: loading the accounts into billing's projection (as the
accounts consumer would, in bulk), importing the reads file
(`import reads`), the billing run itself (`billing-run`, ending when every
bill is committed together with billing's projections, which the portal
reads), publishing the run's events to RabbitMQ (the outbox relay; other
services' projections start from there), and rebuilding every billing
projection from the log. Target: the run under 60 s on 2 cores.

BENCH_BILLING_ACCOUNTS changes the size (default 100000).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ACCOUNTS = int(os.environ.get("BENCH_BILLING_ACCOUNTS", "100000"))
CYCLE = "1"
STATEMENT = dt.date(2026, 11, 20)


def _say(message: str) -> None:
    print(f"  billing_run: {message}", flush=True)


def _account_envelopes(n: int) -> list[Any]:
    from shared.events import Envelope

    now = dt.datetime.now(dt.UTC)
    sizes = ("5/8", "5/8", "5/8", "3/4", "1", "1-1/2")
    out = []
    for i in range(n):
        number = str(1_000_000 + i)
        customer = str(5_000_000 + i)
        meter = str(70_000_000 + i)
        code = "15000" if i % 12 == 0 else "15100"
        services = [
            {
                "code": c,
                "name": name,
                "start_date": "2000-01-01",
                "stop_date": None,
                "status": "ACTIVE",
                "meter_number": meter,
                "meter_size": sizes[i % len(sizes)],
            }
            for c, name in (("10000", "WATER FIXED CHARGE"), (code, "WATER VAR CHARGE"))
        ]
        for type_, data, stream in (
            (
                "CustomerImported",
                {
                    "customer_id": customer,
                    "name": f"RESIDENT {i}",
                    "mailing_address": {
                        "line1": f"{i} MAIN ST",
                        "city": "PLEASANTON",
                        "state": "CA",
                        "zip": "94566",
                    },
                },
                f"customer-{customer}",
            ),
            (
                "AccountImported",
                {
                    "account_number": number,
                    "customer_id": customer,
                    "service_address": f"{i} MAIN ST",
                    "service_city": "PLEASANTON",
                    "service_state": "CA",
                    "service_zip": "94566",
                    "status": "ACTIVE",
                    "cycle": CYCLE,
                    "services": services,
                },
                f"account-{number}",
            ),
        ):
            out.append(
                Envelope(
                    event_id=str(uuid.uuid4()),
                    type=type_,
                    schema_version=1,
                    stream_id=stream,
                    version=1,
                    position=None,
                    occurred_at=now,
                    correlation_id=None,
                    causation_id=None,
                    actor="system",
                    source="accounts",
                    data=data,
                )
            )
    return out


def _load_accounts(store: Any, n: int) -> None:
    """What billing's consumers do per delivery (inbox rows, projection rows), in bulk."""
    from shared.events import utcnow
    from shared.projection import apply_inline
    from shared.store import inbox_table

    envelopes = _account_envelopes(n)
    consumers = {
        "AccountImported": "billing.on_account_imported",
        "CustomerImported": "billing.on_customer_imported",
    }
    for start in range(0, len(envelopes), 4000):
        chunk = envelopes[start : start + 4000]
        rows = []
        for env in chunk:
            wire = env.to_wire()
            for consumer in (consumers[env.type], "projections"):
                rows.append(
                    {
                        "consumer": consumer,
                        "event_id": env.event_id,
                        "source": "accounts",
                        "type": env.type,
                        "envelope": wire,
                        "received_at": utcnow(),
                    }
                )
        with store.events.transaction() as conn:
            conn.execute(inbox_table.insert(), rows)
            apply_inline(store.events, store.projections, conn, chunk)


def _reads_file(directory: Path, n: int) -> Path:
    path = directory / "reads.csv"
    with open(path, "w") as fh:
        fh.write(
            "account_number,service_code,meter_number,previous_read_date,previous_reading,read_date,reading\n"
        )
        for i in range(n):
            code = "15000" if i % 12 == 0 else "15100"
            previous = 1000 + (i * 37) % 8000
            fh.write(
                f"{1_000_000 + i},{code},{70_000_000 + i},2026-09-16,{previous},"
                f"2026-11-16,{previous + 5 + (i * 13) % 40}\n"
            )
    return path


def _reference(schedule: Any) -> float:
    """Same-run reference (the machine is noisy): composing 10,000 bills in pure Python."""
    from services.billing.domain.compose import AccountIn, Carried, ReadIn, compose_utility_bill

    services = [
        {"code": "10000", "status": "ACTIVE", "meter_size": "5/8"},
        {"code": "15100", "status": "ACTIVE", "meter_size": "5/8"},
    ]
    read = ReadIn(
        "15100", "M1", dt.date(2026, 9, 16), dt.date(2026, 11, 16), 1000, 1020, 20, "actual"
    )
    t = time.perf_counter()
    for i in range(10_000):
        compose_utility_bill(
            account=AccountIn(str(i), "1", "RESIDENT", "1 MAIN ST", CYCLE, services),
            bill_number=str(i),
            statement_date=STATEMENT,
            due_date=STATEMENT + dt.timedelta(days=54),
            bill_year=2027,
            rates=schedule.rates,
            unbilled={"15100": [read]},
            history={},
            carried=Carried(),
            estimate_missing=True,
            late_penalty=True,
            statement=schedule.statement_block(),
            run_id="reference",
        )
    return round(time.perf_counter() - t, 3)


def main() -> dict[str, Any]:
    from services.billing import domain  # noqa: F401 - event schemas
    from services.billing import projections as p
    from services.billing.import_reads import import_reads
    from services.billing.run import billing_run
    from services.billing.schedule import load_schedule
    from shared import testing
    from shared.projection import rebuild
    from shared.relay import OutboxRelay
    from shared.uow import ServiceStore

    pg_base, _ = testing.pg_base_url()
    url = testing.create_database(pg_base)
    amqp_base, _ = testing.amqp_base_uri()
    vhost = testing.create_vhost(amqp_base)
    amqp = testing.with_vhost(amqp_base, vhost) if vhost else amqp_base
    store = ServiceStore("billing", url, p.PROJECTIONS, pool_size=4)
    schedule = load_schedule()
    figures: dict[str, Any] = {"accounts": ACCOUNTS, "database": "postgresql", "stages_s": {}}
    stages = figures["stages_s"]
    try:
        store.migrate()
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            _load_accounts(store, ACCOUNTS)
            stages["load_accounts_into_projection"] = round(time.perf_counter() - t, 2)
            _say(
                f"{ACCOUNTS} accounts in billing's projection in "
                f"{stages['load_accounts_into_projection']} s"
            )

            path = _reads_file(Path(tmp), ACCOUNTS)
            t = time.perf_counter()
            result = import_reads(store, path, schedule=schedule, today=dt.date(2026, 11, 22))
            stages["import_reads"] = round(time.perf_counter() - t, 2)
            assert result["recorded"] == ACCOUNTS, result
            _say(f"imported {ACCOUNTS} reads in {stages['import_reads']} s")

        figures["reference_compose_10k_bills_s"] = _reference(schedule)
        run_stats: dict[str, float] = {}
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        run = billing_run(
            store,
            cycle=CYCLE,
            statement_date=STATEMENT,
            schedule=schedule,
            batch_size=500,
            today=dt.date(2026, 11, 22),
            stats=run_stats,
        )
        run_s = time.perf_counter() - t
        figures["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        with store.read() as conn:
            in_projection = conn.execute(
                sa.select(sa.func.count())
                .select_from(p.bills)
                .where(p.bills.c.run_id == run.run_id)
            ).scalar_one()
        assert run.billed == ACCOUNTS == in_projection, (run.billed, in_projection)
        stages["billing_run"] = round(run_s, 2)
        breakdown = {k: round(v, 2) for k, v in run_stats.items()}
        breakdown["commit"] = round(
            run_stats.get("batches", 0)
            - run_stats.get("gather", 0)
            - run_stats.get("compose", 0)
            - run_stats.get("append_and_project", 0),
            2,
        )
        figures["billing_run_breakdown_s"] = breakdown
        figures["bills"] = run.billed
        figures["bills_per_s"] = round(run.billed / run_s)
        figures["amount_billed"] = str(run.amount)
        figures["target_met"] = run_s < 60
        _say(
            f"billed {run.billed} accounts in {run_s:.1f} s "
            f"({figures['bills_per_s']} bills/s): {breakdown}"
        )

        relay = OutboxRelay(store.events, amqp, batch_size=2000)
        t = time.perf_counter()
        published = relay.publish_pending()
        relay.publisher.close()
        stages["relay_to_rabbitmq"] = round(time.perf_counter() - t, 2)
        figures["events_published"] = published
        _say(f"published {published} events to RabbitMQ in {stages['relay_to_rabbitmq']} s")

        rebuilds = {}
        t_all = time.perf_counter()
        for cls in store.projection_classes:
            t = time.perf_counter()
            events = rebuild(store.events, cls)
            rebuilds[cls.name] = {"events": events, "seconds": round(time.perf_counter() - t, 2)}
        figures["rebuild_s"] = round(time.perf_counter() - t_all, 2)
        figures["rebuild"] = rebuilds
        _say(f"rebuilt every billing projection in {figures['rebuild_s']} s: {rebuilds}")
        with store.read() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(p.bills)).scalar_one()
                == ACCOUNTS
            )
    finally:
        store.dispose()
        testing.drop_database(pg_base, url)
        if vhost:
            testing.delete_vhost(amqp_base, vhost)
    return figures


if __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()
    print(main())
