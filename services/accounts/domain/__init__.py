"""The accounts domain: aggregates, events and rules. Plain Python, no I/O."""

from services.accounts.domain import events  # noqa: F401 - registers the event schemas
