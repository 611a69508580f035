"""Gateway API test rig: one whole portal stack (tests/stack.py) for the session.

Provides ``stack`` (every service, the gateway, the processor sandbox, a test SMTP
server, all real processes) and ``api``, a small HTTP client bound to the gateway.
Nothing is faked.
"""

from __future__ import annotations

from tests.stack import stack_fixture

stack = stack_fixture(scope="session")
