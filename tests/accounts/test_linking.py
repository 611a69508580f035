"""Linking over RPC: forgiving inputs, one generic failure, the throttle, households, events."""

import pytest

from shared.errors import InvalidInput, NotFound, RateLimited
from shared.rpc import rpc_client
from tests.accounts.helpers import stored_events, unique_user

pytestmark = pytest.mark.integration


def utility(account, customer):
    return {"type": "utility", "account_number": account, "customer_id": customer}


def failure(call):
    with pytest.raises(InvalidInput) as caught:
        call()
    e = caught.value
    return (type(e), e.status, e.code, e.detail, e.errors, e.extra)


def test_a_resident_links_a_utility_account_from_the_bill(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    link = cluster.accounts.link_account(user, utility(account, customer))
    assert link["type"] == "utility" and link["via"] == "link"
    assert (link["account_number"], link["customer_id"]) == (account, customer)
    assert link["name"] == "CITY OF PLEASANTON"
    assert link["service_address"] == "0 ALAMEDA DR - IRR"
    assert cluster.accounts.list_links(user) == [link]
    assert cluster.accounts.can_access(user, account) is True
    assert cluster.accounts.accessible(user) == {"accounts": [account], "customers": []}


def test_a_wrong_account_number_and_a_wrong_customer_id_get_the_same_answer(
    accounts_service, cluster
):
    account, customer = accounts_service.add_utility()
    other_account, other_customer = accounts_service.add_utility()
    user = unique_user()
    link = cluster.accounts.link_account
    answers = [
        failure(lambda: link(user, utility("99999999", customer))),  # no such account
        failure(lambda: link(user, utility(account, "99999999"))),  # no such customer
        failure(lambda: link(user, utility(account, other_customer))),  # another's customer
        failure(lambda: link(user, utility(other_account, customer))),
        failure(lambda: link(user, utility("1", "2"))),  # both wrong
    ]
    assert all(answer == answers[0] for answer in answers)
    kind, status, code, detail, errors, _ = answers[0]
    assert (kind, status, code, errors) == (InvalidInput, 422, "no_account_match", {})
    assert detail.startswith("No account matches these values")
    # The search, the check at registration and the general-billing link say the same.
    assert (
        failure(lambda: cluster.accounts.search_utility(user, account, "7", False))[2:5]
        == (answers[0][2:5])
    )
    assert (
        failure(lambda: cluster.accounts.check_utility_values("8", customer))[2:5]
        == (answers[0][2:5])
    )
    general = {"type": "customer", "customer_id": customer, "name": "SOMEONE ELSE"}
    assert failure(lambda: link(user, general))[2:5] == answers[0][2:5]


@pytest.mark.parametrize(
    "typed_account, typed_customer",
    [
        ("00{account}", " 00{customer} "),
        ("  {account}  ", "{customer}"),
        ("{account} - {customer}", ""),
        ("{account}-{customer}", "{customer}"),
        ("", "{account} - {customer}"),
    ],
)
def test_forgiving_inputs_link_the_account(
    accounts_service, cluster, typed_account, typed_customer
):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    values = utility(
        typed_account.format(account=account, customer=customer),
        typed_customer.format(account=account, customer=customer),
    )
    link = cluster.accounts.link_account(user, values)
    assert (link["account_number"], link["customer_id"]) == (account, customer)


def test_malformed_values_name_the_field_without_looking_anything_up(accounts_service, cluster):
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.link_account(unique_user(), utility("12$4", ""))
    assert caught.value.errors == {
        "account_number": "may contain only letters and digits",
        "customer_id": "is required",
    }
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.link_account(unique_user(), {"type": "water"})
    assert "type" in caught.value.errors


@pytest.mark.parametrize(
    "typed",
    ["EXAMPLE CUSTOMER", "example customer", "  Example   Customer  ", "Example-Customer"],
)
def test_a_general_billing_customer_links_by_customer_id_and_name(accounts_service, cluster, typed):
    customer = accounts_service.add_customer("EXAMPLE CUSTOMER")
    user = unique_user()
    link = cluster.accounts.link_account(
        user, {"type": "customer", "customer_id": f"0{customer}", "name": typed}
    )
    assert link["type"] == "customer" and link["customer_id"] == customer
    assert link["account_number"] is None and link["name"] == "EXAMPLE CUSTOMER"
    assert cluster.accounts.can_access_customer(user, customer) is True
    # A customer link reaches general billing only, not utility accounts.
    assert cluster.accounts.accessible(user) == {"accounts": [], "customers": [customer]}


def test_a_customer_links_by_account_number_and_name_forgiving_punctuation(
    accounts_service, cluster
):
    account, customer = accounts_service.add_utility(name="SMITH & SONS UNIT 123-A")
    user = unique_user()
    link = cluster.accounts.link_account(
        user, {"type": "customer", "account_number": account, "name": "smith and sons unit 123 a"}
    )
    assert link["customer_id"] == customer
    assert cluster.accounts.can_access(user, account) is False


@pytest.mark.parametrize("partial", ["EXAMPLE", "CUSTOMER", "EXAMPLE CUSTOMER JR", "EXAMPL"])
def test_a_name_never_matches_partially(accounts_service, cluster, partial):
    customer = accounts_service.add_customer("EXAMPLE CUSTOMER")
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.link_account(
            unique_user(), {"type": "customer", "customer_id": customer, "name": partial}
        )
    assert caught.value.code == "no_account_match"


def test_failures_are_throttled_per_user_with_a_clear_message(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user, neighbour = unique_user(), unique_user()
    for i in range(10):
        with pytest.raises(InvalidInput):
            cluster.accounts.link_account(user, utility(account, f"9{i}"))
    # The eleventh attempt is refused before the values are looked at, even right ones.
    with pytest.raises(RateLimited) as caught:
        cluster.accounts.link_account(user, utility(account, customer))
    assert caught.value.status == 429 and caught.value.code == "link_attempts_throttled"
    assert 3000 < caught.value.retry_after <= 3600
    assert "try again in" in caught.value.detail
    with pytest.raises(RateLimited):
        cluster.accounts.search_utility(user, account, customer, True)
    assert cluster.accounts.list_links(user) == []
    # Another user is not affected.
    assert cluster.accounts.link_account(neighbour, utility(account, customer))["link_id"]
    failed = stored_events(accounts_service.store, "LinkAttemptFailed")
    mine = [e for e in failed if e.stream_id == f"linkguard-user:{user}"]
    assert len(mine) == 10
    assert all(set(e.data) == {"key", "module", "at"} for e in mine)  # values never kept


def test_successes_do_not_count_against_the_throttle(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    for _ in range(12):
        cluster.accounts.link_account(user, utility(account, customer))
    assert len(cluster.accounts.list_links(user)) == 1


def test_household_members_link_the_same_account(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    ana, bo = unique_user(), unique_user()
    ana_link = cluster.accounts.link_account(ana, utility(account, customer))
    bo_link = cluster.accounts.link_account(bo, utility(account, customer))
    assert ana_link["link_id"] != bo_link["link_id"]
    assert cluster.accounts.linked_users(account) == sorted([ana, bo])
    cluster.accounts.unlink(ana, ana_link["link_id"])
    assert cluster.accounts.can_access(ana, account) is False
    assert cluster.accounts.can_access(bo, account) is True
    assert cluster.accounts.linked_users(account) == [bo]


def test_one_user_holds_many_links_and_removes_one(accounts_service, cluster):
    user = unique_user()
    made = []
    for _ in range(3):
        account, customer = accounts_service.add_utility()
        made.append(cluster.accounts.link_account(user, utility(account, customer)))
    general = accounts_service.add_customer()
    made.append(
        cluster.accounts.link_account(
            user, {"type": "customer", "customer_id": general, "name": "EXAMPLE CUSTOMER"}
        )
    )
    assert [link["link_id"] for link in cluster.accounts.list_links(user)] == [
        link["link_id"] for link in made
    ]
    cluster.accounts.unlink(user, made[1]["link_id"])
    assert [link["link_id"] for link in cluster.accounts.list_links(user)] == [
        made[0]["link_id"],
        made[2]["link_id"],
        made[3]["link_id"],
    ]


def test_a_user_cannot_remove_another_users_link(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    ana, mallory = unique_user(), unique_user()
    link = cluster.accounts.link_account(ana, utility(account, customer))
    with pytest.raises(NotFound) as caught:
        cluster.accounts.unlink(mallory, link["link_id"])
    assert caught.value.code == "link_not_found"
    assert cluster.accounts.can_access(ana, account) is True


def test_every_link_and_unlink_is_an_event_with_its_actor(accounts_service, amqp_uri):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    context = {"actor": f"user:{user}", "correlation_id": "req-link-1"}
    with rpc_client(amqp_uri, context_data=context) as gateway:
        link = gateway.accounts.link_account(user, utility(account, customer))
    with rpc_client(amqp_uri) as cluster:
        cluster.accounts.unlink(user, link["link_id"])
    created, removed = stored_events(accounts_service.store, "LinkCreated", "LinkRemoved")[-2:]
    assert created.stream_id == removed.stream_id == f"user-{user}"
    assert created.actor == f"user:{user}" and created.correlation_id == "req-link-1"
    assert created.data["via"] == "link" and created.data["account_number"] == account
    assert removed.actor == f"user:{user}"  # no gateway context: the user themself
    assert removed.data == {
        "link_id": link["link_id"],
        "user_id": user,
        "type": "utility",
        "account_number": account,
        "customer_id": customer,
        "reason": "user",
    }


def test_linking_an_account_again_records_nothing(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    user = unique_user()
    first = cluster.accounts.link_account(user, utility(account, customer))
    again = cluster.accounts.link_account(user, utility(f"0{account}", customer))
    assert again == first
    mine = [
        e for e in stored_events(accounts_service.store, "LinkCreated") if e.data["user_id"] == user
    ]
    assert len(mine) == 1


def test_the_registration_check_normalizes_and_can_be_throttled_by_key(accounts_service, cluster):
    account, customer = accounts_service.add_utility()
    assert cluster.accounts.check_utility_values(f" 00{account}", customer) == {
        "account_number": account,
        "customer_id": customer,
    }
    key = f"ip:{unique_user()}"
    for _ in range(10):
        with pytest.raises(InvalidInput):
            cluster.accounts.check_utility_values(account, "1", key)
    with pytest.raises(RateLimited):
        cluster.accounts.check_utility_values(account, customer, key)
    assert cluster.accounts.check_utility_values(account, customer)["account_number"] == account


def test_values_verified_elsewhere_link_with_their_origin(accounts_service, cluster):
    account, _ = accounts_service.add_utility()
    customer = accounts_service.add_customer()
    user = unique_user()
    link = cluster.accounts.link_verified(user, "utility", account, "registration")
    assert link["via"] == "registration" and cluster.accounts.can_access(user, account)
    link = cluster.accounts.link_verified(user, "customer", customer, "invoice")
    assert link["via"] == "invoice" and cluster.accounts.can_access_customer(user, customer)
    with pytest.raises(NotFound):
        cluster.accounts.link_verified(user, "utility", "99999999", "registration")
    with pytest.raises(InvalidInput) as caught:
        cluster.accounts.link_verified(user, "utility", account, "guess")
    assert "via" in caught.value.errors
