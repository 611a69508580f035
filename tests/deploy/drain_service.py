"""A small service on the kernel for the operability tests: a slow RPC to drain, a page.

Run by tests/deploy/test_operability.py as its own `nameko run` process.
"""

import logging

import eventlet
from nameko.web.handlers import http

from shared.nameko import KernelService
from shared.rpc import rpc

log = logging.getLogger("tests.deploy.drain_service")


class DrainerService(KernelService):
    name = "drainer"

    @rpc
    def slow(self, seconds: float) -> str:
        """Work that takes a while: it must finish when SIGTERM arrives meanwhile."""
        log.info("slow work started")
        eventlet.sleep(seconds)
        log.info("slow work done")
        return "done"

    @http("GET", "/hello")
    def hello(self, request):
        """A page, for the HTTP latency histogram."""
        return 200, "hello"
