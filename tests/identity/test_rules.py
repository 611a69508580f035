"""Unit tests of the rules: user IDs, addresses, passwords (NIST SP 800-63B), the challenge."""

import random

import pytest

from services.identity.domain import rules
from services.identity.domain.challenge import answer_matches, make_challenge, number_words
from services.identity.security import common_passwords, is_common_password


def _problem(password, **context):
    return rules.password_problem(password, is_common=is_common_password, **context)


@pytest.mark.parametrize("user_id", ["a", "Ana.Lopez", "x_1-2.3", "A" * 20, "0042"])
def test_valid_user_ids(user_id):
    assert rules.user_id_problem(user_id) is None


@pytest.mark.parametrize(
    "user_id", ["", "A" * 21, "ana lopez", "ana@home", "名前", "<b>", "a;drop", "ana\n"]
)
def test_invalid_user_ids(user_id):
    assert rules.user_id_problem(user_id) == rules.USER_ID_RULE


def test_user_ids_compare_without_case():
    assert rules.canonical_user_id(" Ana.Lopez ") == rules.canonical_user_id("ANA.LOPEZ")


@pytest.mark.parametrize("email", ["ana@example.org", "a.b+tag@sub.example.co", "x_y@ex-ample.io"])
def test_valid_emails(email):
    assert rules.email_problem(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ana",
        "ana@",
        "@example.org",
        "ana@example",
        "a b@example.org",
        "ana@ex..org",
        "<ana>@example.org",
        "ana@example.org;drop",
        "ñ@example.org",
        "a" * 65 + "@example.org",
        "a@" + "b" * 250 + ".org",
    ],
)
def test_invalid_emails(email):
    assert rules.email_problem(email) is not None


def test_email_domain_is_lowercased_and_keys_ignore_case():
    assert rules.normalize_email(" Ana.Lopez@Example.ORG ") == "Ana.Lopez@example.org"
    assert rules.email_key("Ana@Example.org") == rules.email_key("ana@example.ORG")


def test_the_shipped_list_has_at_least_ten_thousand_common_passwords():
    shipped = common_passwords()
    assert len(shipped) >= 10_000
    assert {"password", "123456", "qwerty", "iloveyou", "trustno1"} <= shipped


def test_length_rules_without_composition_rules():
    assert "at least 8" in _problem("Tr4!n$x")
    assert _problem("tramlines") is None  # lowercase letters only are fine
    assert _problem("w" + "ordy tram " * 6 + "end") is None  # 64 and more characters
    assert _problem("k" * 3 + "tram line " * 25) is None  # 253 characters
    assert "at most 256" in _problem("tram line " * 26)


def test_common_passwords_are_refused_whatever_their_case():
    assert "too common" in _problem("Password1")
    assert "too common" in _problem("BASEBALL")


def test_repetitive_and_sequential_passwords_are_refused():
    for password in ("aaaaaaaaaa", "abababab", "12345678910"[:9], "abcdefghij", "zyxwvuts"):
        assert _problem(password) is not None, password


def test_passwords_matching_the_user_id_or_email_are_refused():
    assert "user ID" in _problem("Ana.Lopez1", user_id="ana.lopez1")
    assert "user ID" in _problem("ana.lopez.home", email="ana.lopez.home@example.org")


def test_unicode_is_normalized_before_checking_and_hashing():
    composed, decomposed = "caf\u00e9 au lait 42", "cafe\u0301 au lait 42"
    assert rules.normalize_password(composed) == rules.normalize_password(decomposed)
    assert _problem("pass\x00word12") == "must not contain control characters"


def test_account_numbers_lose_surrounding_spaces_and_leading_zeros():
    assert rules.normalize_account_number(" 0028624 ") == "28624"
    assert rules.normalize_account_number("000") == "0"


def test_challenges_accept_the_answer_in_digits_or_words():
    rng = random.Random(7)
    seen_kinds = set()
    for _ in range(200):
        challenge = make_challenge(rng)
        seen_kinds.add(challenge.question.split()[0])
        assert challenge.answers and challenge.audio_text
        assert answer_matches(f"  {challenge.answers[0].upper()} ", challenge.answers)
        assert not answer_matches("", challenge.answers)
    assert len(seen_kinds) >= 3
    assert answer_matches("twenty-one", ("21", "twentyone"))
    assert answer_matches("Twenty One", ("21", "twentyone"))
    assert not answer_matches("20", ("21", "twentyone"))
    assert number_words(47) == "forty-seven"
