"""Benchmark plumbing: fresh databases and vhosts, percentiles, printing."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shared import testing


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    base, _ = testing.pg_base_url()
    url = testing.create_database(base)
    try:
        yield url
    finally:
        testing.drop_database(base, url)


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextlib.contextmanager
def vhost() -> Iterator[str]:
    base, _ = testing.amqp_base_uri()
    name = testing.create_vhost(base)
    if name is None:
        yield base
        return
    try:
        yield testing.with_vhost(base, name)
    finally:
        testing.delete_vhost(base, name)


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def show(label: str, value: object) -> None:
    print(f"  {label:<52} {value}", flush=True)
