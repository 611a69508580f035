"""Root conftest: eventlet must patch the standard library before anything imports it.

Without this, tests that start nameko containers hang (see the stack notes).
"""

import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()
