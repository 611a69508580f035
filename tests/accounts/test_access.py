"""A user reaches an account's data only through a link they hold.

Every RPC that takes a user_id is tried with another user's account: each
refuses with the same answer it gives for an account that does not exist, or
returns nothing of it. The gateway's tests complete the proof end to end.
"""

import datetime as dt
import inspect

import pytest

from services.accounts.service import AccountsService
from shared.errors import NotFound
from tests.accounts.helpers import unique_user

pytestmark = pytest.mark.integration

ADDRESS = {
    "address_line1": "4 VALLEY AVE",
    "city": "PLEASANTON",
    "state": "CA",
    "zip": "94566",
    "effective_date": dt.date.today().isoformat(),
}


@pytest.fixture
def victim_and_mallory(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    general = accounts_service.add_customer()
    victim, mallory = unique_user(), unique_user()
    cluster.accounts.link_account(
        victim, {"type": "utility", "account_number": account, "customer_id": customer}
    )
    cluster.accounts.link_account(
        victim, {"type": "customer", "customer_id": general, "name": "EXAMPLE CUSTOMER"}
    )
    cluster.accounts.search_utility(victim, account, customer, True)
    request = cluster.accounts.request_address_change(victim, account, ADDRESS)
    # Mallory holds links of her own, so "nothing" is not just an empty account.
    own_account, own_customer = accounts_service.add_utility()
    cluster.accounts.link_account(
        mallory, {"type": "utility", "account_number": own_account, "customer_id": own_customer}
    )
    return {
        "account": account,
        "customer": customer,
        "general": general,
        "victim": victim,
        "mallory": mallory,
        "own_account": own_account,
        "request_id": request["request_id"],
        "link_id": cluster.accounts.list_links(victim)[0]["link_id"],
    }


def refusal(call):
    with pytest.raises(NotFound) as caught:
        call()
    return (caught.value.status, caught.value.code, caught.value.detail)


CHECKED = {
    "can_access",
    "can_access_customer",
    "accessible",
    "list_links",
    "account_details",
    "customer_info",
    "get_preferences",
    "set_preferences",
    "address_requests",
    "request_address_change",
    "cancel_address_request",
    "remembered_values",
    "unlink",
}


def test_every_rpc_that_takes_a_user_id_is_checked_here():
    takes_user = {
        name
        for name, fn in inspect.getmembers(AccountsService, inspect.isfunction)
        if "user_id" in inspect.signature(fn).parameters and not name.startswith("_")
    }
    # Writes that only ever act on the caller's own data, or link after verifying values:
    own_only = {
        "link_account",
        "link_verified",
        "search_utility",
        "remember_values",
        "forget_values",
    }
    assert takes_user - own_only == CHECKED


def test_another_users_account_is_refused_on_every_read_path(victim_and_mallory, cluster):
    v = victim_and_mallory
    m, a = v["mallory"], cluster.accounts
    assert a.can_access(m, v["account"]) is False
    assert a.can_access(m, f"00{v['account']}") is False
    assert a.can_access_customer(m, v["general"]) is False
    assert a.can_access_customer(m, v["customer"]) is False
    assert a.accessible(m) == {"accounts": [v["own_account"]], "customers": []}
    assert [link["account_number"] for link in a.list_links(m)] == [v["own_account"]]
    assert a.remembered_values(m, "utility") == {"values": None}

    missing = "99999999"
    same = refusal(lambda: a.account_details(missing, m))
    assert same[:2] == (404, "account_not_linked")
    assert refusal(lambda: a.account_details(v["account"], m)) == same
    assert refusal(lambda: a.get_preferences(v["account"], m)) == same
    assert refusal(lambda: a.get_preferences(missing, m)) == same
    assert refusal(lambda: a.set_preferences(m, v["account"], True, True)) == same
    assert refusal(lambda: a.address_requests(v["account"], m)) == same
    assert refusal(lambda: a.request_address_change(m, v["account"], ADDRESS)) == same
    customer = refusal(lambda: a.customer_info(v["customer"], m))
    assert customer[:2] == (404, "customer_not_linked")
    assert refusal(lambda: a.customer_info(v["general"], m)) == customer
    assert refusal(lambda: a.customer_info(missing, m)) == customer
    assert refusal(lambda: a.cancel_address_request(m, v["request_id"]))[1] == (
        "address_request_not_found"
    )
    assert refusal(lambda: a.cancel_address_request(m, "AR-0000000000"))[1] == (
        "address_request_not_found"
    )
    assert refusal(lambda: a.unlink(m, v["link_id"]))[1] == "link_not_found"


def test_nothing_was_changed_by_the_refused_calls(victim_and_mallory, cluster):
    v = victim_and_mallory
    a = cluster.accounts
    refusal(lambda: a.set_preferences(v["mallory"], v["account"], True, True))
    refusal(lambda: a.unlink(v["mallory"], v["link_id"]))
    refusal(lambda: a.cancel_address_request(v["mallory"], v["request_id"]))
    assert a.get_preferences(v["account"], v["victim"])["chosen"] is False
    assert a.can_access(v["victim"], v["account"]) is True
    assert a.address_requests(v["account"], v["victim"])[0]["status"] == "pending"


def test_the_owner_reaches_the_same_data(victim_and_mallory, cluster):
    v = victim_and_mallory
    a, me = cluster.accounts, v["victim"]
    assert a.account_details(v["account"], me)["account_number"] == v["account"]
    assert a.customer_info(v["customer"], me)["customer_id"] == v["customer"]
    assert a.customer_info(v["general"], me)["name"] == "EXAMPLE CUSTOMER"
    assert a.get_preferences(v["account"], me) == {
        "paperless": False,
        "email_notices": False,
        "updated_at": None,
        "chosen": False,
    }
    [request] = a.address_requests(v["account"], me)
    assert request["requested_by_you"] is True and "user_id" not in request
