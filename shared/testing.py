"""Helpers for the test rig: locating real RabbitMQ and PostgreSQL, and waiting.

Infrastructure comes from, in order: ``AMQP_URI`` / ``DATABASE_URL``; the
local defaults (127.0.0.1, guest/guest, postgres with trust auth); a
testcontainers container when a Docker engine answers. When none works the
caller fails the run with `missing()`'s message. Nothing here skips.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class MissingInfrastructure(RuntimeError):
    pass


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll until `predicate` returns something truthy; fail loudly after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:g}s waiting for {what}"
        + (f" (last error: {last_exc!r})" if last_exc else "")
    )


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def amqp_base_uri() -> tuple[str, Any]:
    """(uri, container-or-None) of a reachable RabbitMQ, or raise MissingInfrastructure."""
    uri = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    parts = urllib.parse.urlparse(uri)
    if _port_open(parts.hostname or "127.0.0.1", parts.port or 5672):
        return uri, None
    if _docker_engine():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-management")
        container.start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}/", container
    raise MissingInfrastructure(
        f"RabbitMQ is not reachable at {parts.hostname}:{parts.port or 5672} (AMQP_URI) and no "
        "Docker engine answers for testcontainers. Start it with `rabbitmq-server -detached` "
        "or set AMQP_URI."
    )


def pg_base_url() -> tuple[str, Any]:
    """(url, container-or-None) of a reachable PostgreSQL, or raise MissingInfrastructure."""
    url = os.environ.get("DATABASE_URL", DEFAULT_PG_URL)
    if url.startswith("postgresql"):
        parts = urllib.parse.urlparse(url)
        if _port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
            return url, None
    if _docker_engine():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15")
        container.start()
        return container.get_connection_url().replace("+psycopg2", ""), container
    raise MissingInfrastructure(
        "PostgreSQL is not reachable (DATABASE_URL or 127.0.0.1:5432) and no Docker engine "
        "answers for testcontainers. Start it with `pg_ctlcluster --skip-systemctl-redirect "
        "$(ls /etc/postgresql) main start` or set DATABASE_URL."
    )


def with_vhost(uri: str, vhost: str) -> str:
    parts = urllib.parse.urlparse(uri)
    return urllib.parse.urlunparse(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))


def create_vhost(uri: str) -> str | None:
    """Create a fresh vhost for this test session; None if we may not (shared broker)."""
    parts = urllib.parse.urlparse(uri)
    vhost = f"test-{uuid.uuid4().hex[:10]}"
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    api = f"http://{parts.hostname}:{os.environ.get('RABBIT_MGMT_PORT', '15672')}/api"
    try:
        _mgmt(api, "PUT", f"/vhosts/{vhost}", user, password, {})
        _mgmt(
            api,
            "PUT",
            f"/permissions/{vhost}/{urllib.parse.quote(user)}",
            user,
            password,
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        return vhost
    except OSError:
        pass
    ctl = shutil.which("rabbitmqctl")
    if ctl and parts.hostname in ("127.0.0.1", "localhost"):
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return vhost
    return None


def delete_vhost(uri: str, vhost: str) -> None:
    parts = urllib.parse.urlparse(uri)
    api = f"http://{parts.hostname}:{os.environ.get('RABBIT_MGMT_PORT', '15672')}/api"
    try:
        _mgmt(
            api,
            "DELETE",
            f"/vhosts/{vhost}",
            urllib.parse.unquote(parts.username or "guest"),
            urllib.parse.unquote(parts.password or "guest"),
            None,
        )
    except OSError:
        ctl = shutil.which("rabbitmqctl")
        if ctl:
            subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


def _mgmt(api: str, method: str, path: str, user: str, password: str, body: Any) -> Any:
    request = urllib.request.Request(api + path, method=method)
    token = f"{user}:{password}".encode()
    import base64

    request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, data=data, timeout=5) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def create_database(base_url: str) -> str:
    """A fresh PostgreSQL database for one test; returns its URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    parts = urllib.parse.urlparse(base_url)
    return urllib.parse.urlunparse(parts._replace(path="/" + name))


def drop_database(base_url: str, url: str) -> None:
    import sqlalchemy as sa

    name = urllib.parse.urlparse(url).path.lstrip("/")
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class SmtpServer:
    """A real SMTP server in a subprocess (see shared.testing_smtp); messages as parsed emails."""

    def __init__(self, directory: Any, port: int | None = None) -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SmtpServer:
        import sys

        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared.testing_smtp",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: _port_open(self.host, self.port, 0.2),
            timeout=15,
            what=f"the test SMTP server on port {self.port}",
        )
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._proc = None

    def set_mode(self, mode: str) -> None:
        """ok, tempfail (451) or permfail (550)."""
        (self.directory / ".mode").write_text(mode)

    def messages(self) -> list[Any]:
        import email
        import email.policy

        paths = sorted(self.directory.glob("*.eml"), key=lambda p: int(p.stem))
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths
        ]

    def wait_for_message(
        self,
        predicate: Callable[[Any], bool] = lambda m: True,
        timeout: float = 15.0,
        what: str = "an email",
    ) -> Any:
        return wait_for(
            lambda: next((m for m in self.messages() if predicate(m)), None),
            timeout=timeout,
            what=what,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
