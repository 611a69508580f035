"""nameko dependency providers: what a service class declares to stand on the kernel.

    class BillingService(KernelService):
        name = "billing"
        store = Store(PROJECTIONS)
        accounts = RpcProxy("accounts")
        mailer = Mailer()                 # a SideEffect

        @rpc
        def issue_bill(self, payload): ...

`Store` connects in ``setup()`` (never at import), migrates, and runs the
service's singleton jobs in managed threads, each under a lease so that one
replica runs it: the outbox relay and the async projectors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import kombu
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Connection

from shared.events import Envelope
from shared.lease import Lease
from shared.messaging import topology_declarations
from shared.metrics import Metrics
from shared.projection import Projection, catch_up_async
from shared.relay import OutboxRelay
from shared.rpc import rpc
from shared.uow import ServiceStore, UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerStore:
    """The store as one worker sees it: actor and correlation id come from the call."""

    def __init__(self, store: ServiceStore, context_data: dict[str, Any]) -> None:
        self._store = store
        self._context = context_data

    @property
    def service(self) -> str:
        return self._store.service

    @property
    def events(self) -> Any:
        return self._store.events

    @property
    def replaying(self) -> bool:
        return bool(self._context.get("replay"))

    @property
    def actor(self) -> str | None:
        return self._context.get("actor")

    @property
    def correlation_id(self) -> str | None:
        return self._context.get("correlation_id")

    def _meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        meta.setdefault("actor", self.actor)
        meta.setdefault("correlation_id", self.correlation_id)
        return meta

    def unit_of_work(self, **meta: Any) -> contextlib.AbstractContextManager[UnitOfWork]:
        return self._store.unit_of_work(**self._meta(meta))

    def run(self, work: Callable[[UnitOfWork], T], **meta: Any) -> T:
        """Run `work` in a unit of work, retried when a concurrent write wins."""
        return self._store.run(work, **self._meta(meta))

    def consume(
        self, consumer: str, envelope: Envelope, work: Callable[[UnitOfWork], Any] | None
    ) -> bool:
        return self._store.consume(consumer, envelope, work)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._store.read() as conn:
            yield conn

    def projection(self, name: str) -> Projection:
        return self._store.projection(name)


class Store(DependencyProvider):
    """The service's event store, projections, relay and async projectors."""

    def __init__(
        self,
        projections: Sequence[type[Projection]] = (),
        *,
        relay: bool = True,
        poll_interval: float = 0.25,
    ) -> None:
        self.projection_classes = list(projections)
        self.relay_enabled = relay
        self.poll_interval = poll_interval
        self.store: ServiceStore | None = None
        self.relay: OutboxRelay | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()

    def setup(self) -> None:
        config = self.container.config
        self.store = ServiceStore(
            self.container.service_name,
            config.get("DATABASE_URL") or None,
            self.projection_classes,
            # Also from the environment: no service's config.yaml names it.
            pool_size=int(config.get("DB_POOL_SIZE") or os.environ.get("DB_POOL_SIZE") or 10),
        )
        self.store.migrate()
        if self.relay_enabled:
            self.relay = OutboxRelay(
                self.store.events, config["AMQP_URI"], poll_interval=self.poll_interval
            )
        self.store.events.on_append(self._wake.set)

    def start(self) -> None:
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run)
        for projection in self.store.projections:  # type: ignore[union-attr]
            if projection.mode == "async":
                self.container.spawn_managed_thread(lambda p=projection: self._run_projector(p))

    def _run_projector(self, projection: Projection) -> None:
        assert self.store is not None  # noqa: S101 - set in setup()
        lease = Lease(self.store.events, f"projector-{projection.name}")
        while not self._stopping.is_set():
            try:
                if lease.try_acquire():
                    catch_up_async(self.store.events, projection)
            except Exception:
                log.exception("projector %s failed; retrying", projection.name)
                self._stopping.wait(1.0)
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        lease.release()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self.relay is not None:
            self.relay.stop()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> WorkerStore:
        return WorkerStore(self.store, worker_ctx.context_data)  # type: ignore[arg-type]


class Topology(DependencyProvider):
    """Declares every exchange, consumer queue and parking queue at start."""

    def setup(self) -> None:
        config = self.container.config
        declarations = topology_declarations(config)
        with kombu.Connection(config["AMQP_URI"]) as conn:
            channel = conn.channel()
            for entity in declarations:
                entity.bind(channel).declare()

    def get_dependency(self, worker_ctx: Any) -> None:
        return None


class Suppressed:
    """Stands in for a side effect during a replay: every call is logged and skipped."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., None]:
        def skipped(*args: Any, **kwargs: Any) -> None:
            log.info("replay: skipped %s.%s", self._name, method)

        return skipped


class SideEffect(DependencyProvider):
    """Base for dependencies that act on the outside world (SMTP, card processor).

    Workers handling a replayed event get a stand-in whose calls do nothing, so
    a replay can never send an email or charge a card again. Subclasses
    implement `live(worker_ctx)`.
    """

    def get_dependency(self, worker_ctx: Any) -> Any:
        if worker_ctx.context_data.get("replay"):
            return Suppressed(self.attr_name)
        return self.live(worker_ctx)

    def live(self, worker_ctx: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class KernelService:
    """Base for every muniportal service: topology at start, a ping for health, and
    health, readiness and Prometheus metrics over HTTP (shared/metrics.py).

    The base itself has no entrypoint, so `nameko run` never mistakes it for a
    service when it is imported into a service's module: each subclass gets
    its own `ping`.
    """

    topology = Topology()
    metrics = Metrics()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "ping" not in cls.__dict__:

            def ping(self: Any) -> dict[str, str]:
                """Answer the gateway's health check."""
                return {"service": self.name, "status": "ok"}

            cls.ping = rpc(ping)
