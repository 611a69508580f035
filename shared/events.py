"""Event envelopes, event-type schemas and upcasters.

An event type is declared once, with its schema version, as a marshmallow
schema::

    @event_type("BillIssued", version=1)
    class BillIssued(Schema):
        bill_number = fields.Str(required=True)

Event data is validated when an aggregate records it and when it arrives from
another service. Old versions are read through upcasters registered per
(type, from_version); readers always see the current version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from shared.errors import InvalidInput

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class EventType:
    name: str
    version: int
    schema: Schema


_TYPES: dict[str, EventType] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def event_type(name: str, version: int = 1) -> Callable[[type[Schema]], type[Schema]]:
    """Register a marshmallow schema as the current version of event `name`."""

    def register(schema_cls: type[Schema]) -> type[Schema]:
        known = _TYPES.get(name)
        if known and type(known.schema).__qualname__ != schema_cls.__qualname__:
            raise ValueError(f"event type {name} is declared twice")
        _TYPES[name] = EventType(name, version, schema_cls())
        schema_cls.event_name = name  # type: ignore[attr-defined]
        schema_cls.event_version = version  # type: ignore[attr-defined]
        return schema_cls

    return register


def upcaster(name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns version `from_version` data into the next version."""

    def register(fn: Upcaster) -> Upcaster:
        key = (name, from_version)
        if key in _UPCASTERS:
            raise ValueError(f"upcaster for {name} v{from_version} is declared twice")
        _UPCASTERS[key] = fn
        return fn

    return register


def registered_type(name: str) -> EventType | None:
    return _TYPES.get(name)


def registered_types() -> dict[str, EventType]:
    return dict(_TYPES)


def current_version(name: str) -> int:
    known = _TYPES.get(name)
    return known.version if known else 1


def validate_data(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate event data against its registered schema; return it in JSON-ready form."""
    known = _TYPES.get(name)
    if known is None:
        return to_jsonable(dict(data))
    try:
        loaded = known.schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(f"event {name} is not valid", _flatten(exc.messages)) from exc
    return to_jsonable(loaded)


def upcast(name: str, version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Bring data of an old schema version up to the current one."""
    target = current_version(name)
    while version < target:
        step = _UPCASTERS.get((name, version))
        if step is None:
            raise LookupError(f"no upcaster for {name} v{version}")
        data = step(dict(data))
        version += 1
    return version, data


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class NewEvent:
    """An event recorded by domain code but not yet stored."""

    type: str
    data: dict[str, Any]
    schema_version: int = 0  # 0: use the registered current version

    def resolved_version(self) -> int:
        return self.schema_version or current_version(self.type)


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """A stored event with everything a reader needs to know about it."""

    event_id: str
    type: str
    schema_version: int
    stream_id: str
    version: int
    position: int | None
    occurred_at: dt.datetime
    correlation_id: str | None
    causation_id: str | None
    actor: str | None
    source: str
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready form published to RabbitMQ and shown by the ops tool."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "schema_version": self.schema_version,
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "occurred_at": self.occurred_at.isoformat(),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "source": self.source,
            "data": self.data,
        }

    @classmethod
    def from_wire(cls, payload: Mapping[str, Any]) -> Envelope:
        """Validate a received envelope and upcast its data to the current version."""
        try:
            loaded = _ENVELOPE_SCHEMA.load(payload)
        except ValidationError as exc:
            raise InvalidInput("malformed event envelope", _flatten(exc.messages)) from exc
        version, data = upcast(loaded["type"], loaded["schema_version"], loaded["data"])
        return cls(
            event_id=str(loaded["event_id"]),
            type=loaded["type"],
            schema_version=version,
            stream_id=loaded["stream_id"],
            version=loaded["version"],
            position=loaded.get("position"),
            occurred_at=loaded["occurred_at"],
            correlation_id=loaded.get("correlation_id"),
            causation_id=loaded.get("causation_id"),
            actor=loaded.get("actor"),
            source=loaded["source"],
            data=data,
        )

    @classmethod
    def from_stored(cls, payload: Mapping[str, Any]) -> Envelope:
        """An envelope kept in the inbox: validated when it was consumed, so only upcast.

        Rebuilds read many of them; the envelope schema costs as much as the rebuild.
        """
        occurred = dt.datetime.fromisoformat(payload["occurred_at"])
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=dt.UTC)
        version, data = upcast(payload["type"], payload["schema_version"], payload["data"])
        return cls(
            event_id=str(payload["event_id"]),
            type=payload["type"],
            schema_version=version,
            stream_id=payload["stream_id"],
            version=payload["version"],
            position=payload.get("position"),
            occurred_at=occurred,
            correlation_id=payload.get("correlation_id"),
            causation_id=payload.get("causation_id"),
            actor=payload.get("actor"),
            source=payload["source"],
            data=data,
        )

    def load(self) -> dict[str, Any]:
        """The data deserialized by its registered schema (Decimals, dates...)."""
        known = _TYPES.get(self.type)
        return known.schema.load(self.data) if known else dict(self.data)


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    schema_version = fields.Int(required=True, validate=validate.Range(min=1))
    stream_id = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    version = fields.Int(required=True, validate=validate.Range(min=1))
    position = fields.Int(allow_none=True, load_default=None)
    occurred_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    correlation_id = fields.Str(allow_none=True, load_default=None)
    causation_id = fields.Str(allow_none=True, load_default=None)
    actor = fields.Str(allow_none=True, load_default=None)
    source = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    data = fields.Dict(required=True)


_ENVELOPE_SCHEMA = EnvelopeSchema()


def new_event_id() -> str:
    return str(uuid.uuid4())


def to_jsonable(value: Any) -> Any:
    """Money stays exact: Decimals become strings, never floats."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in event data; use Decimal or int")
    return value


def json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            out[prefix or "_schema"] = " ".join(messages)
        else:
            for i, value in enumerate(messages):
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "_schema"] = str(messages)
    return out


flatten_messages = _flatten
