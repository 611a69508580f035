"""Leases: exactly one holder of a singleton job across processes and replicas.

On PostgreSQL a lease is a session-level advisory lock on a connection kept
open by the holder. On SQLite it is an flock on a file beside the database.
Either way the operating system or the database drops it when the holder dies,
so the job passes over to another replica with no clean-up step.
"""

from __future__ import annotations

import fcntl
import logging
import os
from typing import Any

import sqlalchemy as sa

from shared.store import EventStore, lock_key

log = logging.getLogger(__name__)


class Lease:
    """A named, exclusive, non-blocking lease on one service's store."""

    def __init__(self, store: EventStore, name: str) -> None:
        self.store = store
        self.name = name
        self._conn: Any = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return self.alive()
        if self.store.is_sqlite:
            return self._try_file()
        return self._try_pg()

    def _try_file(self) -> bool:
        db_path = self.store.url.split("///", 1)[-1]
        path = f"{db_path}.{self.name}.lease"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def _try_pg(self) -> bool:
        conn = self.store.engine.connect()
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"),
                {"k": lock_key(self.store.service, "lease", self.name)},
            ).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def alive(self) -> bool:
        """Check the lease is still ours; a lost database session means it is not."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except Exception:
            log.warning("lease %s/%s lost with its database session", self.store.service, self.name)
            self._drop()
            return False

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"),
                    {"k": lock_key(self.store.service, "lease", self.name)},
                )
                self._conn.commit()
            except Exception:  # the session is gone: so is the lock
                pass
            self._drop()

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.invalidate()
                self._conn.close()
        except Exception:
            pass
        self._conn = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
