"""Residents' input is forgiven where they err, and nowhere else."""

import pytest

from services.accounts.domain.identifiers import (
    name_key,
    normalize_account_number,
    parse_identifier,
    split_pasted_pair,
)
from shared.errors import InvalidInput


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("28624", "28624"),
        (" 0028624 ", "28624"),
        (28624, "28624"),
        ("0", "0"),
        ("00", "0"),
        ("ab12", "AB12"),
    ],
)
def test_account_numbers_drop_spaces_and_leading_zeros(typed, stored):
    assert normalize_account_number(typed) == stored


@pytest.mark.parametrize("bad", ["28 624", "28624$", "28624-405583x-1", "1" * 21])
def test_malformed_identifiers_name_the_field_and_rule(bad):
    with pytest.raises(InvalidInput) as caught:
        parse_identifier("account_number", bad, label="account number")
    assert set(caught.value.errors) == {"account_number"}


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_missing_identifier_is_required(blank):
    with pytest.raises(InvalidInput) as caught:
        parse_identifier("customer_id", blank, label="customer ID")
    assert caught.value.errors == {"customer_id": "is required"}


@pytest.mark.parametrize(
    "account, customer",
    [
        ("28624 - 405583", ""),
        ("28624 - 405583", None),
        ("28624-405583", "405583"),
        ("28624 \u2013 405583", "0405583"),
        ("", "28624 - 405583"),
        ("28624", " 28624 - 405583 "),
    ],
)
def test_a_pasted_pair_is_split_in_the_bills_order(account, customer):
    assert split_pasted_pair(account, customer) == ("28624", "405583")


def test_a_pair_that_contradicts_the_other_field_is_left_as_typed():
    assert split_pasted_pair("28624 - 405583", "999") == ("28624 - 405583", "999")


@pytest.mark.parametrize(
    "printed, typed",
    [
        ("EXAMPLE CUSTOMER", "example customer"),
        ("EXAMPLE CUSTOMER", "  Example   Customer "),
        ("UNIT 123-A LLC", "unit 123 a llc"),
        ("SMITH & JONES", "Smith and Jones"),
        ("SMITH AND JONES", "smith&jones"),
        ("O'BRIEN, PAT", "OBRIEN PAT"),
        ("ST. JOHN HOA", "st john hoa"),
    ],
)
def test_names_forgive_case_spaces_and_punctuation(printed, typed):
    assert name_key(printed) == name_key(typed)


@pytest.mark.parametrize(
    "printed, typed",
    [
        ("EXAMPLE CUSTOMER", "EXAMPLE"),
        ("EXAMPLE CUSTOMER", "CUSTOMER"),
        ("EXAMPLE CUSTOMER", "EXAMPLE CUSTOMERS"),
        ("EXAMPLE CUSTOMER", "EXAMPLE CUSTOMER INC"),
        ("123-A", "123A B"),
        ("SMITH & JONES", "SMITH JONES"),
    ],
)
def test_names_never_match_partially_or_loosely(printed, typed):
    assert name_key(printed) != name_key(typed)
