"""nameko dependencies of the billing service: its schedule, and the penalty job."""

from __future__ import annotations

import logging
import threading
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider

from services.billing.penalties import assess_penalties
from services.billing.schedule import Schedule, load_schedule
from shared.lease import Lease
from shared.nameko import Store

log = logging.getLogger(__name__)


class BillingSchedule(DependencyProvider):
    """The city's rates and policy, read once at start (BILLING_SCHEDULE)."""

    def setup(self) -> None:
        self.schedule: Schedule = load_schedule(
            self.container.config.get("BILLING_SCHEDULE") or None
        )

    def get_dependency(self, worker_ctx: Any) -> Schedule:
        return self.schedule


class PenaltyJob(DependencyProvider):
    """Assesses late penalties every PENALTY_INTERVAL seconds, on exactly one replica."""

    def setup(self) -> None:
        self.interval = float(self.container.config.get("PENALTY_INTERVAL", 3600) or 0)
        self.passes = 0
        self.lease: Lease | None = None
        self._stopping = threading.Event()

    def _provider(self, cls: type) -> Any:
        return next(d for d in self.container.dependencies if isinstance(d, cls))

    def start(self) -> None:
        self._thread = None
        if self.interval > 0:
            self._thread = self.container.spawn_managed_thread(self._loop)

    def _loop(self) -> None:
        store = self._provider(Store).store
        schedule = self._provider(BillingSchedule).schedule
        self.lease = Lease(store.events, "penalties")
        try:
            while not self._stopping.is_set():
                try:
                    if self.lease.try_acquire():
                        assessed = assess_penalties(store, schedule, as_of=schedule.today())
                        self.passes += 1
                        if assessed:
                            log.info("assessed %s late penalties", assessed)
                except Exception:
                    log.exception("penalty pass failed; trying again next interval")
                self._stopping.wait(self.interval)
        finally:
            # Stopped or killed: hand the job to another replica now. Only this greenlet
            # ever uses the lease's connection (two users of one connection deadlock).
            self.lease.release()

    @property
    def holds_lease(self) -> bool:
        return self.lease is not None and self.lease.held

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            # Let the loop release its lease before the container kills managed threads.
            with eventlet.Timeout(10, False):
                self._thread.wait()

    def kill(self) -> None:
        self._stopping.set()

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
