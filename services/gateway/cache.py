"""In-process read caches, invalidated by the events that change what they hold.

Reads are cached per scope (``a:<account>``, ``c:<customer>``, ``u:<user>``). An event
that changes a scope drops its entries. Payments' events change what billing answers
only once billing has consumed them too, and billing publishes nothing for the
pending-payment flag: those events mark the scope *dirty* for a few seconds, during
which reads go to billing and are not kept. A generation counter stops a read that
started before an invalidation from storing its stale answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Flights:
    """One load per key at a time: concurrent readers of a missing entry share it.

    Without this, an entry expiring under 50 concurrent readers sends 50 identical
    RPCs at once (measured: p99 of seconds while identity and billing caught up).
    """

    def __init__(self) -> None:
        self._running: dict[Any, _Flight] = {}

    def run(self, key: Any, load: Callable[[], Any]) -> Any:
        flight = self._running.get(key)
        if flight is not None:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        flight = self._running[key] = _Flight()
        try:
            flight.value = load()
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            del self._running[key]
            flight.done.set()


class ReadCache:
    def __init__(
        self, ttl: float, dirty_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.dirty_seconds = dirty_seconds
        self.clock = clock
        self._entries: dict[str, dict[Any, tuple[float, Any]]] = {}
        self._generation: dict[str, int] = {}
        self._dirty_until: dict[str, float] = {}
        self._bill_scopes: dict[str, set[str]] = {}
        self.stats = {"hits": 0, "misses": 0, "bypassed": 0, "invalidations": 0}
        self._flights = Flights()

    def get(self, scope: str, key: Any, load: Callable[[], Any]) -> Any:
        now = self.clock()
        dirty = self._dirty_until.get(scope, 0) > now
        if not dirty:
            entry = self._entries.get(scope, {}).get(key)
            if entry is not None and entry[0] > now:
                self.stats["hits"] += 1
                return entry[1]
        self.stats["bypassed" if dirty else "misses"] += 1
        generation = self._generation.get(scope, 0)
        value = self._flights.run((scope, key, generation), load)
        if not dirty and self._generation.get(scope, 0) == generation:
            self._entries.setdefault(scope, {})[key] = (self.clock() + self.ttl, value)
            self._index_bills(scope, value)
        return value

    def _index_bills(self, scope: str, value: Any) -> None:
        bills = value.get("bills") if isinstance(value, dict) else None
        for bill in bills or ():
            number = bill.get("bill_number") if isinstance(bill, dict) else None
            if number:
                self._bill_scopes.setdefault(str(number), set()).add(scope)

    def invalidate(self, *scopes: str | None) -> None:
        for scope in scopes:
            if scope:
                self._entries.pop(scope, None)
                self._generation[scope] = self._generation.get(scope, 0) + 1
                self.stats["invalidations"] += 1

    def mark_dirty(self, *scopes: str | None) -> None:
        """Drop the scopes and keep them uncached while billing catches up."""
        until = self.clock() + self.dirty_seconds
        for scope in scopes:
            if scope:
                self._dirty_until[scope] = until
        self.invalidate(*scopes)
        if len(self._dirty_until) > 10_000:
            now = self.clock()
            self._dirty_until = {s: t for s, t in self._dirty_until.items() if t > now}

    def scopes_of_bills(self, bill_numbers: Iterable[Any]) -> set[str]:
        out: set[str] = set()
        for number in bill_numbers:
            out |= self._bill_scopes.get(str(number), set())
        return out


class SessionCache:
    """Recently authenticated session tokens (by hash), for a few seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_key: dict[str, tuple[float, dict[str, Any]]] = {}
        self._flights = Flights()

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._by_key.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def get_or_load(self, key: str, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The cached session, or one authentication shared by concurrent requests."""
        auth = self.get(key)
        if auth is None:
            auth = self._flights.run(key, load)
            self.put(key, auth)
        return auth

    def put(self, key: str, auth: dict[str, Any]) -> None:
        if len(self._by_key) > 50_000:
            now = self.clock()
            self._by_key = {k: v for k, v in self._by_key.items() if v[0] > now}
        self._by_key[key] = (self.clock() + self.ttl, auth)

    def drop(self, key: str) -> None:
        self._by_key.pop(key, None)

    def drop_session(self, session_id: str) -> None:
        for key, (_, auth) in list(self._by_key.items()):
            if auth.get("session_id") == session_id:
                self._by_key.pop(key, None)

    def drop_user(self, user_id: str) -> None:
        for key, (_, auth) in list(self._by_key.items()):
            if auth.get("user_id") == user_id:
                self._by_key.pop(key, None)
