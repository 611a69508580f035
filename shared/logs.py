"""Structured logs: one JSON object per line (LOG_FORMAT=json), each carrying the worker's
correlation id.

The `Metrics` dependency (shared/metrics.py) calls `bind()` as each worker starts and
`unbind()` as it ends; a logging filter copies what is bound onto every record, so a
line logged anywhere inside a worker (the kernel, a handler, SQLAlchemy) names the
request or event it belongs to. Under eventlet `threading.local` is per green thread,
that is per worker.

    {"ts": "2026-11-22T10:00:00.123Z", "level": "INFO", "service": "billing",
     "logger": "services.billing.handlers", "message": "...",
     "correlation_id": "c0ffee...", "entrypoint": "billing.on_payment_succeeded"}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

_context = threading.local()
FIELDS = ("correlation_id", "entrypoint", "call_id")


def bind(**values: Any) -> None:
    """Attach values (service, correlation_id, entrypoint, call_id) to this worker's lines."""
    for key, value in values.items():
        setattr(_context, key, value)


def unbind() -> None:
    for key in (*FIELDS, "service"):
        if hasattr(_context, key):
            delattr(_context, key)


def bound() -> dict[str, Any]:
    return {key: getattr(_context, key, None) for key in FIELDS}


class ContextFilter(logging.Filter):
    """Adds the worker's bound fields and the service name to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in bound().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "service"):
            # Several services can share a process (tests): the worker's own name wins.
            record.service = getattr(_context, "service", None) or self.service
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields given with `extra=` are kept."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        for key, value in vars(record).items():
            if key not in self._standard and key not in out and key not in FIELDS:
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_format(config: Mapping[str, Any]) -> str:
    value = str(config.get("LOG_FORMAT") or os.environ.get("LOG_FORMAT") or "plain").lower()
    if value not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be plain or json, not {value!r}")
    return value


def configure(service: str, config: Mapping[str, Any]) -> None:
    """Put the context filter (and, with LOG_FORMAT=json, the JSON formatter) on the
    root logger's handlers, as nameko's LOGGING config made them. Idempotent."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    as_json = log_format(config) == "json"
    for handler in root.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter(service))
        if as_json and not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
