"""Settings of the identity service, read once from the nameko config (``${VAR:default}``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

HOUR = 3600
DAY = 24 * HOUR


@dataclasses.dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window` seconds."""

    limit: int
    window: int


@dataclasses.dataclass(frozen=True)
class OidcProviderConfig:
    key: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"


@dataclasses.dataclass(frozen=True)
class Settings:
    public_url: str = "http://localhost:8000"
    captcha: bool = True
    challenge_ttl: int = 600
    # Anti-automation: every registration attempt counts, whatever its outcome.
    register_per_ip: Limit = Limit(10, HOUR)
    register_per_email: Limit = Limit(3, HOUR)
    # Sign-in: failures count; the per-login limit applies alike to unknown logins.
    signin_per_ip: Limit = Limit(50, 15 * 60)
    signin_per_login: Limit = Limit(5, 60)
    lock_after_failures: int = 10
    # Recovery mails (reset, reminder, resend, unlock): per address and per IP.
    recovery_per_email: Limit = Limit(5, HOUR)
    recovery_per_ip: Limit = Limit(20, HOUR)
    # Re-authentication inside a session (change password or email).
    reauth_per_user: Limit = Limit(5, 15 * 60)
    verify_ttl: int = DAY
    reset_ttl: int = HOUR
    unlock_ttl: int = DAY
    session_idle: int = 30 * 60
    session_absolute: int = 12 * HOUR
    remember_me: int = 30 * DAY
    # authenticate() writes last_seen_at at most this often, so the hot path stays a read.
    session_touch_interval: int = 60
    oidc_flow_ttl: int = 600
    # OWASP's argon2id profile (19 MiB, 2 passes, 1 lane): about 0.1 s on a small server,
    # and 19 MiB per concurrent sign-in rather than 64 (RFC 9106's low-memory profile).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    oidc_providers: tuple[OidcProviderConfig, ...] = ()
    mail_attempts: int = 5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        d = cls()

        def num(key: str, default: int) -> int:
            value = config.get(key)
            if value in (None, ""):
                return default
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"identity config {key} must be a whole number, not {value!r}"
                ) from None

        def limit(prefix: str, default: Limit) -> Limit:
            return Limit(
                num(f"{prefix}_LIMIT", default.limit), num(f"{prefix}_WINDOW", default.window)
            )

        captcha = str(config.get("CAPTCHA") or "on").strip().lower()
        if captcha not in ("on", "off", "true", "false", "1", "0"):
            raise ValueError(f"identity config CAPTCHA must be on or off, not {captcha!r}")
        return cls(
            public_url=str(config.get("PUBLIC_URL") or d.public_url).rstrip("/"),
            captcha=captcha in ("on", "true", "1"),
            challenge_ttl=num("CHALLENGE_TTL", d.challenge_ttl),
            register_per_ip=limit("REGISTER_IP", d.register_per_ip),
            register_per_email=limit("REGISTER_EMAIL", d.register_per_email),
            signin_per_ip=limit("SIGNIN_IP", d.signin_per_ip),
            signin_per_login=limit("SIGNIN_LOGIN", d.signin_per_login),
            lock_after_failures=num("LOCK_AFTER_FAILURES", d.lock_after_failures),
            recovery_per_email=limit("RECOVERY_EMAIL", d.recovery_per_email),
            recovery_per_ip=limit("RECOVERY_IP", d.recovery_per_ip),
            reauth_per_user=limit("REAUTH", d.reauth_per_user),
            verify_ttl=num("VERIFY_TTL", d.verify_ttl),
            reset_ttl=num("RESET_TTL", d.reset_ttl),
            unlock_ttl=num("UNLOCK_TTL", d.unlock_ttl),
            session_idle=num("SESSION_IDLE", d.session_idle),
            session_absolute=num("SESSION_ABSOLUTE", d.session_absolute),
            remember_me=num("REMEMBER_ME", d.remember_me),
            session_touch_interval=num("SESSION_TOUCH_INTERVAL", d.session_touch_interval),
            oidc_flow_ttl=num("OIDC_FLOW_TTL", d.oidc_flow_ttl),
            argon2_time_cost=num("ARGON2_TIME_COST", d.argon2_time_cost),
            argon2_memory_kib=num("ARGON2_MEMORY_KIB", d.argon2_memory_kib),
            argon2_parallelism=num("ARGON2_PARALLELISM", d.argon2_parallelism),
            oidc_providers=parse_providers(config.get("OIDC_PROVIDERS")),
            mail_attempts=num("MAIL_ATTEMPTS", d.mail_attempts),
        )


def parse_providers(raw: Any) -> tuple[OidcProviderConfig, ...]:
    """Providers, a YAML list or a JSON string: [{key, name, issuer, client_id, client_secret}]."""
    if raw in (None, "", "[]"):
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"identity config OIDC_PROVIDERS is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError("identity config OIDC_PROVIDERS must be a list of providers")
    out = []
    seen = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"identity config OIDC_PROVIDERS[{i}] must be a mapping")
        missing = [k for k in ("key", "issuer", "client_id", "client_secret") if not item.get(k)]
        if missing:
            raise ValueError(f"identity config OIDC_PROVIDERS[{i}] lacks {', '.join(missing)}")
        key = str(item["key"]).strip().lower()
        if key in seen:
            raise ValueError(f"identity config OIDC_PROVIDERS names {key!r} twice")
        seen.add(key)
        out.append(
            OidcProviderConfig(
                key=key,
                name=str(item.get("name") or key.title()),
                issuer=str(item["issuer"]).strip(),
                client_id=str(item["client_id"]),
                client_secret=str(item["client_secret"]),
                scopes=str(item.get("scopes") or "openid email profile"),
            )
        )
    return tuple(out)
