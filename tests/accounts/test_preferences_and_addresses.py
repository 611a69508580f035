"""Preferences per account, address change requests, customer information."""

import datetime as dt

import pytest

from services.accounts import handlers
from shared.errors import Conflict, InvalidInput
from shared.ops import cli
from tests.accounts.conftest import load_rows
from tests.accounts.helpers import service_rows, stored_events, unique_user

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()


def new_address(**changes):
    payload = {
        "address_line1": "4 Valley Ave",
        "address_line2": "Apt 2",
        "city": "Pleasanton",
        "state": "ca",
        "zip": "945881234",
        "effective_date": TODAY.isoformat(),
    }
    payload.update(changes)
    return payload


@pytest.fixture
def linked(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    cluster.accounts.link_account(
        user, {"type": "utility", "account_number": account, "customer_id": customer}
    )
    return account, customer, user


def events_of(store, stream_id, *types):
    return [e for e in stored_events(store, *types) if e.stream_id == stream_id]


def test_preferences_are_recorded_as_events_once(accounts_service, cluster, linked):
    account, customer, user = linked
    prefs = cluster.accounts.set_preferences(user, account, True, True)
    assert prefs == {"paperless": True, "email_notices": True}
    cluster.accounts.set_preferences(user, account, True, True)
    cluster.accounts.set_preferences(user, account, True, False)
    changes = events_of(accounts_service.store, f"preferences-{account}", "PreferencesChanged")
    assert [e.data for e in changes] == [
        {
            "account_number": account,
            "customer_id": customer,
            "paperless": True,
            "email_notices": True,
            "user_id": user,
        },
        {
            "account_number": account,
            "customer_id": customer,
            "paperless": True,
            "email_notices": False,
            "user_id": user,
        },
    ]
    assert changes[0].actor == f"user:{user}"
    shown = cluster.accounts.get_preferences(account)
    assert (shown["paperless"], shown["email_notices"], shown["chosen"]) == (True, False, True)


def test_preferences_must_be_true_or_false(cluster, linked):
    account, _, user = linked
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.set_preferences(user, account, "yes", None)
    assert caught.value.errors == {
        "paperless": "must be true or false",
        "email_notices": "must be true or false",
    }


def test_customer_information_reads_like_the_naperville_page(accounts_service, cluster):
    customer = accounts_service.add_customer("EXAMPLE CUSTOMER")
    info = cluster.accounts.customer_info(customer)
    assert info["customer_id"] == customer
    assert (info["name"], info["address"], info["city_state_zip"], info["kind"]) == (
        "EXAMPLE CUSTOMER",
        "123 MAIN ST",
        "ANY TOWN, IL 00000",
        "general",
    )


def test_an_approved_request_changes_the_address_of_record(accounts_service, cluster, linked):
    account, customer, user = linked
    request = cluster.accounts.request_address_change(user, account, new_address())
    assert request["status"] == "pending" and request["request_id"].startswith("AR-")
    assert request["new_address"]["text"] == "4 VALLEY AVE, APT 2, PLEASANTON, CA 94588-1234"
    assert request["current_address"]["line1"] == "123 MAIN STREET"
    [asked] = events_of(accounts_service.store, f"customer-{customer}", "AddressChangeRequested")
    assert asked.actor == f"user:{user}"
    assert asked.data["user_id"] == user and asked.data["account_number"] == account
    assert asked.data["customer_name"] == "CITY OF PLEASANTON"

    decided = handlers.decide_address_request(
        accounts_service.store, request_id=request["request_id"], approve=True, staff="kim"
    )
    assert decided["status"] == "approved" and decided["decided_by"] == "staff:kim"
    approved, changed = events_of(
        accounts_service.store,
        f"customer-{customer}",
        "AddressChangeApproved",
        "CustomerAddressChanged",
    )
    assert approved.actor == "staff:kim" and approved.data["user_id"] == user
    assert changed.data["mailing_address"]["line1"] == "4 VALLEY AVE"
    info = cluster.accounts.customer_info(customer)
    assert (info["address"], info["city_state_zip"]) == (
        "4 VALLEY AVE, APT 2",
        "PLEASANTON, CA 94588-1234",
    )
    details = cluster.accounts.account_details(account, user)
    assert details["mailing_address"]["line1"] == "4 VALLEY AVE"
    assert cluster.accounts.address_requests(account, user)[0]["status"] == "approved"


def test_a_future_change_takes_effect_on_its_date(accounts_service, cluster, linked):
    account, customer, user = linked
    later = (TODAY + dt.timedelta(days=20)).isoformat()
    request = cluster.accounts.request_address_change(
        user, account, new_address(effective_date=later)
    )
    handlers.decide_address_request(
        accounts_service.store, request_id=request["request_id"], approve=True, staff="kim"
    )
    info = cluster.accounts.customer_info(customer, user)
    assert info["address"] == "123 MAIN STREET"
    assert info["upcoming_mailing_address"]["line1"] == "4 VALLEY AVE"
    assert info["upcoming_mailing_address"]["effective_date"] == later


def test_a_rejected_request_says_why_and_changes_nothing(accounts_service, cluster, linked):
    account, customer, user = linked
    request = cluster.accounts.request_address_change(user, account, new_address())
    handlers.decide_address_request(
        accounts_service.store,
        request_id=request["request_id"],
        approve=False,
        staff="kim",
        reason="Please call us to confirm ownership.",
    )
    [rejected] = events_of(accounts_service.store, f"customer-{customer}", "AddressChangeRejected")
    assert rejected.data["reason"] == "Please call us to confirm ownership."
    assert cluster.accounts.customer_info(customer)["address"] == "123 MAIN STREET"
    with pytest.raises(Conflict):
        handlers.decide_address_request(
            accounts_service.store, request_id=request["request_id"], approve=True, staff="kim"
        )


def test_one_pending_request_at_a_time_and_a_resident_may_cancel(accounts_service, cluster, linked):
    account, customer, user = linked
    first = cluster.accounts.request_address_change(user, account, new_address())
    with pytest.raises(Conflict) as caught:
        cluster.accounts.request_address_change(user, account, new_address(city="Dublin"))
    assert caught.value.extra["request_id"] == first["request_id"]
    cancelled = cluster.accounts.cancel_address_request(user, first["request_id"])
    assert cancelled["status"] == "cancelled"
    second = cluster.accounts.request_address_change(user, account, new_address(city="Dublin"))
    assert second["status"] == "pending"
    assert [r["status"] for r in cluster.accounts.address_requests(account)] == [
        "pending",
        "cancelled",
    ]


def test_a_bad_address_names_each_field(cluster, linked):
    account, _, user = linked
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.request_address_change(
            user, account, new_address(city=" ", zip="9456", effective_date="soon")
        )
    assert set(caught.value.errors) == {"city", "zip", "effective_date"}
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.request_address_change(user, account, {**new_address(), "country": "X"})
    assert "country" in caught.value.errors


def test_a_reimport_does_not_undo_an_approved_change(sqlite_store):
    load_rows(sqlite_store, service_rows("405583", "28624"))
    user = unique_user()
    handlers.link_verified(sqlite_store, user_id=user, kind="utility", number="28624", via="staff")
    request = handlers.request_address_change(
        sqlite_store, user_id=user, account_number="28624", payload=new_address()
    )
    handlers.decide_address_request(
        sqlite_store, request_id=request["request_id"], approve=True, staff="kim"
    )
    result = load_rows(sqlite_store, service_rows("405583", "28624"))
    assert result["customers"]["unchanged"] == 1
    with sqlite_store.read() as conn:
        from services.accounts import queries

        assert queries.address_of_record(conn, "405583", TODAY)["line1"] == "4 VALLEY AVE"


def test_staff_work_the_requests_with_the_ops_tool(sqlite_url, sqlite_store, monkeypatch, capsys):
    monkeypatch.setenv("ACCOUNTS_DATABASE_URL", sqlite_url)
    load_rows(sqlite_store, service_rows("405583", "28624") + service_rows("405584", "28625"))
    user = unique_user()
    ids = []
    for number in ("28624", "28625"):
        handlers.link_verified(
            sqlite_store, user_id=user, kind="utility", number=number, via="staff"
        )
        ids.append(
            handlers.request_address_change(
                sqlite_store, user_id=user, account_number=number, payload=new_address()
            )["request_id"]
        )
    assert cli.main(["address-requests", "list"]) == 0
    listing = capsys.readouterr().out
    assert ids[0] in listing and ids[1] in listing and "4 VALLEY AVE" in listing

    assert cli.main(["address-requests", "approve", ids[0].lower(), "--by", "kim"]) == 0
    assert "approved" in capsys.readouterr().out
    assert (
        cli.main(["address-requests", "reject", ids[1], "--reason", "Wrong unit", "--by", "kim"])
        == 0
    )
    assert "reason: Wrong unit" in capsys.readouterr().out
    assert cli.main(["address-requests", "list"]) == 0
    assert "(none)" in capsys.readouterr().out
    assert cli.main(["address-requests", "list", "--status", "all", "--json"]) == 0
    assert '"status": "rejected"' in capsys.readouterr().out

    assert cli.main(["address-requests", "approve", ids[1]]) == 2
    assert "already rejected" in capsys.readouterr().err
    assert cli.main(["address-requests", "approve", "AR-NOPE"]) == 2
    assert "No address change request AR-NOPE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["address-requests", "reject", ids[0]])  # --reason is required
