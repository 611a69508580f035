"""The rate engine and the schedule file: exact money, tier boundaries, clear errors."""

from decimal import Decimal

import pytest
import yaml

from services.billing.domain.rates import RateError, Tier, tiered_charge
from services.billing.domain.values import bill_year, meter_size_key, parse_money
from services.billing.schedule import (
    ScheduleError,
    _DecimalLoader,
    load_schedule,
    parse_bill_years,
    parse_schedule,
)


def test_the_seed_bill_98465_rates_to_127_11(schedule):
    fixed = schedule.rates.get("10000").charge_lines(meter_size='1-1/2"')
    metered = schedule.rates.get("15000").charge_lines(usage=Decimal(10))
    lines = [(line.description, line.amount) for line in fixed + metered]
    assert lines == [
        ("PLEASANTON WATER FIXED CHARGE", Decimal("90.35")),
        ("PLEASANTON WATER VAR CHARGE IRRIGATION", Decimal("4.26")),
        ("ZONE 7 COST", Decimal("31.50")),
        ("RECYCLED WATER", Decimal("1.00")),
    ]
    assert sum(amount for _, amount in lines) == Decimal("127.11")
    assert all(isinstance(amount, Decimal) for _, amount in lines)


TIERS = (
    Tier(Decimal(5), Decimal("0.40")),
    Tier(Decimal(20), Decimal("0.50")),
    Tier(None, Decimal("1.00")),
)


@pytest.mark.parametrize(
    "usage, expected",
    [
        ("0", "0"),
        ("1", "0.40"),
        ("5", "2.00"),  # the last unit of tier 1
        ("6", "2.50"),  # the first unit of tier 2
        ("20", "9.50"),  # the last unit of tier 2: 2.00 + 15 x 0.50
        ("21", "10.50"),  # the first unit of the unbounded tier
        ("5.5", "2.25"),  # a fraction across the boundary
        ("100", "89.50"),
    ],
)
def test_tier_boundaries_charge_each_unit_once(usage, expected):
    assert tiered_charge(TIERS, Decimal(usage)) == Decimal(expected)


def test_a_line_is_rounded_half_up_once_not_tier_by_tier(schedule):
    # 5 x 0.40 + 1 x 0.452 = 2.452 -> 2.45, one rounding for the whole line
    var = schedule.rates.get("15000").charge_lines(usage=Decimal(6))[0]
    assert var.amount == Decimal("2.45")
    # 3.15 x 0.5 = 1.575: half up gives 1.58 (banker's rounding would give 1.58 too; 0.125 shows it)
    assert schedule.rates.get("15000").charge_lines(usage=Decimal("0.5"))[1].amount == Decimal(
        "1.58"
    )


def test_half_cent_rounds_up_where_bankers_rounding_would_not():
    raw = {
        **_minimal(),
        "services": {
            "1": {"name": "X", "pass_through": [{"description": "P", "per_unit": "0.125"}]}
        },
    }
    rate = parse_schedule(raw).rates.get("1")
    assert rate.charge_lines(usage=Decimal(1))[0].amount == Decimal("0.13")


@pytest.mark.parametrize("spelling", ['1-1/2"', "1 1/2", "1.5", "1-1/2", '1 1/2"', "1.5 in"])
def test_meter_sizes_match_whatever_the_spelling(schedule, spelling):
    assert schedule.rates.get("10000").fixed_amount(spelling) == Decimal("90.35")
    assert meter_size_key(spelling) == meter_size_key('1-1/2"')


def test_a_meter_size_without_a_rate_names_the_sizes_there_are(schedule):
    with pytest.raises(RateError) as err:
        schedule.rates.get("10000").fixed_amount('10"')
    assert err.value.code == "no_rate_for_meter_size"
    assert '1-1/2"' in err.value.detail and "meter_size" in err.value.errors


def test_a_metered_service_needs_usage_and_never_negative(schedule):
    with pytest.raises(RateError) as err:
        schedule.rates.get("15000").charge_lines()
    assert err.value.code == "no_usage"
    with pytest.raises(RateError):
        schedule.rates.get("15000").charge_lines(usage=Decimal(-1))


