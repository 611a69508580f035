"""The payments service's settings, read once from the nameko config (see config.yaml)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.payments.domain.money import AmountRules, FeePolicy, money

DEFAULT_WEBHOOK_SECRET = "whsec_sandbox_muniportal"


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def webhook_secrets(config: Mapping[str, Any]) -> list[str]:
    """The active webhook secrets: one, or two while the processor's secret is rotated."""
    raw = config.get("PROCESSOR_WEBHOOK_SECRETS")
    if raw is None:
        raw = DEFAULT_WEBHOOK_SECRET
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    secrets = [str(s).strip() for s in items if str(s).strip()]
    if not secrets or len(secrets) > 2:
        raise ValueError("PROCESSOR_WEBHOOK_SECRETS must hold one or two secrets, comma-separated")
    return secrets


@dataclasses.dataclass(frozen=True)
class Settings:
    checkout_ttl_seconds: int = 600
    amount_rules: AmountRules = AmountRules()
    fee: FeePolicy = FeePolicy()
    processor_poll_seconds: float = 60.0
    autopay_days_before: int = 5
    card_expiry_warning_days: int = 30
    city_name: str = "City of Muniportal"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        def get(key: str, default: Any) -> Any:
            value = config.get(key)
            return default if value in (None, "") else value

        return cls(
            checkout_ttl_seconds=int(get("CHECKOUT_TTL_SECONDS", 600)),
            amount_rules=AmountRules(
                min_payment=money(str(get("MIN_PAYMENT", "1.00"))),
                allow_prepayment=_bool(get("ALLOW_PREPAYMENT", False)),
                max_payment=money(str(get("MAX_PAYMENT", "10000.00"))),
            ),
            fee=FeePolicy.parse(str(get("CONVENIENCE_FEE", ""))),
            processor_poll_seconds=float(get("PROCESSOR_POLL_SECONDS", 60)),
            autopay_days_before=int(get("AUTOPAY_DAYS_BEFORE", 5)),
            card_expiry_warning_days=int(get("CARD_EXPIRY_WARNING_DAYS", 30)),
            city_name=str(get("CITY_NAME", "City of Muniportal")),
        )

    @property
    def min_payment(self) -> Decimal:
        return self.amount_rules.min_payment
