"""The registration challenge (CAPTCHA on) and the per-login sign-in throttle."""

import pytest
import sqlalchemy as sa

from shared.errors import InvalidInput, RateLimited, Unauthorized

pytestmark = pytest.mark.integration

IDENTITY_CONFIG = {"CAPTCHA": "on", "SIGNIN_LOGIN_LIMIT": 3, "SIGNIN_LOGIN_WINDOW": 60}
GOOD = "quiet river lantern 42"


def _accepted_answers(identity, challenge_id):
    """The answers the server stored for a challenge (what a person would work out)."""
    from services.identity.state import challenges

    with identity.store().read() as conn:
        return conn.execute(
            sa.select(challenges.c.answers).where(challenges.c.challenge_id == challenge_id)
        ).scalar_one()


def test_challenge_has_a_question_and_a_spoken_alternative(identity):
    challenge = identity.rpc.new_challenge()
    assert challenge["question"].endswith("?") or challenge["question"].endswith(".")
    assert challenge["audio_text"] and challenge["challenge_id"]
    assert not any(ch.isdigit() for ch in challenge["audio_text"])  # numbers are spoken


def test_registration_needs_the_right_answer(identity):
    user_id, email = identity.new_user()
    with pytest.raises(InvalidInput) as missing:
        identity.register(user_id, email, GOOD)
    assert "challenge_answer" in missing.value.errors

    challenge = identity.rpc.new_challenge()
    with pytest.raises(InvalidInput) as wrong:
        identity.register(
            user_id, email, GOOD, challenge_id=challenge["challenge_id"], challenge_answer="nope"
        )
    assert wrong.value.code == "challenge_failed"

    challenge = identity.rpc.new_challenge()
    answer = _accepted_answers(identity, challenge["challenge_id"])[0]
    identity.register(
        user_id,
        email,
        GOOD,
        challenge_id=challenge["challenge_id"],
        challenge_answer=f"  {answer.upper()} ",
    )
    assert identity.rpc.get_profile(user_id)["email"] == email


def test_a_challenge_is_spent_by_one_attempt(identity):
    challenge = identity.rpc.new_challenge()
    answer = _accepted_answers(identity, challenge["challenge_id"])[0]
    user_id, email = identity.new_user()
    identity.register(
        user_id, email, GOOD, challenge_id=challenge["challenge_id"], challenge_answer=answer
    )
    other, other_email = identity.new_user()
    with pytest.raises(InvalidInput) as spent:
        identity.register(
            other,
            other_email,
            GOOD,
            challenge_id=challenge["challenge_id"],
            challenge_answer=answer,
        )
    assert "expired" in spent.value.errors["challenge_answer"]


def test_failures_for_one_login_are_throttled_alike_for_known_and_unknown_users(identity):
    challenge = identity.rpc.new_challenge()
    answer = _accepted_answers(identity, challenge["challenge_id"])[0]
    user_id, email = identity.new_user()
    identity.register(
        user_id, email, GOOD, challenge_id=challenge["challenge_id"], challenge_answer=answer
    )
    identity.rpc.verify_email(identity.link_token(email, "/verify-email"))
    nobody, _ = identity.new_user("ghost")
    for login in (user_id, nobody):
        for _ in range(3):
            with pytest.raises(Unauthorized):
                identity.sign_in(login, "wrong password 123")
        with pytest.raises(RateLimited) as limited:
            identity.sign_in(login, "wrong password 123")
        assert 0 < limited.value.retry_after <= 60
    # Naming the same account by its email counts against the same limit.
    with pytest.raises(RateLimited):
        identity.sign_in(email, GOOD)
