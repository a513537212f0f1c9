"""Step 4 of an import: duplicates, generated extensions and one result row per data row.

Runs under the tenant's row lock, so two imports of one tenant allocate one after the other;
chunks of other imports still commit meanwhile, which is why each batch of taken extensions is
read in one statement (see shared/imports/extensions.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from shared.accounts.access_stamp import NEUTRAL
from shared.imports import extensions
from shared.imports.row_check import CheckedFile, CheckedRow, already_allocated
from shared.imports.scheduling import add_work, waiting
from shared.mapping.fields import UNIQUE, Field
from shared.mapping.validation import SIP_DEVICE, SIP_URI, RowProblem
from shared.models import ImportJob, ImportRow, JobStatus, RowStatus, Tenant, User, WorkKind, utcnow

log = logging.getLogger(__name__)
IN_BATCH = 500  # keeps IN lists short for every database
MIN_CHUNK = 10
CHUNKS_PER_PROCESS = 4


@dataclass(frozen=True)
class Allocation:
    """What allocation leaves for creation: the chunks to create (none for a dry run)."""

    chunks: list[int]
    rows: int


def lock_tenant(session: Session, tenant_id: int) -> None:
    """Take the tenant's row lock (PostgreSQL) or the write lock (SQLite) until the transaction ends."""
    # A no-op write: the lock is what matters, so allocations of one tenant run one after the other.
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(extension_min=Tenant.extension_min)
        .execution_options(**{NEUTRAL: True})  # changes nobody's access
    )


