"""Sign-in answer times: a wrong user must take about as long as a wrong password.

Runs the identity handlers on a real store (SQLite, then PostgreSQL) with the
production argon2id cost (OWASP: t=2, m=19 MiB, p=1), interleaving the cases so the
machine's noise hits them alike:

* wrong password for a known user ID (the reference);
* unknown user ID; unknown email address;
* right password (a new session);
* authenticate(token): the gateway's hot path, a read, and the once-a-minute write.

The figure that matters is the ratio unknown / wrong-password (issue 3: "about
the same time"); the absolute times depend on the machine.
"""

from __future__ import annotations

import datetime as dt
import uuid

from bench.common import pg_database, show, sqlite_database, summary_ms, timed
from services.identity import handlers
from services.identity.handlers import Identity
from services.identity.projections import PROJECTIONS
from services.identity.security import PasswordHasher
from services.identity.settings import Limit, Settings
from shared.errors import MuniportalError
from shared.uow import ServiceStore

ROUNDS = 20
USERS = 8
PASSWORD = "quiet river lantern 42"


class _Mailer:
    def send(self, message: object) -> None:
        self.last = message


class _Clock:
    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def _ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


def _attempt(ctx: Identity, login: str, password: str) -> float:
    def run() -> None:
        try:
            handlers.sign_in(
                ctx, login=login, password=password, remember_me=False, client_ip=_ip()
            )
        except MuniportalError:
            pass

    return timed(run)[1]


def _run(url: str) -> dict[str, object]:
    store = ServiceStore("identity", url, PROJECTIONS)
    store.migrate()
    mailer = _Mailer()
    clock = _Clock()
    ctx = Identity(
        store=store,
        settings=Settings(captcha=False, signin_per_login=Limit(10_000, 60)),
        hasher=PasswordHasher(),  # production cost
        mailer=mailer,
        clock=clock,
    )
    users = []
    for n in range(USERS):
        user_id = f"bench{n}{uuid.uuid4().hex[:6]}"
        handlers.register(
            ctx, user_id=user_id, email=f"{user_id}@example.org", password=PASSWORD, client_ip=_ip()
        )
        handlers.verify_email(ctx, token=mailer.last.secret_url.split("token=")[1])
        users.append(user_id)

    samples: dict[str, list[float]] = {
        "wrong_password": [],
        "unknown_user_id": [],
        "unknown_email": [],
        "right_password": [],
    }
    token = None
    for r in range(ROUNDS):
        user = users[r % USERS]  # at most 3 failures per user: nobody gets locked
        samples["wrong_password"].append(_attempt(ctx, user, "not the password 1"))
        samples["unknown_user_id"].append(_attempt(ctx, f"ghost{uuid.uuid4().hex[:8]}", PASSWORD))
        samples["unknown_email"].append(
            _attempt(ctx, f"ghost.{uuid.uuid4().hex[:8]}@example.org", PASSWORD)
        )
        started = timed(
            lambda u=user: handlers.sign_in(
                ctx, login=u, password=PASSWORD, remember_me=False, client_ip=_ip()
            )
        )
        samples["right_password"].append(started[1])
        token = started[0]["token"]

    reads = [timed(handlers.authenticate, ctx, token=token)[1] for _ in range(200)]
    touches = []
    for _ in range(50):
        clock.offset += dt.timedelta(seconds=61)
        touches.append(timed(handlers.authenticate, ctx, token=token)[1])
    store.dispose()

    figures: dict[str, object] = {k: summary_ms(v) for k, v in samples.items()}
    reference = figures["wrong_password"]["p50_ms"]  # type: ignore[index]
    for case in ("unknown_user_id", "unknown_email"):
        ratio = round(figures[case]["p50_ms"] / reference, 3)  # type: ignore[index]
        figures[f"{case}_over_wrong_password_p50"] = ratio
    figures["authenticate_read"] = summary_ms(reads)
    figures["authenticate_with_touch"] = summary_ms(touches)
    for key, value in figures.items():
        show(key, value)
    return figures


def main() -> dict[str, object]:
    out = {}
    print("  SQLite", flush=True)
    with sqlite_database() as url:
        out["sqlite"] = _run(url)
    print("  PostgreSQL", flush=True)
    with pg_database() as url:
        out["postgresql"] = _run(url)
    return out
