"""The billing schedule file: the city's rates and billing policy (docs/billing.md).

One YAML file declares the issuer block printed on bills, the portal's
bill-years filter, the billing policy (due days, late penalty, estimates) and
the rate schedule of every service code. Money is read exactly: YAML numbers
become Decimals from their text, never floats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import zoneinfo
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from services.billing.domain.rates import (
    FixedCharge,
    FlatFee,
    PassThrough,
    RateSchedule,
    ServiceRate,
    Tier,
    Volumetric,
)
from services.billing.domain.values import GALLONS_PER_CCF, bill_year, meter_size_key
from shared.errors import InvalidInput
from shared.events import to_jsonable

DEFAULT_SCHEDULE = Path(__file__).resolve().parent / "schedule.yaml"


class ScheduleError(InvalidInput):
    """The schedule file breaks a rule; `errors` maps the path in the file to the rule."""


class _DecimalLoader(yaml.SafeLoader):
    """YAML with numbers read as exact Decimals."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))  # type: ignore[arg-type]


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


@dataclasses.dataclass(frozen=True)
class City:
    name: str
    address: tuple[str, ...]
    contact: str
    website: str
    timezone: str


@dataclasses.dataclass(frozen=True)
class Portal:
    bill_years: str
    fiscal_year_start_month: int


@dataclasses.dataclass(frozen=True)
class Policy:
    due_days: int
    grace_days: int
    penalty_percent: Decimal
    penalty_minimum: Decimal
    estimate_missing_reads: bool
    bill_number_start: int
    gallons_per_unit: int


@dataclasses.dataclass(frozen=True)
class Schedule:
    city: City
    portal: Portal
    policy: Policy
    rates: RateSchedule
    data: dict[str, Any]  # JSON form, recorded with each billing run
    sha: str

    def today(self) -> dt.date:
        return dt.datetime.now(zoneinfo.ZoneInfo(self.city.timezone)).date()

    def local_date(self, moment: dt.datetime) -> dt.date:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(zoneinfo.ZoneInfo(self.city.timezone)).date()

    def bill_year(self, statement_date: dt.date) -> int:
        return bill_year(statement_date, self.portal.fiscal_year_start_month)

    def bill_years(self, today: dt.date | None = None) -> tuple[int, int]:
        """The bill years residents see, e.g. (2015, 2017) for "Bill years 2015 to 2017 only"."""
        current = self.bill_year(today or self.today())
        return parse_bill_years(self.portal.bill_years, current)

    def statement_block(self) -> dict[str, Any]:
        return {
            "issuer": self.city.name,
            "issuer_address": list(self.city.address),
            "contact": self.city.contact,
            "website": self.city.website,
            "unit_note": f"1 Unit = 1 CCF = {self.policy.gallons_per_unit} Gallons",
        }


def parse_bill_years(spec: str, current: int) -> tuple[int, int]:
    """'2015-2017', '2015-' (to the current bill year) or '3' (the last three bill years)."""
    text = str(spec).strip()
    if m := re.fullmatch(r"(\d{4})\s*-\s*(\d{4})?", text):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else max(current, first)
    elif text.isdigit() and 0 < int(text) < 100:
        first, last = current - int(text) + 1, current
    else:
        raise ValueError(f"{spec!r} is not a bill-years filter (2015-2017, 2015- or 3)")
    if last < first:
        raise ValueError(f"bill years {spec!r}: {last} is before {first}")
    return first, last


