"""Webhook signatures: t=<unix>,v1=<HMAC-SHA256 of "t.body">, two secrets, 5 minutes."""

import hashlib
import hmac

import pytest

from services.payments.domain.errors import BadSignatureError
from services.payments.signatures import sign, verify

BODY = b'{"id":"evt_1","type":"payment.succeeded"}'


def test_the_header_is_the_documented_hmac():
    header = sign(BODY, ["whsec_a"], 1_800_000_000)
    expected = hmac.new(b"whsec_a", b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"


def test_either_of_two_active_secrets_is_accepted():
    header = sign(BODY, ["whsec_new"], 1000)
    assert verify(BODY, header, ["whsec_old", "whsec_new"], now=1000) == 1000
    both = sign(BODY, ["whsec_old", "whsec_new"], 1000)
    assert verify(BODY.decode(), both, ["whsec_new"], now=1000) == 1000


@pytest.mark.parametrize(
    ("header", "now", "why"),
    [
        (None, 1000, "missing"),
        ("", 1000, "missing"),
        ("v1=abc", 1000, "must look like"),
        ("t=1000", 1000, "must look like"),
        ("t=soon,v1=abc", 1000, "not a number"),
        (sign(BODY, ["whsec_x"], 1000), 1000, "does not match"),
        (sign(BODY, ["whsec_a"], 1000), 1301, "5 minutes"),
        (sign(BODY, ["whsec_a"], 1000), 699, "5 minutes"),
        (sign(BODY + b" ", ["whsec_a"], 1000), 1000, "does not match"),
        ("t=1000," + "v1=a" * 1000, 1000, "too long"),
    ],
)
def test_forged_stale_or_malformed_signatures_are_refused(header, now, why):
    with pytest.raises(BadSignatureError) as excinfo:
        verify(BODY, header, ["whsec_a"], now=now)
    assert why in excinfo.value.detail
    assert excinfo.value.code == "bad_signature"


def test_inside_the_tolerance_is_fine():
    header = sign(BODY, ["whsec_a"], 1000)
    assert verify(BODY, header, ["whsec_a"], now=1300) == 1000
    assert verify(BODY, header, ["whsec_a"], now=700) == 1000
