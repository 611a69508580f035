"""Re-registration after a migration: the old portal's users and their account links."""

from __future__ import annotations

import dataclasses
from typing import Any

from services.identity.domain.errors import EmailNotVerified, UserNotFound
from services.identity.domain.legacy import LegacyUser, legacy_id_for
from services.identity.domain.user import User
from services.identity.handlers.common import Identity, legacy_candidates, legacy_view, user_row
from shared.errors import InvalidInput
from shared.uow import UnitOfWork

IMPORT_BATCH = 500


@dataclasses.dataclass(frozen=True)
class LegacyRecord:
    legacy_user_id: str
    email: str
    account_numbers: list[str]


def import_legacy_users(
    store: Any, records: list[LegacyRecord], *, actor: str = "staff:ops"
) -> dict[str, int]:
    """Load the old portal's users (idempotent: the same file twice changes nothing)."""
    counts = {"imported": 0, "updated": 0, "unchanged": 0}
    for start in range(0, len(records), IMPORT_BATCH):
        batch = records[start : start + IMPORT_BATCH]

        def work(uow: UnitOfWork, batch: list[LegacyRecord] = batch) -> dict[str, int]:
            outcome = {"imported": 0, "updated": 0, "unchanged": 0}
            for record in batch:
                legacy = uow.load(LegacyUser, legacy_id_for(record.legacy_user_id))
                result = legacy.load_from_import(
                    record.legacy_user_id, record.email, record.account_numbers
                )
                outcome[result] += 1
            return outcome

        for key, value in store.run(work, actor=actor).items():
            counts[key] += value
    return counts


def _verified_user(uow_or_conn: Any, user_id: str) -> Any:
    row = user_row(uow_or_conn, user_id)
    if row is None:
        raise UserNotFound()
    if not row.email_verified:
        raise EmailNotVerified()
    return row


def legacy_matches(ctx: Identity, *, user_id: str) -> list[dict[str, Any]]:
    """Old-portal users with the user's verified address, not yet claimed or declined."""
    with ctx.store.read() as conn:
        row = _verified_user(conn, user_id)
        return [legacy_view(r) for r in legacy_candidates(conn, row.email, row.user_id)]


def claim_legacy(ctx: Identity, *, user_id: str, legacy_ids: list[str]) -> dict[str, Any]:
    """Claim the chosen old-portal users; the other matches are declined ("not mine")."""

    def work(uow: UnitOfWork) -> list[str]:
        row = _verified_user(uow.conn, user_id)
        candidates = {r.legacy_id: r for r in legacy_candidates(uow.conn, row.email, row.user_id)}
        unknown = sorted(set(legacy_ids) - set(candidates))
        if unknown:
            raise InvalidInput(
                "Some of these are not among your matches.",
                {"legacy_ids": f"not among your matches: {', '.join(unknown)}"},
                code="legacy_not_matched",
            )
        user = uow.get(User, row.user_id)
        chosen = list(dict.fromkeys(legacy_ids))
        numbers: set[str] = set()
        for legacy_id, candidate in candidates.items():
            legacy = uow.get(LegacyUser, legacy_id)
            if legacy_id in chosen:
                legacy.claim(user.id)
                numbers.update(candidate.account_numbers or [])
            else:
                legacy.decline(user.id)
        if chosen:
            user.claim_legacy(chosen, sorted(numbers), automatic=False)
        return sorted(numbers)

    return {"restored": ctx.store.run(work)}
