"""What every payments aggregate shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.aggregate import Aggregate
from shared.events import to_jsonable


class PaymentsAggregate(Aggregate):
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Record an event from plain values (Decimals, dates) in their JSON form."""
        self.record(event_type, to_jsonable(dict(data)))


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)