def test_yaml_numbers_are_read_exactly():
    data = yaml.load("a: 0.1\nb: 90.35\nc: 1_000.50\n", Loader=_DecimalLoader)  # noqa: S506
    assert data == {"a": Decimal("0.1"), "b": Decimal("90.35"), "c": Decimal("1000.50")}
    assert not any(isinstance(v, float) for v in data.values())


def _minimal():
    return {
        "city": {"name": "TOWN", "contact": "CALL US", "timezone": "UTC"},
        "services": {"1": {"name": "FEE", "flat_fees": [{"description": "FEE", "amount": "1.00"}]}},
    }


def test_the_schedule_file_reports_every_broken_rule_with_its_path():
    raw = {
        "city": {"name": "", "contact": "x", "timezone": "Mars/Olympus"},
        "portal": {"bill_years": "soon", "fiscal_year_start_month": 13},
        "billing": {"due_days": -1, "penalty": {"percent": "ten"}},
        "services": {
            "15000": {
                "name": "VAR",
                "volumetric": {
                    "description": "VAR",
                    "tiers": [{"up_to": 10, "rate": "0.4"}, {"up_to": 5, "rate": "0.5"}],
                },
                "flat_fees": [{"description": "FEE", "amount": "1.005"}],
            },
            "10000": {"name": "FIXED", "fixed": {"by_meter_size": {"huge": "1.00"}}},
            "99": {"name": "NOTHING"},
        },
    }
    with pytest.raises(ScheduleError) as err:
        parse_schedule(raw, source="rates.yaml")
    errors = err.value.errors
    assert errors["city.name"] == "is required"
    assert "time zone" in errors["city.timezone"]
    assert "bill-years" in errors["portal.bill_years"]
    assert "between 1 and 12" in errors["portal.fiscal_year_start_month"]
    assert "between 0 and 366" in errors["billing.due_days"]
    assert "not a number" in errors["billing.penalty.percent"]
    assert "more than the previous bound" in errors["services.15000.volumetric.tiers.1.up_to"]
    assert "no up_to" in errors["services.15000.volumetric.tiers"]
    assert "at most 2 decimal places" in errors["services.15000.flat_fees.0.amount"]
    assert "meter size" in errors["services.10000.fixed.by_meter_size.huge"]
    assert "declares no charge" in errors["services.99"]
    assert "rates.yaml" in err.value.detail


def test_an_unreadable_schedule_file_is_a_clear_error(tmp_path):
    with pytest.raises(ScheduleError) as err:
        load_schedule(tmp_path / "missing.yaml")
    assert "cannot read the billing schedule" in err.value.detail
    bad = tmp_path / "bad.yaml"
    bad.write_text("city: [unclosed\n")
    with pytest.raises(ScheduleError) as err:
        load_schedule(bad)
    assert "not valid YAML" in err.value.detail


@pytest.mark.parametrize(
    "spec, current, expected",
    [("2015-2017", 2027, (2015, 2017)), ("2015-", 2027, (2015, 2027)), ("3", 2027, (2025, 2027))],
)
def test_bill_years_filters(spec, current, expected):
    assert parse_bill_years(spec, current) == expected


def test_bill_years_reject_a_backwards_range():
    with pytest.raises(ValueError, match="before"):
        parse_bill_years("2017-2015", 2027)


def test_the_bill_year_is_the_fiscal_year_the_city_names_it_by():
    # Pleasanton's Pay Bills page: bill date 9/26/2016 is bill year 2017 (July-June years).
    import datetime as dt

    assert bill_year(dt.date(2016, 9, 26), 7) == 2017
    assert bill_year(dt.date(2016, 6, 30), 7) == 2016
    assert bill_year(dt.date(2016, 9, 26), 1) == 2016


def test_the_bill_years_override_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("BILL_YEARS", "2015-2017")
    import datetime as dt

    assert load_schedule().bill_years(dt.date(2026, 11, 22)) == (2015, 2017)
    monkeypatch.setenv("BILL_YEARS", "sometime")
    with pytest.raises(ScheduleError):
        load_schedule()


@pytest.mark.parametrize("bad", ["1.005", "abc", "NaN", 0.1])
def test_money_refuses_floats_and_fractions_of_a_cent(bad):
    with pytest.raises(ValueError):
        parse_money(bad)


def test_money_reads_dollar_signs_and_thousands():
    assert parse_money("$1,234.5") == Decimal("1234.50")
