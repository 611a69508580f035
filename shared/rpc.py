"""RPC with timeouts, and errors that keep their meaning across services.

* ``rpc`` replaces nameko's: a domain error (any `MuniportalError`) travels as
  its registered kind with its code, fields and detail; a marshmallow
  ValidationError becomes `InvalidInput` naming the fields; anything else is a
  bug, logged here and sent as a plain error with no internals.
* ``RpcProxy`` replaces nameko's: every call has a timeout (nameko has none) and
  the request expires in the queue at the same moment, so a service that comes
  back late does not act on requests nobody is waiting for.
* ``rpc_client`` is the standalone equivalent for the ops tool, tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import amqp.exceptions
import eventlet
import kombu.exceptions
from kombu import Queue
from marshmallow import ValidationError
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcConsumer as NamekoRpcConsumer
from nameko.rpc import RpcProxy as NamekoRpcProxy
from nameko.rpc import get_rpc_exchange
from nameko.standalone.rpc import ClusterRpcProxy

from shared.errors import InvalidInput, MuniportalError, Unavailable
from shared.events import flatten_messages

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0


def rpc_timeout(config: Mapping[str, Any]) -> float:
    return float(config.get("RPC_TIMEOUT") or DEFAULT_TIMEOUT)


class InternalError(MuniportalError):
    """An unexpected failure; the caller learns only that it happened."""

    kind = "error"
    status = 500
    default_detail = "An internal error occurred."


def to_wire_error(exc: BaseException) -> BaseException:
    if isinstance(exc, MuniportalError):
        return exc.as_kind()
    if isinstance(exc, ValidationError):
        return InvalidInput(errors=flatten_messages(exc.messages))
    return exc


class RpcConsumer(NamekoRpcConsumer):
    """Declares the service's RPC queue as a quorum queue when configured."""

    def setup(self) -> None:
        if self.queue is None:
            from shared.messaging import queue_type

            service = self.container.service_name
            args = (
                {"x-queue-type": "quorum"}
                if queue_type(self.container.config) == "quorum"
                else None
            )
            self.queue = Queue(
                f"rpc-{service}",
                exchange=get_rpc_exchange(self.container.config),
                routing_key=f"{service}.*",
                durable=True,
                queue_arguments=args,
            )
            self.queue_consumer.register_provider(self)
            self._registered = True


class Rpc(NamekoRpc):
    rpc_consumer = RpcConsumer()

    def __init__(
        self, expected_exceptions: Any = (MuniportalError, ValidationError), **kwargs: Any
    ) -> None:
        # A broken rule is expected: nameko logs it as one warning line, no traceback.
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        if exc_info is not None:
            exc = exc_info[1]
            wire = to_wire_error(exc)
            if not isinstance(wire, MuniportalError):
                log.error(
                    "unexpected error in %s", worker_ctx.entrypoint.method_name, exc_info=exc_info
                )
                wire = InternalError()
            exc_info = (type(wire), wire, exc_info[2])
        return super().handle_result(message, worker_ctx, result, exc_info)


rpc = Rpc.decorator


# The broker itself gone (a restart, a network cut): the caller gets Unavailable, not a 500.
_BROKER_ERRORS = (OSError, kombu.exceptions.OperationalError, amqp.exceptions.ConnectionError)


@contextlib.contextmanager
def _as_unavailable(service: str, timeout: float) -> Iterator[None]:
    """What goes wrong on the way to a service, as one Unavailable naming it."""
    try:
        yield
    except (eventlet.Timeout, RpcTimeout):
        raise Unavailable(
            f"The {service} service did not answer within {timeout:g} s.",
            code="service_timeout",
            extra={"service": service},
        ) from None
    except UnknownService:
        raise Unavailable(
            f"The {service} service is not running.",
            code="service_unknown",
            extra={"service": service},
        ) from None
    except _BROKER_ERRORS as exc:
        raise Unavailable(
            f"The {service} service cannot be reached just now (the message broker is "
            "unavailable); try again in a moment.",
            code="broker_unavailable",
            extra={"service": service},
        ) from exc


