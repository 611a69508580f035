"""The gateway's pure parts, without a stack: settings, tokens, throttles, caches, headers."""

from __future__ import annotations

import pytest

from services.gateway import security
from services.gateway.cache import ReadCache, SessionCache
from services.gateway.settings import Limit, Settings, SettingsError
from services.gateway.throttle import Throttle, Throttled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_production_needs_a_secret_and_gets_hsts():
    with pytest.raises(SettingsError, match="GATEWAY_SECRET"):
        Settings.from_config({"ENV": "production"})
    settings = Settings.from_config({"ENV": "production", "GATEWAY_SECRET": "s" * 32})
    assert settings.production
    assert "Strict-Transport-Security" in security.security_headers(True)
    assert "Strict-Transport-Security" not in security.security_headers(False)


def test_throttle_settings_name_the_bad_one():
    with pytest.raises(SettingsError, match="THROTTLE_SIGNIN"):
        Settings.from_config({"THROTTLE_SIGNIN": "lots"})
    assert Limit.parse("X", "3/60") == Limit(3, 60.0)


def test_throttle_window_fills_and_reopens():
    clock = Clock()
    throttle = Throttle({"signin": Limit(2, 60)}, clock=clock)
    throttle.hit("signin", "10.0.0.1")
    throttle.hit("signin", "10.0.0.1")
    with pytest.raises(Throttled) as caught:
        throttle.hit("signin", "10.0.0.1")
    assert caught.value.retry_after == 60
    throttle.hit("signin", "10.0.0.2")  # another address has its own window
    clock.now += 61
    throttle.hit("signin", "10.0.0.1")


def test_csrf_tokens_bind_to_one_credential():
    token = security.csrf_token(b"k", "session-a")
    assert security.csrf_ok(b"k", "session-a", token)
    assert not security.csrf_ok(b"k", "session-b", token)
    assert not security.csrf_ok(b"other", "session-a", token)
    assert not security.csrf_ok(b"k", "session-a", None)


def test_guest_tokens_cannot_be_forged_or_widened():
    guest = security.with_account(security.new_guest(), "28624")
    token = security.sign_guest(b"k", guest)
    assert security.read_guest(b"k", token)["a"] == ["28624"]
    raw, mac = token.rsplit(".", 1)
    widened = security.sign_guest(b"attacker", {"g": guest["g"], "a": ["28624", "1"]})
    assert security.read_guest(b"k", widened) is None
    assert security.read_guest(b"k", raw + ".x" + mac) is None
    assert security.read_guest(b"k", "garbage") is None
    for n in range(10):
        guest = security.with_account(guest, str(n))
    assert len(guest["a"]) == security.GUEST_ACCOUNTS_MAX


def test_request_ids_and_forwarded_addresses():
    assert security.request_id("abc-12345") == "abc-12345"
    assert security.request_id("bad id with spaces") != "bad id with spaces"
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.1.2.3, 127.0.0.1"}
    assert security.client_ip(environ, trust_forwarded_for=False) == "127.0.0.1"
    assert security.client_ip(environ, trust_forwarded_for=True) == "10.1.2.3"
    spoof = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "<script>"}
    assert security.client_ip(spoof, trust_forwarded_for=True) == "127.0.0.1"


def test_read_cache_hits_invalidates_and_stays_dirty():
    clock = Clock()
    cache = ReadCache(ttl=30, dirty_seconds=3, clock=clock)
    loads = []

    def load():
        loads.append(1)
        return {"bills": [{"bill_number": "98465"}], "n": len(loads)}

    assert cache.get("a:1", "bills", load)["n"] == 1
    assert cache.get("a:1", "bills", load)["n"] == 1
    assert cache.scopes_of_bills(["98465"]) == {"a:1"}
    cache.invalidate("a:1")
    assert cache.get("a:1", "bills", load)["n"] == 2
    cache.mark_dirty("a:1")
    assert cache.get("a:1", "bills", load)["n"] == 3
    assert cache.get("a:1", "bills", load)["n"] == 4  # dirty: not kept
    clock.now += 4
    assert cache.get("a:1", "bills", load)["n"] == 5
    assert cache.get("a:1", "bills", load)["n"] == 5
    clock.now += 31
    assert cache.get("a:1", "bills", load)["n"] == 6


