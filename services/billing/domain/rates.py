"""The rate engine: charge lines for one service from its schedule, meter size and usage.

Rounding: each charge line is computed exactly, then rounded half up to the
cent once (tiers are summed before rounding, never rounded one by one).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

from services.billing.domain.values import ZERO, meter_size_key, round_money, units_str
from shared.errors import InvalidInput


class RateError(InvalidInput):
    """An account cannot be rated (no rate for its meter size, no usage...)."""


@dataclasses.dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # inclusive upper bound of cumulative usage; None = no bound
    rate: Decimal


@dataclasses.dataclass(frozen=True)
class FixedCharge:
    description: str
    by_meter_size: dict[Fraction, Decimal]
    labels: dict[Fraction, str]


@dataclasses.dataclass(frozen=True)
class Volumetric:
    description: str
    tiers: tuple[Tier, ...]


@dataclasses.dataclass(frozen=True)
class PassThrough:
    description: str
    per_unit: Decimal


@dataclasses.dataclass(frozen=True)
class FlatFee:
    description: str
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class ChargeLine:
    service_code: str
    description: str
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class ServiceRate:
    code: str
    name: str
    unit: str = "CCF"
    fixed: FixedCharge | None = None
    volumetric: Volumetric | None = None
    pass_through: tuple[PassThrough, ...] = ()
    flat_fees: tuple[FlatFee, ...] = ()
    estimate_units_per_day: Decimal | None = None

    @property
    def metered(self) -> bool:
        """A metered service needs a read (usage) to be billed."""
        return self.volumetric is not None or bool(self.pass_through)

    def fixed_amount(self, meter_size: object) -> Decimal:
        if self.fixed is None:
            return ZERO
        if meter_size in (None, ""):
            raise RateError(
                f"service {self.code} has a fixed charge by meter size but the account has "
                "no meter size",
                {"meter_size": "is required for a fixed charge by meter size"},
                code="no_meter_size",
            )
        try:
            key = meter_size_key(meter_size)
        except ValueError as exc:
            raise RateError(str(exc), {"meter_size": str(exc)}, code="bad_meter_size") from None
        if key not in self.fixed.by_meter_size:
            known = ", ".join(self.fixed.labels[k] for k in sorted(self.fixed.by_meter_size))
            raise RateError(
                f"service {self.code} has no fixed charge for meter size {meter_size} "
                f"(sizes: {known})",
                {"meter_size": f"no fixed charge for {meter_size}"},
                code="no_rate_for_meter_size",
            )
        return self.fixed.by_meter_size[key]

    def charge_lines(
        self, *, meter_size: object = None, usage: Decimal | None = None
    ) -> list[ChargeLine]:
        """The bill lines of this service for one period."""
        lines: list[ChargeLine] = []
        if self.fixed is not None:
            lines.append(
                ChargeLine(self.code, self.fixed.description, self.fixed_amount(meter_size))
            )
        if self.metered:
            if usage is None:
                raise RateError(
                    f"service {self.code} is metered and needs a read",
                    {"usage": "is required for a metered service"},
                    code="no_usage",
                )
            if usage < 0:
                raise RateError(
                    f"usage {units_str(usage)} is negative",
                    {"usage": "must not be negative"},
                    code="negative_usage",
                )
            if self.volumetric is not None:
                lines.append(
                    ChargeLine(
                        self.code,
                        self.volumetric.description,
                        round_money(tiered_charge(self.volumetric.tiers, usage)),
                    )
                )
            for item in self.pass_through:
                lines.append(
                    ChargeLine(self.code, item.description, round_money(item.per_unit * usage))
                )
        for fee in self.flat_fees:
            lines.append(ChargeLine(self.code, fee.description, fee.amount))
        return lines


def tiered_charge(tiers: tuple[Tier, ...] | list[Tier], usage: Decimal) -> Decimal:
    """Each tier's rate applies to the units between the previous bound and its own."""
    total = Decimal(0)
    lower = Decimal(0)
    for tier in tiers:
        upper = usage if tier.up_to is None else min(usage, tier.up_to)
        if upper > lower:
            total += (upper - lower) * tier.rate
        if tier.up_to is None or usage <= tier.up_to:
            return total
        lower = tier.up_to
    return total  # validated schedules end with an unbounded tier


@dataclasses.dataclass(frozen=True)
class RateSchedule:
    services: dict[str, ServiceRate]

    def get(self, code: str) -> ServiceRate | None:
        return self.services.get(code)