def load_schedule(path: str | os.PathLike[str] | None = None) -> Schedule:
    """Read and check the schedule file (BILLING_SCHEDULE, else the demo city's)."""
    chosen = Path(path or os.environ.get("BILLING_SCHEDULE") or DEFAULT_SCHEDULE)
    try:
        text = chosen.read_text()
    except OSError as exc:
        raise ScheduleError(
            f"cannot read the billing schedule {chosen}: {exc.strerror}",
            {"schedule": str(exc.strerror)},
        ) from None
    try:
        raw = yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScheduleError(
            f"billing schedule {chosen} is not valid YAML: {exc}", {"schedule": "not YAML"}
        ) from None
    schedule = parse_schedule(raw, source=str(chosen))
    override = os.environ.get("BILL_YEARS")
    if override:
        try:
            parse_bill_years(override, 2000)
        except ValueError as exc:
            raise ScheduleError(str(exc), {"BILL_YEARS": str(exc)}) from None
        portal = dataclasses.replace(schedule.portal, bill_years=override)
        schedule = dataclasses.replace(schedule, portal=portal)
    return schedule


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def mapping(self, value: Any, path: str, required: bool = True) -> Mapping[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping")
            return {}
        return value

    def text(self, m: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = m.get(key, default)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.fail(f"{path}.{key}".lstrip("."), "is required")
            return ""
        return str(value).strip()

    def decimal(
        self, value: Any, path: str, *, places: int | None = None, minimum: Decimal | None = None
    ) -> Decimal:
        if isinstance(value, bool) or value is None or isinstance(value, float):
            self.fail(path, "must be a number")
            return Decimal(0)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a number")
            return Decimal(0)
        exponent = number.as_tuple().exponent
        if places is not None and isinstance(exponent, int) and exponent < -places:
            self.fail(path, f"must have at most {places} decimal places")
        if minimum is not None and number < minimum:
            self.fail(path, f"must be at least {minimum}")
        return number

    def integer(
        self, value: Any, path: str, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            self.fail(path, "must be a whole number")
            return minimum
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(path, "must be a whole number")
            return minimum
        if number != number.to_integral_value():
            self.fail(path, "must be a whole number")
            return minimum
        result = int(number)
        if result < minimum or (maximum is not None and result > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.fail(path, f"must be {bound}")
        return result


def parse_schedule(raw: Any, source: str = "schedule") -> Schedule:
    """Check a parsed schedule; every broken rule is reported with its path."""
    c = _Checker()
    top = c.mapping(raw, "(file)")
    city_m = c.mapping(top.get("city"), "city")
    address = city_m.get("address", [])
    if isinstance(address, str):
        address = [address]
    if not isinstance(address, list) or not all(isinstance(a, str) for a in address):
        c.fail("city.address", "must be a list of lines")
        address = []
    timezone = str(city_m.get("timezone") or "America/Los_Angeles")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        c.fail("city.timezone", f"{timezone!r} is not a time zone")
        timezone = "UTC"
    city = City(
        name=c.text(city_m, "name", "city"),
        address=tuple(address),
        contact=c.text(city_m, "contact", "city"),
        website=str(city_m.get("website") or ""),
        timezone=timezone,
    )

    portal_m = c.mapping(top.get("portal"), "portal", required=False)
    years = str(portal_m.get("bill_years", "2015-"))
    try:
        parse_bill_years(years, 2000)
    except ValueError as exc:
        c.fail("portal.bill_years", str(exc))
    portal = Portal(
        bill_years=years,
        fiscal_year_start_month=c.integer(
            portal_m.get("fiscal_year_start_month", 1),
            "portal.fiscal_year_start_month",
            minimum=1,
            maximum=12,
        ),
    )

    b = c.mapping(top.get("billing"), "billing", required=False)
    penalty = c.mapping(b.get("penalty"), "billing.penalty", required=False)
    policy = Policy(
        due_days=c.integer(b.get("due_days", 21), "billing.due_days", minimum=0, maximum=366),
        grace_days=c.integer(
            penalty.get("grace_days", 0), "billing.penalty.grace_days", minimum=0, maximum=366
        ),
        penalty_percent=c.decimal(
            penalty.get("percent", Decimal(0)), "billing.penalty.percent", minimum=Decimal(0)
        ),
        penalty_minimum=c.decimal(
            penalty.get("minimum", Decimal(0)),
            "billing.penalty.minimum",
            places=2,
            minimum=Decimal(0),
        ),
        estimate_missing_reads=bool(b.get("estimate_missing_reads", True)),
        bill_number_start=c.integer(
            b.get("bill_number_start", 1), "billing.bill_number_start", minimum=1
        ),
        gallons_per_unit=c.integer(
            b.get("gallons_per_unit", GALLONS_PER_CCF), "billing.gallons_per_unit", minimum=1
        ),
    )
    if policy.penalty_percent > 100:
        c.fail("billing.penalty.percent", "must be at most 100")

    services_m = c.mapping(top.get("services"), "services")
    services: dict[str, ServiceRate] = {}
    for code, spec in services_m.items():
        path = f"services.{code}"
        code = str(code).strip()
        services[code] = _service(c, code, c.mapping(spec, path), path)
    if not services and "services" not in c.errors:
        c.fail("services", "must declare at least one service code")

    if c.errors:
        detail = "; ".join(f"{k}: {v}" for k, v in c.errors.items())
        raise ScheduleError(f"billing schedule {source} is not valid: {detail}", c.errors)
    data = to_jsonable(_plain(raw))
    sha = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return Schedule(city, portal, policy, RateSchedule(services), data, sha)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _service(c: _Checker, code: str, m: Mapping[str, Any], path: str) -> ServiceRate:
    name = c.text(m, "name", path)
    fixed = None
    if m.get("fixed") is not None:
        f = c.mapping(m["fixed"], f"{path}.fixed")
        sizes = c.mapping(f.get("by_meter_size"), f"{path}.fixed.by_meter_size")
        by_size: dict[Fraction, Decimal] = {}
        labels: dict[Fraction, str] = {}
        for label, amount in sizes.items():
            where = f"{path}.fixed.by_meter_size.{label}"
            try:
                key = meter_size_key(label)
            except ValueError as exc:
                c.fail(where, str(exc))
                continue
            if key in by_size:
                c.fail(where, f"meter size {label} is listed twice")
            by_size[key] = c.decimal(amount, where, places=2, minimum=Decimal(0))
            labels[key] = str(label)
        if not sizes:
            c.fail(f"{path}.fixed.by_meter_size", "must list at least one meter size")
        fixed = FixedCharge(c.text(f, "description", f"{path}.fixed", name), by_size, labels)
    volumetric = None
    if m.get("volumetric") is not None:
        v = c.mapping(m["volumetric"], f"{path}.volumetric")
        raw_tiers = v.get("tiers")
        tiers: list[Tier] = []
        if not isinstance(raw_tiers, list) or not raw_tiers:
            c.fail(f"{path}.volumetric.tiers", "must be a list of at least one tier")
            raw_tiers = []
        previous: Decimal | None = Decimal(0)
        for i, tier in enumerate(raw_tiers):
            where = f"{path}.volumetric.tiers.{i}"
            t = c.mapping(tier, where)
            up_to_raw = t.get("up_to")
            up_to = None if up_to_raw is None else c.decimal(up_to_raw, f"{where}.up_to")
            rate = c.decimal(t.get("rate"), f"{where}.rate", minimum=Decimal(0))
            if previous is None:
                c.fail(where, "no tier may follow an unbounded tier")
            elif up_to is not None and up_to <= previous:
                c.fail(f"{where}.up_to", f"must be more than the previous bound {previous}")
            tiers.append(Tier(up_to, rate))
            previous = up_to
        if tiers and tiers[-1].up_to is not None:
            c.fail(
                f"{path}.volumetric.tiers",
                "the last tier must have no up_to (it takes all remaining units)",
            )
        volumetric = Volumetric(c.text(v, "description", f"{path}.volumetric", name), tuple(tiers))
    pass_through = []
    for i, item in enumerate(_list(c, m.get("pass_through"), f"{path}.pass_through")):
        where = f"{path}.pass_through.{i}"
        p = c.mapping(item, where)
        pass_through.append(
            PassThrough(
                c.text(p, "description", where),
                c.decimal(p.get("per_unit"), f"{where}.per_unit", minimum=Decimal(0)),
            )
        )
    flat = []
    for i, item in enumerate(_list(c, m.get("flat_fees"), f"{path}.flat_fees")):
        where = f"{path}.flat_fees.{i}"
        p = c.mapping(item, where)
        flat.append(
            FlatFee(
                c.text(p, "description", where),
                c.decimal(p.get("amount"), f"{where}.amount", places=2),
            )
        )
    estimate = m.get("estimate_units_per_day")
    rate = ServiceRate(
        code=code,
        name=name,
        unit=str(m.get("unit") or "CCF"),
        fixed=fixed,
        volumetric=volumetric,
        pass_through=tuple(pass_through),
        flat_fees=tuple(flat),
        estimate_units_per_day=(
            None
            if estimate is None
            else c.decimal(estimate, f"{path}.estimate_units_per_day", minimum=Decimal(0))
        ),
    )
    if not (fixed or volumetric or pass_through or flat):
        c.fail(path, "declares no charge (fixed, volumetric, pass_through or flat_fees)")
    return rate


def _list(c: _Checker, value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        c.fail(path, "must be a list")
        return []
    return value
