"""Handlers on a real store with a clock we move: every time limit, to the minute.

The mailer is a fake of our own Mailer protocol; everything else is real (the
store, its projections and state tables, argon2id).
"""

import datetime as dt
import hashlib
import json

import eventlet
import pytest
import sqlalchemy as sa

from services.identity import handlers, state, throttle
from services.identity.handlers import Identity
from services.identity.projections import PROJECTIONS, metadata
from services.identity.security import PasswordHasher
from services.identity.settings import Limit, Settings
from shared.errors import Forbidden, InvalidInput, Unauthorized
from shared.uow import ServiceStore
from tests.identity.conftest import FakeMailer

PASSWORD = "quiet river lantern 42"
START = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class CountingHasher(PasswordHasher):
    """The real hasher, counting which hashes it verifies against."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=1024, parallelism=1)
        self.verified: list[str | None] = []

    def verify(self, password_hash, password):
        self.verified.append(password_hash)
        return super().verify(password_hash, password)


def _identity(url, **settings):
    settings.setdefault("signin_per_login", Limit(100, 60))  # tested in test_challenge_and_...
    store = ServiceStore("identity", url, PROJECTIONS, pool_size=4)
    store.migrate()
    return Identity(
        store=store,
        settings=Settings(captcha=False, **settings),
        hasher=CountingHasher(),
        mailer=FakeMailer(),
        clock=Clock(),
    )


@pytest.fixture
def ctx(sqlite_url):
    identity = _identity(sqlite_url)
    yield identity
    identity.store.dispose()


def _register(ctx, user_id="ana", email="ana@example.org", verify=True):
    handlers.register(ctx, user_id=user_id, email=email, password=PASSWORD, client_ip="10.0.0.1")
    if verify:
        handlers.verify_email(ctx, token=ctx.mailer.token(email, "verify_email"))


def _sign_in(ctx, login="ana", password=PASSWORD, remember_me=False):
    return handlers.sign_in(
        ctx, login=login, password=password, remember_me=remember_me, client_ip="10.0.0.2"
    )


def test_verification_links_last_24_hours(ctx):
    _register(ctx, "ana", "ana@example.org", verify=False)
    _register(ctx, "bob", "bob@example.org", verify=False)
    ctx.clock.advance(hours=23, minutes=59)
    handlers.verify_email(ctx, token=ctx.mailer.token("ana@example.org"))
    ctx.clock.advance(minutes=1)
    with pytest.raises(InvalidInput) as expired:
        handlers.verify_email(ctx, token=ctx.mailer.token("bob@example.org"))
    assert expired.value.code == "token_expired"


def test_reset_links_last_one_hour(ctx):
    _register(ctx)
    handlers.request_password_reset(ctx, email="ana@example.org", client_ip=None)
    token = ctx.mailer.token(kind="reset_password")
    ctx.clock.advance(minutes=60)
    with pytest.raises(InvalidInput) as expired:
        handlers.reset_password(ctx, token=token, new_password="new passphrase 123")
    assert expired.value.code == "token_expired"
    handlers.request_password_reset(ctx, email="ana@example.org", client_ip=None)
    ctx.clock.advance(minutes=59)
    handlers.reset_password(
        ctx, token=ctx.mailer.token(kind="reset_password"), new_password="new passphrase 123"
    )


def test_unlock_links_last_24_hours(ctx):
    _register(ctx)
    for _ in range(10):
        with pytest.raises((Unauthorized, Forbidden)):
            _sign_in(ctx, password="wrong password 1")
    token = ctx.mailer.token(kind="unlock_account")
    ctx.clock.advance(hours=24)
    with pytest.raises(InvalidInput):
        handlers.unlock(ctx, token=token)


def test_sessions_end_after_30_idle_minutes(ctx):
    _register(ctx)
    token = _sign_in(ctx)["token"]
    for _ in range(5):  # active for 2.5 hours: each visit moves the idle deadline
        ctx.clock.advance(minutes=29)
        handlers.authenticate(ctx, token=token)
    ctx.clock.advance(minutes=30)
    with pytest.raises(Unauthorized) as expired:
        handlers.authenticate(ctx, token=token)
    assert expired.value.code == "session_expired"
    ended = [e for e in ctx.store.events.read_stream("user-ana") if e.type == "SessionEnded"]
    assert [e.data["reason"] for e in ended] == ["expired"]


def test_sessions_end_after_12_hours_however_active(ctx):
    _register(ctx)
    token = _sign_in(ctx)["token"]
    for _ in range(24):  # a visit every 29 minutes, for 11 h 36 min
        ctx.clock.advance(minutes=29)
        handlers.authenticate(ctx, token=token)
    ctx.clock.advance(minutes=23)  # 11 h 59 min
    handlers.authenticate(ctx, token=token)
    ctx.clock.advance(minutes=1)  # 12 h
    with pytest.raises(Unauthorized) as expired:
        handlers.authenticate(ctx, token=token)
    assert expired.value.code == "session_expired"


def test_remember_me_lasts_30_days_without_an_idle_limit(ctx):
    _register(ctx)
    token = _sign_in(ctx, remember_me=True)["token"]
    ctx.clock.advance(days=29, hours=23)
    assert handlers.authenticate(ctx, token=token)["remember_me"] is True
    ctx.clock.advance(hours=1)
    with pytest.raises(Unauthorized):
        handlers.authenticate(ctx, token=token)


def _last_seen(ctx):
    with ctx.store.read() as conn:
        return state.utc(conn.execute(sa.select(state.session_tokens.c.last_seen_at)).scalar())


def test_authenticate_writes_at_most_once_a_minute(ctx):
    _register(ctx)
    token = _sign_in(ctx)["token"]
    signed_in = _last_seen(ctx)
    ctx.clock.advance(seconds=59)
    handlers.authenticate(ctx, token=token)
    assert _last_seen(ctx) == signed_in
    ctx.clock.advance(seconds=1)
    handlers.authenticate(ctx, token=token)
    assert _last_seen(ctx) == ctx.clock.now
    head = ctx.store.events.head_position()
    handlers.authenticate(ctx, token=token)
    assert ctx.store.events.head_position() == head  # no event per request


def test_housekeeping_ends_expired_sessions_and_drops_spent_state(ctx):
    _register(ctx)
    _sign_in(ctx)
    kept = _sign_in(ctx, remember_me=True)
    handlers.new_challenge(ctx)
    ctx.clock.advance(hours=13)
    done = handlers.purge(ctx)
    assert done["sessions_expired"] == 1 and done["challenges"] == 1
    assert handlers.authenticate(ctx, token=kept["token"])["user_id"] == "ana"
    ctx.clock.advance(days=2)
    assert handlers.purge(ctx)["secret_tokens"] == 1  # the used verification link


def test_unknown_users_are_checked_against_a_dummy_hash(ctx):
    _register(ctx)
    for login in ("ana", "nobody", "nobody@example.org"):
        before = len(ctx.hasher.verified)
        with pytest.raises(Unauthorized):
            _sign_in(ctx, login=login, password="wrong password 1")
        assert len(ctx.hasher.verified) == before + 1  # one argon2 verification each
    real, unknown, unknown_email = ctx.hasher.verified[-3:]
    assert real.startswith("$argon2id$") and unknown is None and unknown_email is None


def test_default_password_hashes_are_argon2id_with_owasp_parameters():
    hashed = PasswordHasher().hash("quiet river lantern 42")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hashes_of_an_older_cost_are_upgraded_at_sign_in(ctx):
    _register(ctx)
    ctx.hasher = CountingHasher()
    ctx.hasher._hasher = type(ctx.hasher._hasher)(time_cost=2, memory_cost=2048, parallelism=1)
    _sign_in(ctx)
    with ctx.store.read() as conn:
        stored = conn.execute(sa.select(state.credentials.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    _sign_in(ctx)


def _everything_stored(ctx) -> str:
    """Every row of every table of the identity store, as text."""
    chunks = []
    with ctx.store.read() as conn:
        for table in metadata.sorted_tables:
            chunks += [json.dumps(list(row), default=str) for row in conn.execute(sa.select(table))]
        chunks += [
            json.dumps(list(row), default=str)
            for row in conn.execute(sa.text("SELECT * FROM events"))
        ]
        chunks += [
            json.dumps(list(row), default=str)
            for row in conn.execute(sa.text("SELECT * FROM inbox"))
        ]
    return "\n".join(chunks)


def test_no_raw_token_is_stored_anywhere_only_its_hash(ctx):
    _register(ctx)
    session = _sign_in(ctx)
    handlers.request_password_reset(ctx, email="ana@example.org", client_ip=None)
    for _ in range(10):
        with pytest.raises((Unauthorized, Forbidden)):
            _sign_in(ctx, password="wrong password 1")
    raw = [m.secret_url.split("token=")[1] for m in ctx.mailer.sent] + [session["token"]]
    assert len(raw) == 4 and all(len(t) >= 43 for t in raw)
    stored = _everything_stored(ctx)
    assert "ana@example.org" in stored  # the dump does hold the data
    for token in raw:
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored


@pytest.mark.parametrize("link", ["verify", "reset"])
def test_a_link_used_four_times_at_once_works_once(db_url, link):
    ctx = _identity(db_url)
    try:
        _register(ctx, verify=link == "reset")
        if link == "reset":
            handlers.request_password_reset(ctx, email="ana@example.org", client_ip=None)
        token = ctx.mailer.token(kind="reset_password" if link == "reset" else "verify_email")

        def attempt(n):
            try:
                if link == "reset":
                    handlers.reset_password(ctx, token=token, new_password=f"new passphrase {n}x")
                else:
                    handlers.verify_email(ctx, token=token)
                return "ok"
            except InvalidInput as exc:
                return exc.code

        outcomes = sorted(eventlet.GreenPool(4).imap(attempt, range(4)))
        assert outcomes == ["ok", "token_used", "token_used", "token_used"]
        if link == "reset":
            resets = [
                e for e in ctx.store.events.read_stream("user-ana") if e.type == "PasswordReset"
            ]
            assert len(resets) == 1
    finally:
        ctx.store.dispose()


def test_throttle_counts_and_windows_on_both_backends(db_url):
    ctx = _identity(db_url)
    try:
        limit, now = Limit(3, 60), START
        key = throttle.key("test", "10.0.0.9")
        with ctx.store.events.transaction() as conn:
            counts = [throttle.hit(conn, key, limit, now) for _ in range(4)]
            assert counts == [1, 2, 3, 4]
            assert throttle.current(conn, key, now + dt.timedelta(seconds=20)) == (4, 40)
            assert throttle.hit(conn, key, limit, now + dt.timedelta(seconds=60)) == 1
            assert throttle.current(conn, key, now + dt.timedelta(seconds=121)) == (0, 0)
        assert key.startswith("test:") and "10.0.0.9" not in key

        def hit(_):
            with ctx.store.events.transaction() as conn:
                return throttle.hit(conn, throttle.key("race", "x"), limit, now)

        assert sorted(eventlet.GreenPool(6).imap(hit, range(6))) == [1, 2, 3, 4, 5, 6]
    finally:
        ctx.store.dispose()


def test_challenges_expire(ctx):
    from services.identity.handlers.registration import _challenge_problem

    challenge = handlers.new_challenge(ctx)
    with ctx.store.read() as conn:
        answers = conn.execute(sa.select(state.challenges.c.answers)).scalar()
    ctx.clock.advance(minutes=11)
    assert "expired" in _challenge_problem(ctx, challenge["challenge_id"], answers[0])


def test_rebuilding_projections_keeps_credentials_and_sessions(ctx):
    from shared.projection import rebuild

    _register(ctx)
    token = _sign_in(ctx)["token"]
    for cls in PROJECTIONS:
        rebuild(ctx.store.events, cls)
    assert handlers.get_profile(ctx, user_id="ana")["email_verified"] is True
    assert handlers.authenticate(ctx, token=token)["user_id"] == "ana"
    assert _sign_in(ctx)["user"]["last_successful_login"] is not None


def test_a_challenge_answered_twice_at_once_counts_once(db_url):
    from services.identity.handlers.registration import _challenge_problem

    ctx = _identity(db_url)
    try:
        challenge = handlers.new_challenge(ctx)
        with ctx.store.read() as conn:
            answer = conn.execute(sa.select(state.challenges.c.answers)).scalar()[0]
        outcomes = list(
            eventlet.GreenPool(4).imap(
                lambda _: _challenge_problem(ctx, challenge["challenge_id"], answer), range(4)
            )
        )
        assert outcomes.count(None) == 1
    finally:
        ctx.store.dispose()


def test_the_demo_city_resident_signs_in_and_loading_twice_changes_nothing(sqlite_url):
    from services.identity import demo

    ctx = _identity(sqlite_url)
    try:
        first = demo.load(ctx.store)
        head = ctx.store.events.head_position()
        second = demo.load(ctx.store)
        assert first["resident_created"] is True and first["legacy_users"]["imported"] == 1
        assert second == {
            "resident_created": False,
            "legacy_users": {"imported": 0, "updated": 0, "unchanged": 1},
        }
        assert ctx.store.events.head_position() == head
        user_id, _, password = demo.RESIDENT
        assert _sign_in(ctx, login=user_id, password=password)["user"]["email_verified"]
    finally:
        ctx.store.dispose()