def chunk_count(rows: int, max_chunk: int, processes: int) -> int:
    """How many chunks a job's rows make: enough that every worker process stays busy to the end
    (a few chunks each), each at least MIN_CHUNK rows so per-chunk overhead stays small, and at
    most max_chunk rows (one transaction)."""
    if rows <= 0:
        return 0
    wanted = min(-(-rows // MIN_CHUNK), processes * CHUNKS_PER_PROCESS)
    return max(wanted, -(-rows // max_chunk), 1)


@dataclass(frozen=True)
class ChunkPlan:
    """Which chunk each of a job's rows to create goes to.

    `parts` lists (chunks, width) in row order, widths in quarters of a full chunk: full chunks
    first, then the rows of one chunk a process in half chunks, and the last of those again
    in quarter chunks (as far as MIN_CHUNK allows). The processes' chunks never end together
    (a process that shares its core with the web or Redis runs behind), and small last chunks
    let the one ahead take more of the end, so neither waits long for the other; the fair
    share of other tenants is bounded by the full chunks. Sizes within a part differ by one
    row at most.
    """

    rows: int
    parts: tuple[tuple[int, int], ...]

    @classmethod
    def make(cls, rows: int, max_chunk: int, processes: int, split_end: bool = True) -> ChunkPlan:
        """`split_end` False: other work waits, so the processes will not wait for each other at
        this job's end; its chunks stay whole (fewer chunks, less overhead), and a job of at most
        max_chunk rows is one chunk."""
        if not split_end and 0 < rows <= max_chunk:
            # Other work keeps the processes busy, so fair share gives this job about one at a
            # time: split, its chunks would run one after the other, each paying the overhead.
            return cls(rows, ((1, 4),))
        chunks = chunk_count(rows, max_chunk, processes)
        last = min(processes, chunks)  # one chunk a process is split up
        if chunks == 0 or not split_end or rows < 2 * chunks * MIN_CHUNK:
            return cls(rows, ((chunks, 4),) if chunks else ())  # whole: or halves would be too small
        if rows < 4 * chunks * MIN_CHUNK:
            return cls(rows, ((chunks - last, 4), (2 * last, 2)))
        return cls(rows, ((chunks - last, 4), (last, 2), (2 * last, 1)))

    @property
    def chunks(self) -> int:
        return sum(count for count, _ in self.parts)

    @cached_property
    def _units(self) -> int:
        return sum(count * width for count, width in self.parts)

    def chunk_of(self, position: int) -> int:
        """The chunk of the row at `position` (0-based, in row order) among the rows to create."""
        unit = position * self._units // self.rows
        first = 0
        for count, width in self.parts:
            if unit < count * width:
                return first + unit // width
            unit -= count * width
            first += count
        raise ValueError(f"row {position} is beyond the plan's {self.rows} rows")


def allocate(
    session: Session, checked: CheckedFile, max_chunk: int, processes: int | None
) -> Allocation | None:
    """Write every row's outcome and reserve generated extensions, in chunks for `processes` worker
    processes (None: as many as this host has cores); None when done before."""
    processes = processes or os.cpu_count() or 1
    lock_tenant(session, checked.tenant_id)
    job = session.get(ImportJob, checked.job_id)
    if job is None or job.status != JobStatus.VALIDATING or already_allocated(session, job.id):
        return None  # a redelivered message: the first run's rows stand
    tenant = session.get(Tenant, checked.tenant_id)
    taken = extensions.taken_among(
        session, tenant.id, {r.draft["extension"] for r in checked.rows if r.draft["extension"]}
    )
    outcomes = _duplicates(session, tenant.id, checked.rows, taken)
    _generate_extensions(session, tenant, checked.rows, outcomes)
    to_create = sum(1 for status, _ in outcomes.values() if status == RowStatus.PENDING)
    # Files back to back: the next one's units already wait, and a process goes on with them.
    split_end = not waiting(session)
    plan = ChunkPlan.make(0 if checked.dry_run else to_create, max_chunk, processes, split_end)
    sizes = [0] * plan.chunks
    pending = 0
    outcome_rows: list[dict[str, Any]] = []
    for row in checked.rows:
        status, problems = outcomes[row.number]
        chunk = None
        if status == RowStatus.PENDING:
            if checked.dry_run:
                status = RowStatus.VALID
            else:
                chunk = plan.chunk_of(pending)
                sizes[chunk] += 1
            pending += 1
        keep = status in (RowStatus.PENDING, RowStatus.VALID)
        outcome_rows.append(
            {
                "job_id": job.id,
                "row_number": row.number,
                "chunk": chunk,
                "status": status,
                "messages": [p.message for p in problems],
                "problem_fields": [p.field for p in problems] or None,
                "username": row.draft["username"] or None,
                "email": row.draft["email"] or None,
                "extension": row.draft["extension"],
                "sip": row.draft[SIP_DEVICE] or row.draft[SIP_URI],
                "data": row.draft if keep else None,
            }
        )
    # One bulk INSERT (executemany): no ORM object per row, about a third of the time of a flush.
    if outcome_rows:
        session.execute(insert(ImportRow), outcome_rows)
    for number, rows in enumerate(sizes):
        add_work(session, job, WorkKind.CREATE, number, rows)
    job.total, job.updated_at = len(checked.rows), utcnow()
    if checked.dry_run:
        job.status, job.finished_at = JobStatus.SUCCEEDED, utcnow()
    else:
        job.status = JobStatus.RUNNING
    log.info(
        "allocated job=%s rows=%d chunks=%d dry_run=%s", job.id, len(checked.rows), plan.chunks, job.dry_run
    )
    return Allocation(list(range(plan.chunks)), len(checked.rows))


def existing_values(session: Session, tenant_id: int, f: Field, values: set[str]) -> set[str]:
    """Which of the values the tenant's users already hold (case-insensitive)."""
    column = getattr(User, f.attribute)
    found: set[str] = set()
    batch = sorted(values)
    for start in range(0, len(batch), IN_BATCH):
        query = select(column).where(
            User.tenant_id == tenant_id, func.lower(column).in_(batch[start : start + IN_BATCH])
        )
        found |= {str(v).lower() for v in session.scalars(query)}
    return found


def _duplicates(
    session: Session, tenant_id: int, rows: list[CheckedRow], taken_exts: set[str]
) -> dict[int, tuple[RowStatus, list[RowProblem]]]:
    """Each row's state: error (any rule broken), duplicate (uniqueness only) or pending."""
    taken: dict[str, set[str]] = {}
    for f in UNIQUE:
        values = {r.draft[f.attribute].lower() for r in rows if r.draft[f.attribute]}
        taken[f.key] = taken_exts if f.key == "extension" else existing_values(session, tenant_id, f, values)
    first_seen: dict[tuple[str, str], int] = {}
    outcomes: dict[int, tuple[RowStatus, list[RowProblem]]] = {}
    for row in rows:
        dups: list[RowProblem] = []
        for f in UNIQUE:
            value = row.draft[f.attribute]
            if not value:
                continue
            if value.lower() in taken[f.key]:
                dups.append(RowProblem(f.key, f"{f.label} {f.shown(value)} {f.taken}"))
            elif (f.key, value.lower()) in first_seen:
                earlier = first_seen[(f.key, value.lower())]
                dups.append(RowProblem(f.key, f"{f.label} {f.shown(value)} repeats row {earlier}"))
            else:
                first_seen[(f.key, value.lower())] = row.number
        if row.problems:
            outcomes[row.number] = (RowStatus.ERROR, row.problems + dups)
        elif dups:
            outcomes[row.number] = (RowStatus.DUPLICATE, dups)
        else:
            outcomes[row.number] = (RowStatus.PENDING, [])
    return outcomes


def _generate_extensions(
    session: Session,
    tenant: Tenant,
    rows: list[CheckedRow],
    outcomes: dict[int, tuple[RowStatus, list[RowProblem]]],
) -> None:
    """Give pending rows without an extension the lowest free numbers of the range, in row order."""
    wanting = [r for r in rows if r.draft["extension"] is None and outcomes[r.number][0] == RowStatus.PENDING]
    if not wanting:
        return
    given = {
        r.draft["extension"]
        for r in rows
        if r.draft["extension"] and outcomes[r.number][0] == RowStatus.PENDING
    }
    free = extensions.lowest_free(session, tenant, len(wanting), given)
    span = f"{tenant.extension_min}-{tenant.extension_max}"
    for row, extension in zip(wanting, free + [None] * (len(wanting) - len(free)), strict=True):
        if extension is None:
            outcomes[row.number] = (
                RowStatus.ERROR,
                [RowProblem("extension", f"No free Virtual Extension is left in the range {span}")],
            )
        else:
            row.draft["extension"] = extension
