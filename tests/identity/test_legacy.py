"""Re-registration after a migration: the old portal's users and their account links come back."""

import json
import uuid

import pytest

from shared.errors import Conflict, InvalidInput
from shared.ops import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(identity, monkeypatch, capsys):
    """Run muniportal-ops against the running service's store; returns (status, out, err)."""
    monkeypatch.setenv("IDENTITY_DATABASE_URL", identity.db_url)

    def run(*argv):
        status = cli.main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def _write(tmp_path, lines):
    path = tmp_path / f"legacy-{uuid.uuid4().hex[:6]}.csv"
    path.write_text("user_id,email,account_numbers\n" + "\n".join(lines) + "\n")
    return str(path)


def _tag():
    return uuid.uuid4().hex[:8]


def test_import_is_checked_whole_and_repeatable(identity, ops, tmp_path):
    t = _tag()
    good = _write(
        tmp_path, [f"OldUser{t},old{t}@example.org,00028624;405583", f"x{t},x{t}@ex.org,"]
    )
    status, out, _ = ops("import", "legacy-users", good, "--json")
    assert status == 0
    assert json.loads(out) == {"file": good, "rows": 2, "imported": 2, "updated": 0, "unchanged": 0}
    status, out, _ = ops("import", "legacy-users", good, "--json")
    assert json.loads(out)["unchanged"] == 2

    before = identity.event_count()
    bad = _write(
        tmp_path,
        [f"fine{t},fine{t}@example.org,1", f",nobody{t}@example.org,2", f"y{t},not-an-email,3;<b>"],
    )
    status, _, err = ops("import", "legacy-users", bad)
    assert status == 2
    assert "line 3 user_id: is required" in err and "line 4 email" in err
    assert "line 4 account_numbers" in err and "nothing was imported" in err
    assert identity.event_count() == before


def test_missing_file_is_one_clear_line(ops, tmp_path):
    status, _, err = ops("import", "legacy-users", str(tmp_path / "nope.csv"))
    assert status == 2 and "cannot read" in err and err.count("\n") == 1


def test_verifying_an_address_with_one_legacy_user_restores_its_accounts(identity, ops, tmp_path):
    t = _tag()
    email = f"returning.{t}@example.org"
    ops("import", "legacy-users", _write(tmp_path, [f"ret{t},{email},0028624;000405583"]))
    user_id = f"back{t}"
    identity.register(user_id, email.upper(), "welcome back passphrase")
    verified = identity.rpc.verify_email(identity.link_token(email, "/verify-email"))
    assert verified["restored"] == ["28624", "405583"] and verified["legacy_matches"] == []
    event = identity.bus.wait("LegacyAccountsClaimed", user_id=user_id)
    assert event["data"]["account_numbers"] == ["28624", "405583"]
    assert event["data"]["automatic"] is True
    assert identity.rpc.legacy_matches(user_id) == []
    identity.wait_mail(email, "405583")  # notifications: "your accounts are linked again"


def test_several_legacy_users_with_one_address_are_confirmed_by_the_resident(
    identity, ops, tmp_path
):
    t = _tag()
    email = f"family.{t}@example.org"
    ops(
        "import",
        "legacy-users",
        _write(tmp_path, [f"dad{t},{email},111", f"mom{t},{email},222;333", f"kid{t},{email},444"]),
    )
    user_id = f"fam{t}"
    identity.register(user_id, email, "a family passphrase 9")
    verified = identity.rpc.verify_email(identity.link_token(email, "/verify-email"))
    assert verified["restored"] == []
    matches = {m["user_id"]: m for m in verified["legacy_matches"]}
    assert set(matches) == {f"dad{t}", f"mom{t}", f"kid{t}"}
    assert identity.rpc.legacy_matches(user_id) == verified["legacy_matches"]

    with pytest.raises(InvalidInput) as unknown:
        identity.rpc.claim_legacy(user_id, ["lg-0000000000000000"])
    assert "legacy_ids" in unknown.value.errors
    mine = [matches[f"dad{t}"]["legacy_id"], matches[f"mom{t}"]["legacy_id"]]
    assert identity.rpc.claim_legacy(user_id, mine) == {"restored": ["111", "222", "333"]}
    event = identity.bus.wait("LegacyAccountsClaimed", user_id=user_id)
    assert sorted(event["data"]["legacy_ids"]) == sorted(mine)
    assert event["data"]["automatic"] is False
    assert identity.rpc.legacy_matches(user_id) == []  # the kid's was declined: "not mine"


def test_a_legacy_user_id_is_kept_for_the_owner_of_its_address(identity, ops, tmp_path):
    t = _tag()
    email = f"keeper.{t}@example.org"
    ops("import", "legacy-users", _write(tmp_path, [f"Keeper{t},{email},555"]))
    _, stranger = identity.new_user()
    with pytest.raises(Conflict) as taken:
        identity.register(f"keeper{t}", stranger, "someone else entirely")
    assert taken.value.code == "user_id_taken"
    identity.register(f"KEEPER{t}", email, "it is really me 2024")
    verified = identity.rpc.verify_email(identity.link_token(email, "/verify-email"))
    assert verified["restored"] == ["555"]


def test_an_external_sign_up_with_a_legacy_address_restores_it_too(identity, ops, tmp_path):
    import urllib.parse as up

    import requests

    t = _tag()
    email = f"ext.{t}@example.org"
    ops("import", "legacy-users", _write(tmp_path, [f"extold{t},{email},777"]))
    requests.put(
        f"{identity.oidc_issuer}/users/s{t}",
        json={"email": email, "email_verified": True},
        timeout=5,
    )
    url = identity.rpc.oidc_start("mock", "https://portal.test/cb")["authorization_url"]
    location = requests.post(url, data={"sub": f"s{t}"}, allow_redirects=False, timeout=5)
    query = dict(up.parse_qsl(up.urlparse(location.headers["Location"]).query))
    result = identity.rpc.oidc_complete("mock", query["code"], query["state"], identity.ip())
    assert result["restored"] == ["777"]