def test_a_read_racing_an_invalidation_is_not_kept():
    cache = ReadCache(ttl=30, dirty_seconds=3, clock=Clock())

    def stale():
        cache.invalidate("a:1")  # the event arrives while the read is in flight
        return {"stale": True}

    assert cache.get("a:1", "bills", stale) == {"stale": True}
    assert cache.get("a:1", "bills", lambda: {"fresh": True}) == {"fresh": True}


def test_session_cache_drops_by_session_and_user():
    cache = SessionCache(ttl=10, clock=Clock())
    cache.put("k1", {"user_id": "ana", "session_id": "s1"})
    cache.put("k2", {"user_id": "ana", "session_id": "s2"})
    cache.drop_session("s1")
    assert cache.get("k1") is None and cache.get("k2")
    cache.drop_user("ana")
    assert cache.get("k2") is None


def test_static_files_have_their_type_and_cache_and_pages_get_the_shell(tmp_path):
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from services.gateway import static
    from services.gateway.problems import Problem

    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "static" / "js" / "app.js").write_text("export const x = 1;\n")
    (tmp_path / "index.html").write_text("<!DOCTYPE html><title>shell</title>")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    settings = Settings.from_config({"WEB_DIR": str(tmp_path)})

    def get(path, **headers):
        return static.serve(
            Request(EnvironBuilder(path=path, headers=headers).get_environ()), settings
        )

    js = get("/static/js/app.js")
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert js.headers["Cache-Control"] == "public, max-age=3600"
    assert get("/static/js/app.js", **{"If-None-Match": js.headers["ETag"]}).status_code == 304
    assert get("/favicon.svg").headers["Content-Type"] == "image/svg+xml"
    shell = get("/accounts/28624/bills")
    assert b"shell" in shell.get_data() and shell.headers["Cache-Control"] == "no-cache"
    assert b"root:" not in get("/static/../../etc/passwd").get_data()  # normalized: the shell
    for missing in ("/static/js/none.js", "/static/../../etc/hosts.txt", "/x.png"):
        with pytest.raises(Problem) as caught:
            get(missing)
        assert caught.value.status == 404


def test_dev_mail_is_never_served_in_production():
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from services.gateway import devmail
    from services.gateway.problems import Problem

    settings = Settings.from_config({"ENV": "production", "GATEWAY_SECRET": "s" * 32})
    request = Request(EnvironBuilder(path="/dev/mail").get_environ())
    with pytest.raises(Problem) as caught:
        devmail.serve(request, settings)
    assert caught.value.status == 404
    down = Settings.from_config({"MAILBOX_URL": "http://127.0.0.1:9"})
    page = devmail.serve(request, down)
    assert page.status_code == 200 and "not answering" in page.get_data(as_text=True)


def test_concurrent_misses_share_one_load():
    import eventlet

    from services.gateway.cache import Flights

    flights = Flights()
    calls = []

    def load():
        calls.append(1)
        eventlet.sleep(0.05)
        return {"n": len(calls)}

    threads = [eventlet.spawn(flights.run, "k", load) for _ in range(20)]
    assert [t.wait() for t in threads] == [{"n": 1}] * 20
    assert len(calls) == 1

    def fail():
        eventlet.sleep(0.01)
        raise RuntimeError("billing down")

    failing = [eventlet.spawn(flights.run, "k", fail) for _ in range(3)]
    for thread in failing:
        with pytest.raises(RuntimeError):
            thread.wait()
    assert flights.run("k", lambda: "fresh") == "fresh"
