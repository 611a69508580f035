"""The kernel's example pair: `ledger` produces events, `tally` consumes them.

They exist to prove the kernel end to end (log -> relay -> RabbitMQ -> inbox ->
projection, exactly once) without depending on any real service.
"""
