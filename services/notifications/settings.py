"""Settings of the notifications service, read from its nameko config with safe defaults."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from services.notifications.domain.message import RetryPolicy

HERE = Path(__file__).resolve().parent
SECURITY_MODES = ("none", "starttls", "tls")
DEV_MAILBOX = ("127.0.0.1", 8025)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _text(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key)
    if value is None or value == "":
        return default
    return str(value)


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a number, not {value!r}") from None
    if number < 0:
        raise SettingsError(f"{key} must not be negative")
    return number


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key} must be true or false, not {value!r}")


def is_production(config: Mapping[str, Any]) -> bool:
    return _text(config, "ENV", os.environ.get("ENV", "development")).lower() == "production"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none | starttls | tls
    user: str = ""
    password: str = dataclasses.field(default="", repr=False)
    timeout: float = 15.0
    verify: bool = True
    ca_file: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        host = _text(config, "SMTP_HOST")
        if not host:
            if is_production(config):
                raise SettingsError("SMTP_HOST must be set when ENV=production")
            host, default_port = DEV_MAILBOX  # `make run` starts the local mailbox there
        else:
            default_port = 0
        security = _text(config, "SMTP_SECURITY").lower()
        if not security:
            # Never send credentials or residents' mail in clear beyond this machine.
            security = "none" if _is_loopback(host) else "starttls"
        if security not in SECURITY_MODES:
            raise SettingsError(
                f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}"
            )
        if not default_port:
            default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        port = int(_number(config, "SMTP_PORT", default_port))
        if not 0 < port < 65536:
            raise SettingsError(f"SMTP_PORT must be between 1 and 65535, not {port}")
        user = _text(config, "SMTP_USER")
        password = _text(config, "SMTP_PASSWORD")
        if user and security == "none" and not _is_loopback(host):
            raise SettingsError(
                "SMTP_USER is set but SMTP_SECURITY is none: the password would cross the "
                "network in clear; use starttls or tls"
            )
        return cls(
            host=host,
            port=port,
            security=security,
            user=user,
            password=password,
            timeout=_number(config, "SMTP_TIMEOUT", 15.0) or 15.0,
            verify=_flag(config, "SMTP_VERIFY", True),
            ca_file=_text(config, "SMTP_CA_FILE"),
        )


@dataclasses.dataclass(frozen=True)
class City:
    id: str
    name: str
    sender: str
    reply_to: str = ""
    department: str = ""
    address: tuple[str, ...] = ()
    phone: str = ""
    after_hours_phone: str = ""
    email: str = ""
    hours: tuple[str, ...] = ()
    website: str = ""
    timezone: str = "UTC"

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    def as_context(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _lines(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(";") if part.strip())


def load_cities(config: Mapping[str, Any]) -> tuple[str, dict[str, City]]:
    """(default city id, cities by id) from CITIES_FILE, with CITY_* overrides on the default."""
    path = Path(_text(config, "CITIES_FILE") or HERE / "cities.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise SettingsError(f"CITIES_FILE {path} cannot be read: {exc.strerror}") from None
    entries = raw.get("cities") or {}
    default = _text(config, "CITY", str(raw.get("default") or next(iter(entries), "")))
    if default not in entries:
        entries[default] = {}
    overrides = {
        "name": "CITY_NAME",
        "sender": "MAIL_FROM",
        "reply_to": "MAIL_REPLY_TO",
        "phone": "CITY_PHONE",
        "email": "CITY_EMAIL",
        "address": "CITY_ADDRESS",
        "hours": "CITY_HOURS",
        "website": "CITY_WEBSITE",
        "timezone": "CITY_TIMEZONE",
    }
    for field, key in overrides.items():
        if _text(config, key):
            entries[default][field] = config[key]
    cities = {}
    for city_id, entry in entries.items():
        name = str(entry.get("name") or "").strip()
        sender = str(entry.get("sender") or "").strip()
        if not name or "@" not in parseaddr(sender)[1]:
            raise SettingsError(f"city {city_id!r} needs a name and a sender email address")
        cities[str(city_id)] = City(
            id=str(city_id),
            name=name,
            sender=sender,
            reply_to=str(entry.get("reply_to") or ""),
            department=str(entry.get("department") or ""),
            address=_lines(entry.get("address")),
            phone=str(entry.get("phone") or ""),
            after_hours_phone=str(entry.get("after_hours_phone") or ""),
            email=str(entry.get("email") or ""),
            hours=_lines(entry.get("hours")),
            website=str(entry.get("website") or ""),
            timezone=str(entry.get("timezone") or "UTC"),
        )
    return default, cities


# Pages of the portal that emails link to (paths under PUBLIC_URL); see docs/notifications.md.
LINK_PATHS = {
    "home": "/",
    "sign_in": "/sign-in",
    "forgot_password": "/forgot-password",
    "forgot_user_id": "/forgot-user-id",
    "settings": "/settings",
    "accounts": "/settings/links",
    "account": "/accounts/{account_number}",
    "bill": "/bills/{bill_number}",
    "payments": "/payments",
    "cart": "/cart",
    "autopay": "/accounts/{account_number}/autopay",
    "address": "/accounts/{account_number}/address",
    "preferences": "/accounts/{account_number}/preferences",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    public_url: str
    retry: RetryPolicy
    poll_interval: float
    secret_ttl: float
    default_city: str
    cities: dict[str, City]
    production: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        default_city, cities = load_cities(config)
        retry = RetryPolicy(
            max_attempts=max(1, int(_number(config, "MAIL_MAX_ATTEMPTS", 8))),
            base_seconds=_number(config, "MAIL_RETRY_BASE", 30.0),
            max_seconds=_number(config, "MAIL_RETRY_MAX", 1800.0),
            jitter=min(_number(config, "MAIL_RETRY_JITTER", 0.1), 0.5),
        )
        return cls(
            public_url=_text(config, "PUBLIC_URL", "http://localhost:8000").rstrip("/"),
            retry=retry,
            poll_interval=_number(config, "MAIL_POLL_INTERVAL", 1.0) or 1.0,
            secret_ttl=_number(config, "MAIL_SECRET_TTL", 86400.0),
            default_city=default_city,
            cities=cities,
            production=is_production(config),
        )

    def city(self, city_id: str | None) -> City:
        return self.cities.get(city_id or "") or self.cities[self.default_city]

    def link(self, name: str, **params: Any) -> str:
        return self.public_url + LINK_PATHS[name].format(**params)

    def today(self) -> dt.date:
        """The date in the default city (announcements start and end on the city's days)."""
        try:
            zone = ZoneInfo(self.city(None).timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        return dt.datetime.now(zone).date()
