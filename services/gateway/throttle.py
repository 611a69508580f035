"""Per-address throttles: fixed windows counted in this process.

Each gateway replica counts on its own, so N replicas allow up to N times the limit;
the services' own throttles (sign-in per login, link failures per user) are global.
"""

from __future__ import annotations

import math
import threading
import time

from services.gateway.settings import Limit


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class Throttle:
    def __init__(self, limits: dict[str, Limit], clock=time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, name: str, key: str) -> None:
        """Count one request; raise Throttled when the window is full."""
        limit = self.limits[name]
        now = self.clock()
        with self._lock:
            started, count = self._windows.get((name, key), (now, 0))
            if now - started >= limit.window:
                started, count = now, 0
            if count >= limit.count:
                raise Throttled(max(1, math.ceil(limit.window - (now - started))))
            self._windows[(name, key)] = (started, count + 1)
            if len(self._windows) > 100_000:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        for key, (started, _) in list(self._windows.items()):
            if now - started >= self.limits[key[0]].window:
                del self._windows[key]
