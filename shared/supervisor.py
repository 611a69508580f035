"""`muniportal run`: everything a developer needs, started and stopped together.

Order: RabbitMQ (started locally when installed but stopped), migrations, the
demo city, the local mailbox (when no SMTP_HOST is set), the processor sandbox,
every service under `nameko run`, the gateway; then wait for /api/v1/health.
Ctrl-C stops all of it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "accounts", "billing", "payments", "notifications", "gateway")
GATEWAY_URL = "http://localhost:8000"


def say(message: str) -> None:
    print(f"muniportal: {message}", flush=True)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_rabbitmq(amqp_uri: str) -> None:
    parts = urllib.parse.urlparse(amqp_uri)
    host, port = parts.hostname or "localhost", parts.port or 5672
    if port_open(host, port):
        return
    server = shutil.which("rabbitmq-server")
    if server is None or host not in ("localhost", "127.0.0.1"):
        raise SystemExit(
            f"muniportal: RabbitMQ is not reachable at {host}:{port}; install it "
            "(Debian: apt install rabbitmq-server) or point AMQP_URI at one."
        )
    say("starting the local rabbitmq-server")
    subprocess.run([server, "-detached"], check=False)
    ctl = shutil.which("rabbitmqctl")
    if ctl:
        subprocess.run([ctl, "await_startup"], check=False, timeout=120, stdout=subprocess.DEVNULL)
    for _ in range(120):
        if port_open(host, port):
            return
        time.sleep(1)
    raise SystemExit(f"muniportal: rabbitmq-server did not open {host}:{port} in 2 minutes.")


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class Children:
    """Child processes with their output prefixed; stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()

    @staticmethod
    def _pump(name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        for line in proc.stdout:
            sys.stdout.write(f"{name:>13} | {line}")
        sys.stdout.flush()

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs if proc.poll() is not None]

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_healthy(children: Children, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children.dead():
            return False
        try:
            with urllib.request.urlopen(f"{GATEWAY_URL}/api/v1/health", timeout=3) as response:
                if response.status == 200:
                    return True
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(1)
    return False


def run(load_demo: bool = True) -> int:
    env = dict(os.environ)
    env.setdefault("MUNIPORTAL_VAR", str(ROOT / "var"))
    env.setdefault("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    env.setdefault("PUBLIC_URL", GATEWAY_URL)
    env.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.update(env)
    Path(env["MUNIPORTAL_VAR"]).mkdir(parents=True, exist_ok=True)

    ensure_rabbitmq(env["AMQP_URI"])

    from shared.demo import load_demo_city
    from shared.ops.cli import main as ops

    say("migrating the stores")
    if ops(["migrate"]) != 0:
        return 1
    if load_demo:
        say("loading the demo city (skipped where already loaded)")
        load_demo_city()

    children = Children()
    bin_dir = Path(sys.executable).parent
    if not env.get("SMTP_HOST") and has_module("services.notifications.mailbox"):
        env.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=env.get("MAILBOX_SMTP_PORT", "8025"),
            MAILBOX_URL=env.get("MAILBOX_URL", "http://127.0.0.1:8026"),
        )
        children.start("mailbox", [str(bin_dir / "muniportal"), "mailbox"], env)
    if has_module("services.payments.sandbox"):
        env.setdefault("PROCESSOR_URL", "http://localhost:8100")
        children.start("sandbox", [str(bin_dir / "muniportal"), "processor-sandbox"], env)
    for service in SERVICES:
        children.start(
            service,
            [
                str(bin_dir / "nameko"),
                "run",
                "--config",
                f"services/{service}/config.yaml",
                f"services.{service}.service",
            ],
            env,
        )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if wait_healthy(children):
            say(f"running at {GATEWAY_URL}  (emails: {GATEWAY_URL}/dev/mail; Ctrl-C stops)")
        else:
            say(
                f"not healthy; stopped: {', '.join(children.dead()) or 'none'}; "
                f"see {GATEWAY_URL}/api/v1/health"
            )
        while not children.dead():
            time.sleep(1)
        say(f"{', '.join(children.dead())} stopped; stopping everything")
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        children.stop()
