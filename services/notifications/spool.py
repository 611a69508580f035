"""The secure spool: secret links waiting for delivery, encrypted at rest, purged after.

Why a table and not memory: "nothing is lost when the SMTP server is down for
ten minutes" must hold across a restart or a redeploy too, and a secret kept
only in one process's memory dies with it. So the link is written, in the same
transaction as its `EmailQueued` event, to this table, encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) under a key from config (`MAIL_SPOOL_KEY`). The row
is deleted when the email is sent or given up, and at the latest when it
expires (`MAIL_SECRET_TTL`, 24 h by default, the longest token lifetime).

This table is not a projection: it is never rebuilt, never replayed and never
published. The event log, projections and log lines only ever see the
message id.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection, Engine

from services.notifications.settings import SettingsError, is_production

log = logging.getLogger(__name__)

metadata = sa.MetaData()
secure_spool = sa.Table(
    "secure_spool",
    metadata,
    sa.Column("message_id", sa.String(36), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


class SecretUnavailable(Exception):
    """The secret link is gone (expired, purged) or cannot be decrypted with our keys."""


def ensure_table(engine: Engine) -> None:
    metadata.create_all(engine, checkfirst=True)


def load_cipher(config: Mapping[str, Any]) -> MultiFernet:
    """MAIL_SPOOL_KEY: one Fernet key, or several separated by commas (the first encrypts),
    so keys can be rotated. In development a key is made once under var/."""
    raw = str(config.get("MAIL_SPOOL_KEY") or "").strip()
    if not raw:
        if is_production(config):
            raise SettingsError(
                "MAIL_SPOOL_KEY must be set when ENV=production "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
            )
        raw = _dev_key()
    keys = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            keys.append(Fernet(part))
        except (ValueError, TypeError):
            raise SettingsError("MAIL_SPOOL_KEY holds a malformed Fernet key") from None
    if not keys:
        raise SettingsError("MAIL_SPOOL_KEY holds no key")
    return MultiFernet(keys)


def _dev_key() -> str:
    path = Path(os.environ.get("MUNIPORTAL_VAR", "var")) / "notifications-spool.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(Fernet.generate_key().decode())
    return path.read_text().strip()


class Spool:
    """Put, take and purge secret links, inside the caller's transaction."""

    def __init__(self, cipher: MultiFernet, ttl_seconds: float) -> None:
        self.cipher = cipher
        self.ttl = dt.timedelta(seconds=ttl_seconds)

    def put(self, conn: Connection, message_id: str, secret: str, now: dt.datetime) -> None:
        token = self.cipher.encrypt(secret.encode()).decode()
        conn.execute(
            secure_spool.insert().values(
                message_id=message_id, ciphertext=token, created_at=now, expires_at=now + self.ttl
            )
        )

    def get(self, conn: Connection, message_id: str, now: dt.datetime) -> str:
        row = conn.execute(
            sa.select(secure_spool.c.ciphertext, secure_spool.c.expires_at).where(
                secure_spool.c.message_id == message_id
            )
        ).first()
        if row is None:
            raise SecretUnavailable("the link is no longer held")
        expires_at = row.expires_at
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        if expires_at <= now:
            raise SecretUnavailable("the link expired before it could be delivered")
        try:
            return self.cipher.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnavailable("the link cannot be decrypted with MAIL_SPOOL_KEY") from None

    @staticmethod
    def has(conn: Connection, message_id: str) -> bool:
        query = sa.select(sa.func.count()).where(secure_spool.c.message_id == message_id)
        return bool(conn.execute(query).scalar())

    @staticmethod
    def purge(conn: Connection, message_id: str) -> None:
        conn.execute(secure_spool.delete().where(secure_spool.c.message_id == message_id))

    @staticmethod
    def expired(conn: Connection, now: dt.datetime, limit: int = 500) -> list[str]:
        query = (
            sa.select(secure_spool.c.message_id)
            .where(secure_spool.c.expires_at <= now)
            .order_by(secure_spool.c.expires_at)
            .limit(limit)
        )
        return [row.message_id for row in conn.execute(query)]

    @staticmethod
    def count(conn: Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(secure_spool)).scalar())
