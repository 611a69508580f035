"""8 concurrent writers, 10,000 events: a reader tailing the log sees each once, in order.

This is the failure of Marten #3321, prooph #189 and commanded #3: a reader that
reads by an auto-increment position skips rows whose transaction commits after a
later one. The store must never do that (see shared/store.py).
"""

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from shared.store import EventStore, events_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITERS = 8
TOTAL = 10_000


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_tailing_reader_sees_every_event_once_in_order(backend, request, tmp_path):
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'stress.db'}"
    )
    store = EventStore("stress", url)
    store.migrate()
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.kernel.stress_writer", url, str(i), str(TOTAL // WRITERS)]
        )
        for i in range(WRITERS)
    ]
    seen_ids: list[str] = []
    positions: list[int] = []
    reads_while_writing = 0
    position = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        running = any(w.poll() is None for w in writers)
        batch = store.read_all(position, 500)
        if batch and running:
            reads_while_writing += 1
        for env in batch:
            seen_ids.append(env.event_id)
            positions.append(env.position)
        if batch:
            position = batch[-1].position
        elif not running:
            break
        else:
            time.sleep(0.005)
    assert [w.wait() for w in writers] == [0] * WRITERS
    assert len(seen_ids) == TOTAL, "the reader must see every event"
    assert len(set(seen_ids)) == TOTAL, "and each one once"
    assert positions == list(range(1, TOTAL + 1)), "in log order, with no gap and no repeat"
    with store.reading() as conn:
        stored = set(conn.execute(sa.select(events_table.c.event_id)).scalars())
    assert stored == set(seen_ids)
    assert reads_while_writing > 5, "the reader really tailed the log while it grew"
    # Within each stream, the log order is the stream's version order.
    by_stream: dict[str, list[int]] = {}
    for env in store.read_all(0, TOTAL + 1):
        by_stream.setdefault(env.stream_id, []).append(env.version)
    assert all(v == list(range(1, len(v) + 1)) for v in by_stream.values())
    store.dispose()
