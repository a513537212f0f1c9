"""Which Virtual Extensions a file's rows may take, reading only what the file needs.

A tenant's extensions are those of its users and of its imports' rows still to be created.
Both are looked up by value through their indexes (uq_users_tenant_extension and
ix_import_rows_pending_extension), a batch of values per statement, so a file of 500 rows
costs the same in a tenant of ten users or of 200,000. Each batch is one statement: a chunk of
another import committing meanwhile moves its rows from pending to users, and one statement
sees each value on exactly one side (READ COMMITTED).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from shared.models import ImportJob, ImportRow, RowStatus, Tenant, User

BATCH = 500  # values per statement: keeps IN lists short for every database


def taken_among(session: Session, tenant_id: int, values: Iterable[str]) -> set[str]:
    """Which of `values` the tenant's users or pending import rows hold."""
    wanted = sorted(set(values))
    taken: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        users = select(User.extension.label("extension")).where(
            User.tenant_id == tenant_id, User.extension.in_(batch)
        )
        pending = (
            select(ImportRow.extension.label("extension"))
            .join(ImportJob, ImportJob.id == ImportRow.job_id)
            .where(
                ImportRow.extension.in_(batch),
                ImportRow.status == RowStatus.PENDING,
                ImportJob.tenant_id == tenant_id,
            )
        )
        taken |= set(session.scalars(union(users, pending)))
    return taken


def lowest_free(session: Session, tenant: Tenant, count: int, reserved: set[str]) -> list[str]:
    """The `count` lowest free numbers of the tenant's range, beside `reserved` (the file's own);
    fewer when the range runs out.

    Walks the range from its low end a batch of numbers at a time: cheap while the free numbers
    are near the low end or the range is sparse. A range filled densely from its low end costs a
    statement per BATCH numbers taken below the first free one.
    """
    found: list[str] = []
    low = tenant.extension_min
    while len(found) < count and low <= tenant.extension_max:
        candidates = [str(n) for n in range(low, min(low + BATCH, tenant.extension_max + 1))]
        low += BATCH
        taken = taken_among(session, tenant.id, candidates) | reserved
        found += [c for c in candidates if c not in taken][: count - len(found)]
    return found
