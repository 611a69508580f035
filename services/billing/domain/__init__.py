"""The billing domain: aggregates, events and rules. Plain Python, no I/O."""

from services.billing.domain import events  # noqa: F401 - registers the event schemas
