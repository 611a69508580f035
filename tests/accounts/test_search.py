"""The utility search (Pleasanton step 4-5) and "Remember these values"."""

import pytest

from shared.errors import InvalidInput
from tests.accounts.helpers import stored_events, unique_user

pytestmark = pytest.mark.integration


def test_a_search_that_matches_lists_the_account_and_links_it(accounts_service, cluster):
    account, customer = accounts_service.add_utility(parcel_id="946-1234-056-00")
    user = unique_user()
    found = cluster.accounts.search_utility(user, account, customer, False)
    assert found["count"] == 1
    [result] = found["results"]
    assert result == {
        "customer_name": "CITY OF PLEASANTON",
        "service_address": "0 ALAMEDA DR - IRR",
        "service_city_state_zip": "PLEASANTON, CA 94566-0000",
        "account_number": account,
        "customer_id": customer,
        "parcel_id": "946-1234-056-00",
        "status": "ACTIVE",
        "link_id": result["link_id"],
    }
    [link] = cluster.accounts.list_links(user)
    assert link["link_id"] == result["link_id"] and link["via"] == "search"
    assert cluster.accounts.can_access(user, account)


def test_remembered_values_prefill_the_next_visit(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    assert cluster.accounts.remembered_values(user, "utility") == {"values": None}
    cluster.accounts.search_utility(user, f"{account} - {customer}", "", True)
    remembered = cluster.accounts.remembered_values(user, "utility")
    assert remembered == {"values": {"account_number": account, "customer_id": customer}}
    # The next visit searches at once with them.
    again = cluster.accounts.search_utility(user, **remembered["values"], remember=True)
    assert again["results"][0]["account_number"] == account
    assert cluster.accounts.remembered_values(user, "general") == {"values": None}
    # Unticking the box forgets them.
    cluster.accounts.search_utility(user, account, customer, False)
    assert cluster.accounts.remembered_values(user, "utility") == {"values": None}
    types = [e.type for e in stored_events(accounts_service.store) if e.stream_id == f"user-{user}"]
    assert types == ["LinkCreated", "SearchValuesRemembered", "SearchValuesForgotten"]


def test_a_failed_search_remembers_nothing(accounts_service, cluster):
    account, _ = accounts_service.add_utility()
    user = unique_user()
    with pytest.raises(InvalidInput):
        cluster.accounts.search_utility(user, account, "1", True)
    assert cluster.accounts.remembered_values(user, "utility") == {"values": None}


def test_general_billing_values_are_remembered_for_the_gateway(cluster):
    user = unique_user()
    cluster.accounts.remember_values(
        user, "general", {"customer_id": "012345", "bill_number": "25"}
    )
    assert cluster.accounts.remembered_values(user, "general") == {
        "values": {"customer_id": "12345", "bill_number": "25"}
    }
    cluster.accounts.forget_values(user, "general")
    assert cluster.accounts.remembered_values(user, "general") == {"values": None}
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.remember_values(user, "general", {"customer_id": "1", "pin": "2"})
    assert caught.value.errors == {
        "values.bill_number": "is required",
        "values.pin": "is not a search value of this module",
    }
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.remembered_values(user, "parking")
    assert caught.value.errors == {"module": "must be utility or general"}


def test_unlinking_forgets_the_values_that_would_link_it_again(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    result = cluster.accounts.search_utility(user, account, customer, True)
    cluster.accounts.unlink(user, result["results"][0]["link_id"])
    assert cluster.accounts.remembered_values(user, "utility") == {"values": None}
