"""Positions and lag: what `muniportal-ops stats` prints and each service's /metrics exposes.

`store_figures` is the one place these figures are computed: the ops tool calls it on
a store it opens, a running service's `Metrics` dependency on its live store, so the
two always agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.ops import deadletters
from shared.ops.registry import open_store
from shared.projection import checkpoint_name
from shared.relay import RELAY_CHECKPOINT


def service_stats(service: str, amqp_uri: str | None) -> dict[str, Any]:
    store = open_store(service)
    try:
        return store_figures(store, service, amqp_uri)
    finally:
        store.dispose()


def store_figures(store: Any, service: str, amqp_uri: str | None) -> dict[str, Any]:
    """Log head, outbox backlog, projector lag, consumer queues and parked (dead) letters."""
    head = store.events.head_position()
    checkpoints = store.events.checkpoints()
    relay = checkpoints.get(RELAY_CHECKPOINT, 0)
    projectors = []
    for cls in store.projection_classes:
        position = head if cls.mode == "inline" else checkpoints.get(checkpoint_name(cls), 0)
        projectors.append(
            {"projection": cls.name, "mode": cls.mode, "position": position, "lag": head - position}
        )
    row: dict[str, Any] = {
        "service": service,
        "head": head,
        "unsequenced": store.events.unsequenced_count(),
        "relay": {"position": relay, "lag": head - relay},
        "projectors": projectors,
        "consumers": [],
    }
    emails = emails_by_status(store, service)
    if emails is not None:
        row["emails"] = emails
    if amqp_uri:
        queues = deadletters.consumer_queues(service)
        try:
            depths = deadletters.depth(amqp_uri, [*queues, *(q + ".parked" for q in queues)])
        except Exception as exc:  # the broker is down: say so, keep the rest
            row["broker_error"] = str(exc) or type(exc).__name__
            depths = {}
        for queue in queues:
            row["consumers"].append(
                {"queue": queue, "lag": depths.get(queue), "parked": depths.get(queue + ".parked")}
            )
    return row


def emails_by_status(store: Any, service: str) -> dict[str, int] | None:
    """Notifications' delivery log by status (queued, sent, deferred, failed, given_up)."""
    if service != "notifications":
        return None
    from services.notifications.projections import messages

    with store.read() as conn:
        counts = conn.execute(
            sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
        ).all()
    return {status: count for status, count in counts}


def render(row: dict[str, Any]) -> str:
    lines = [
        f"{row['service']}: head {row['head']}, relay at {row['relay']['position']} "
        f"(lag {row['relay']['lag']})"
    ]
    if row.get("unsequenced"):
        lines.append(f"  {row['unsequenced']} events awaiting sequencing")
    for p in row["projectors"]:
        lines.append(
            f"  projection {p['projection']} ({p['mode']}): at {p['position']}, lag {p['lag']}"
        )
    for c in row["consumers"]:
        lines.append(f"  consumer {c['queue']}: {c['lag']} waiting, {c['parked']} parked")
    if "emails" in row:
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(row["emails"].items())) or "none"
        lines.append(f"  emails: {by_status}")
    if row.get("broker_error"):
        lines.append(f"  broker unavailable: {row['broker_error']}")
    return "\n".join(lines)
