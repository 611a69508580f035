"""Addresses, dates and meter sizes: clean values or an error naming the field."""

import pytest

from services.accounts.domain import values as v


def test_zip_plus_four_is_written_with_a_hyphen():
    assert v.zip_code("zip", "945667320") == "94566-7320"
    assert v.zip_code("zip", "94566") == "94566"
    assert v.zip_code("zip", "00000") == "00000"


@pytest.mark.parametrize("bad", ["9456", "94566-73", "ABCDE", ""])
def test_bad_zips_are_refused(bad):
    with pytest.raises(v.FieldError) as caught:
        v.zip_code("mailing_zip", bad)
    assert caught.value.field == "mailing_zip"


def test_dates_accept_iso_and_the_bills_format():
    assert v.date("d", "11/13/1995") == "1995-11-13"
    assert v.date("d", "1995-11-13") == "1995-11-13"
    with pytest.raises(v.FieldError):
        v.date("d", "13/45/1995")
    assert v.date("d", "", required=False) is None


@pytest.mark.parametrize(
    "typed, size",
    [('5/8"', "5/8"), ("3/4 in", "3/4"), ("1.5", "1-1/2"), ("1-1/2", "1-1/2"), ("2 inch", "2")],
)
def test_meter_sizes_are_normalized(typed, size):
    assert v.meter_size("meter_size", typed) == size


def test_an_unknown_meter_size_is_refused():
    with pytest.raises(v.FieldError) as caught:
        v.meter_size("meter_size", "7/8")
    assert "5/8" in caught.value.message


def test_a_state_must_be_a_us_code():
    assert v.state("state", "ca") == "CA"
    with pytest.raises(v.FieldError):
        v.state("state", "California")


def test_city_state_zip_reads_like_the_bill():
    address = {"line1": "123 MAIN STREET", "city": "PLEASANTON", "state": "CA", "zip": "94566-7320"}
    assert v.city_state_zip(address) == "PLEASANTON, CA 94566-7320"
