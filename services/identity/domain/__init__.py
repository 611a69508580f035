"""The identity domain: aggregates, events and rules. Plain Python, no I/O."""