class ServiceClient:
    """Calls one service's methods; every call times out."""

    def __init__(self, proxy: Any, service: str, timeout: float) -> None:
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            with _as_unavailable(self._service, self._timeout):
                with eventlet.Timeout(self._timeout):
                    return target.call_async(*args, **kwargs).result()

        return call


class RpcProxy(NamekoRpcProxy):
    """nameko's RpcProxy with a timeout on every call (RPC_TIMEOUT, default 5 s)."""

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any):
        self._timeout = timeout
        super().__init__(target_service, **options)

    def setup(self) -> None:
        super().setup()
        self.timeout = self._timeout or rpc_timeout(self.container.config)
        # kombu takes seconds: the request dies in the queue when the caller gives up.
        self.options.setdefault("expiration", self.timeout)

    def get_dependency(self, worker_ctx: Any) -> ServiceClient:
        return ServiceClient(super().get_dependency(worker_ctx), self.target_service, self.timeout)


class Cluster:
    """Standalone access to every service, with timeouts (ops tool, tests, benches)."""

    def __init__(self, proxy: Any, timeout: float) -> None:
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, service: str) -> Any:
        return _StandaloneService(getattr(self._proxy, service), service, self._timeout)


class _StandaloneService:
    def __init__(self, proxy: Any, service: str, timeout: float) -> None:
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            with _as_unavailable(self._service, self._timeout):
                return target(*args, **kwargs)

        return call


@contextlib.contextmanager
def rpc_client(
    amqp_uri: str, *, timeout: float = DEFAULT_TIMEOUT, context_data: dict[str, Any] | None = None
) -> Iterator[Cluster]:
    """A standalone RPC client whose calls raise `Unavailable` after `timeout` seconds."""
    config = {"AMQP_URI": amqp_uri}
    with ClusterRpcProxy(config, timeout=timeout, context_data=context_data) as proxy:
        yield Cluster(proxy, timeout)


class ServiceDirectory:
    """Any service by attribute: ``services.billing.outstanding_bills(...)``."""

    def __init__(self, worker_ctx: Any, reply_listener: Any, timeout: float) -> None:
        self._worker_ctx = worker_ctx
        self._reply_listener = reply_listener
        self._timeout = timeout

    def __getattr__(self, service: str) -> ServiceClient:
        from nameko.rpc import ServiceProxy

        proxy = ServiceProxy(
            self._worker_ctx, service, self._reply_listener, expiration=self._timeout
        )
        return ServiceClient(proxy, service, self._timeout)

    def set_context(self, **values: Any) -> None:
        """Context data sent with every following call: actor, correlation_id."""
        # `context_data` is a fresh copy on every read; the worker's own dict is `data`.
        for key, value in values.items():
            if value is None:
                self._worker_ctx.data.pop(key, None)
            else:
                self._worker_ctx.data[key] = value

    def with_timeout(self, timeout: float) -> ServiceDirectory:
        return ServiceDirectory(self._worker_ctx, self._reply_listener, timeout)

    def ping_all(self, services: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Ping services concurrently; each answers within `timeout` or is reported down."""
        pool = eventlet.GreenPool(len(services) or 1)
        scoped = self.with_timeout(timeout)

        def ping(name: str) -> tuple[str, dict[str, Any]]:
            started = eventlet.hubs.get_hub().clock()
            try:
                getattr(scoped, name).ping()
                status = {"status": "ok"}
            except MuniportalError as exc:
                status = {"status": "unavailable", "detail": exc.detail}
            except Exception as exc:  # a broken service is down too, and says why
                status = {"status": "error", "detail": type(exc).__name__}
            status["ms"] = round((eventlet.hubs.get_hub().clock() - started) * 1000, 1)
            return name, status

        return dict(pool.imap(ping, services))


class Services(NamekoRpcProxy):
    """Every service, by name, with RPC timeouts: for the gateway."""

    def __init__(self, timeout: float | None = None) -> None:
        self._timeout = timeout
        super().__init__("*")

    def setup(self) -> None:
        super().setup()
        self.timeout = self._timeout or rpc_timeout(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> ServiceDirectory:
        return ServiceDirectory(worker_ctx, self.rpc_reply_listener, self.timeout)
