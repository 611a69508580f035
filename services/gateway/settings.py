"""The gateway's settings, read once from the nameko config."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEB_DIR = Path(__file__).resolve().parent / "web"


class SettingsError(ValueError):
    """A setting has a value the gateway cannot run with."""


@dataclasses.dataclass(frozen=True)
class Limit:
    """At most `count` requests per `window` seconds from one client address."""

    count: int
    window: float

    @classmethod
    def parse(cls, name: str, raw: Any) -> Limit:
        try:
            count, window = str(raw).split("/")
            limit = cls(int(count), float(window))
        except ValueError:
            raise SettingsError(f"{name} must be COUNT/SECONDS, e.g. 10/60, not {raw!r}") from None
        if limit.count < 1 or limit.window <= 0:
            raise SettingsError(f"{name} must allow at least one request in a positive window")
        return limit


THROTTLE_DEFAULTS = {
    "signin": "30/60",
    "registration": "10/600",
    "linking": "30/600",
    "quickpay": "30/600",
    "recovery": "10/600",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    env: str
    public_url: str
    secret: bytes
    trust_forwarded_for: bool
    max_body_bytes: int
    max_webhook_bytes: int
    cache_seconds: float
    session_cache_seconds: float
    dirty_seconds: float
    mailbox_url: str
    web_dir: Path
    throttles: dict[str, Limit]

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        env = str(config.get("ENV") or "development").lower()
        raw_secret = str(config.get("GATEWAY_SECRET") or "")
        if not raw_secret:
            if env == "production":
                raise SettingsError("GATEWAY_SECRET must be set when ENV=production")
            # Development: a fresh secret per process; CSRF tokens then last one run.
            raw_secret = secrets.token_hex(32)
        throttles = {
            name: Limit.parse(
                f"THROTTLE_{name.upper()}", config.get(f"THROTTLE_{name.upper()}") or d
            )
            for name, d in THROTTLE_DEFAULTS.items()
        }
        return cls(
            env=env,
            public_url=str(config.get("PUBLIC_URL") or "http://localhost:8000").rstrip("/"),
            secret=raw_secret.encode(),
            trust_forwarded_for=_bool(config.get("TRUST_FORWARDED_FOR")),
            max_body_bytes=int(config.get("MAX_BODY_BYTES") or 64 * 1024),
            max_webhook_bytes=int(config.get("MAX_WEBHOOK_BYTES") or 256 * 1024),
            cache_seconds=float(config.get("CACHE_SECONDS") or 30),
            session_cache_seconds=float(config.get("SESSION_CACHE_SECONDS") or 10),
            dirty_seconds=float(config.get("CACHE_DIRTY_SECONDS") or 3),
            mailbox_url=str(config.get("MAILBOX_URL") or "http://127.0.0.1:8026").rstrip("/"),
            web_dir=Path(config.get("WEB_DIR") or WEB_DIR),
            throttles=throttles,
        )


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")
