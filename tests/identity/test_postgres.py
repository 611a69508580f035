"""The identity service on PostgreSQL, with requests racing each other (as several replicas do)."""

import eventlet
import pytest

from shared.errors import Conflict, Forbidden, MuniportalError, Unauthorized
from shared.rpc import rpc_client

pytestmark = pytest.mark.integration

IDENTITY_DB = "postgresql"
GOOD = "quiet river lantern 42"


def _race(amqp_uri, calls):
    """Run each call on its own RPC connection at the same moment; results or error codes."""

    def run(call):
        with rpc_client(amqp_uri, timeout=15) as cluster:
            try:
                return call(cluster.identity)
            except MuniportalError as exc:
                return exc.code

    return list(eventlet.GreenPool(len(calls)).imap(run, calls))


def test_register_verify_sign_in_and_out(identity):
    user_id, email, password = identity.register_verified("pg")
    session = identity.sign_in(email, password, remember_me=True)
    assert identity.rpc.authenticate(session["token"])["user_id"] == user_id.lower()
    identity.rpc.sign_out(session["token"])
    with pytest.raises(Unauthorized):
        identity.rpc.authenticate(session["token"])


def test_one_of_two_racing_registrations_of_a_user_id_wins(identity, amqp_uri):
    user_id, _ = identity.new_user("race")
    calls = [
        lambda rpc, n=n: rpc.register(
            {
                "user_id": user_id.upper() if n % 2 else user_id,
                "email": f"racer{n}.{user_id}@example.org",
                "password": GOOD,
                "client_ip": identity.ip(),
            }
        )["status"]
        for n in range(4)
    ]
    outcomes = _race(amqp_uri, calls)
    assert sorted(outcomes) == ["pending_verification"] + ["user_id_taken"] * 3


def test_two_accounts_verifying_one_address_at_once_cannot_both_own_it(identity, amqp_uri):
    _, email = identity.new_user("shared")
    for prefix in ("one", "two"):
        identity.register(identity.new_user(prefix)[0], email, GOOD)
    identity.wait_mail(email, "/verify-email", after=1)
    tokens = identity.link_tokens(email, "/verify-email")
    assert len(tokens) == 2
    outcomes = _race(amqp_uri, [lambda rpc, t=t: rpc.verify_email(t)["user_id"] for t in tokens])
    assert sorted(o == "email_taken" for o in outcomes) == [False, True]
    owner = next(o for o in outcomes if o != "email_taken")
    assert identity.sign_in(email, GOOD)["user"]["user_id"] == owner


def test_racing_failed_sign_ins_are_all_counted_and_lock(identity, amqp_uri):
    user_id, _, password = identity.register_verified("pglock")
    calls = [
        lambda rpc: rpc.sign_in(_payload(identity, user_id, "wrong guess 12")) for _ in range(10)
    ]
    outcomes = _race(amqp_uri, calls)
    assert set(outcomes) <= {"invalid_credentials", "account_locked"}
    with pytest.raises(Forbidden) as locked:
        identity.sign_in(user_id, password)
    assert locked.value.code == "account_locked"


def _payload(identity, login, password):
    return {"login": login, "password": password, "client_ip": identity.ip()}


def test_conflicts_are_clear_errors(identity):
    user_id, email = identity.new_user("dup")
    identity.register(user_id, email, GOOD)
    with pytest.raises(Conflict):
        identity.register(user_id, email, GOOD)
