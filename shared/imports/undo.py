"""Undo an import: remove the users it created that still exist, chunk by chunk, within a window.

The request takes the import's row lock (jobs.lock_job_row), checks that it may be undone and moves
it to `undoing` in the same transaction (so it cannot race the import's last chunk, nor a second
request), destroys its temporary passwords and queues one unit of
work per chunk (shared/imports/scheduling.py). Each unit deletes its chunk's users in one transaction and
marks their rows `undone`; a unit run twice finds nothing left to delete. The last unit to find no
user left moves the import to `undone` and records who asked, with the count.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.orm import Session

from shared.audit import record
from shared.errors import Conflict
from shared.imports.jobs import destroy_passwords, get_job, lock_job_row
from shared.imports.scheduling import add_work
from shared.metrics import count_job_end
from shared.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    ImportJob,
    ImportRow,
    JobStatus,
    RowStatus,
    User,
    WorkItem,
    WorkKind,
    utcnow,
)
from shared.settings import Settings
from shared.timestamps import aware

log = logging.getLogger(__name__)
CODE = "undo_not_allowed"
CREATED_ONCE = (RowStatus.CREATED, RowStatus.UNDONE)


def _still_created(job_id: str) -> tuple[ColumnElement[bool], ...]:
    """Rows whose user the import created and that may still exist (SET NULL clears the others)."""
    return (ImportRow.job_id == job_id, ImportRow.status == RowStatus.CREATED, ImportRow.user_id.is_not(None))


def queue_chunks(session: Session, job: ImportJob, kind: WorkKind) -> int:
    """Queue one unit of `kind` for each chunk that still has users of the import; returns how many."""
    session.execute(delete(WorkItem).where(WorkItem.job_id == job.id, WorkItem.kind == kind))
    chunks = session.execute(
        select(ImportRow.chunk, func.count())
        .where(*_still_created(job.id))
        .group_by(ImportRow.chunk)
        .order_by(ImportRow.chunk)
    ).all()
    for chunk, rows in chunks:
        add_work(session, job, kind, chunk or 0, rows)
    return len(chunks)


def remaining_users(session: Session, job_id: str) -> int:
    """How many users of the import still exist."""
    return session.scalar(select(func.count()).select_from(ImportRow).where(*_still_created(job_id))) or 0


def _refusal(settings: Settings, job: ImportJob) -> str | None:
    """Why this import cannot be undone now, or None."""
    if job.dry_run:
        return "A validation created no users; there is nothing to undo."
    if job.status in ACTIVE_STATES:
        return "The import is still running; cancel it or wait for it to end, then undo it."
    if job.status == JobStatus.UNDONE:
        return "This import was already undone."
    if job.status == JobStatus.UNDOING and job.error is None:
        return "This import is already being undone."
    if job.regenerating:
        return "New passwords are being made for this import; undo it once they are ready."
    if job.status in FINAL_STATES and job.finished_at is not None:
        deadline = aware(job.finished_at) + timedelta(hours=settings.undo_window_hours)
        if utcnow() > deadline:
            return (
                f"An import can be undone for {settings.undo_window_hours} hours after it ends; "
                f"this one ended at {aware(job.finished_at).strftime('%Y-%m-%d %H:%M')} UTC."
            )
    return None


def request_undo(
    session: Session, settings: Settings, tenant_id: int, actor_id: int | None, job_id: str
) -> tuple[ImportJob, int]:
    """Start removing the import's users; returns the job and how many units of work were queued.

    Conflict (409 undo_not_allowed) while it runs, after the window, or when undone or undoing
    already. An undo stopped by an error (`error` set while undoing) is taken up again.
    """
    get_job(session, tenant_id, job_id)  # another tenant's: 404 before anything is locked
    lock_job_row(
        session, job_id
    )  # the job's row lock first: its last chunk or another request waits, or we do
    job = session.get(ImportJob, job_id)
    session.refresh(job)
    reason = _refusal(settings, job)
    if reason:
        raise Conflict(CODE, reason)
    if not session.scalar(
        select(exists().where(ImportRow.job_id == job.id, ImportRow.status.in_(CREATED_ONCE)))
    ):
        raise Conflict(CODE, "This import created no users; there is nothing to undo.")
    users = remaining_users(session, job.id)
    job.status, job.error = JobStatus.UNDOING, None
    job.undo_by_id, job.undo_requested_at = actor_id, utcnow()
    destroy_passwords(session, job)
    units = queue_chunks(session, job, WorkKind.UNDO)
    record(session, tenant_id, actor_id, "import.undo_requested", job.id, {"users": users})
    if units == 0:
        finish_undo(session, job.id)
    log.info("undo requested job=%s users=%d units=%d", job.id, users, units)
    return job, units


def undo_chunk(session: Session, job_id: str, chunk: int) -> int:
    """Delete the chunk's users that still exist and mark their rows undone; returns how many went."""
    lock_job_row(session, job_id)  # first: a rerun then sees what this chunk's first run committed
    job = session.get(ImportJob, job_id)
    if job is None or job.status != JobStatus.UNDOING:
        return 0
    rows = session.scalars(
        select(ImportRow)
        .where(*_still_created(job_id), ImportRow.chunk == chunk)
        .order_by(ImportRow.row_number)
    ).all()
    ids = [row.user_id for row in rows]
    # Only users this import made: a user id is never reused for another user's row, but be sure.
    existing = set(
        session.scalars(
            select(User.id).where(User.id.in_(ids), User.import_id == job_id, User.tenant_id == job.tenant_id)
        )
    )
    if existing:
        session.execute(
            delete(User).where(User.id.in_(existing)).execution_options(synchronize_session=False)
        )
    for row in rows:
        if row.user_id in existing:
            row.status = RowStatus.UNDONE
        row.user_id = None
    log.info(
        "undo chunk job=%s chunk=%d removed=%d gone_before=%d",
        job_id,
        chunk,
        len(existing),
        len(rows) - len(existing),
    )
    return len(existing)


def finish_undo(session: Session, job_id: str) -> bool:
    """Mark the import undone once none of its users is left; one conditional UPDATE, so exactly once."""
    left = exists().where(*_still_created(job_id))
    done = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id, ImportJob.status == JobStatus.UNDOING, ImportJob.error.is_(None), ~left
        )
        .values(status=JobStatus.UNDONE, undone_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if not done:
        return False
    count_job_end(session, job_id, JobStatus.UNDONE, rows=False)
    job = session.get(ImportJob, job_id)
    removed = session.scalar(
        select(func.count()).where(ImportRow.job_id == job_id, ImportRow.status == RowStatus.UNDONE)
    )
    record(session, job.tenant_id, job.undo_by_id, "import.undone", job.id, {"users": removed})
    log.info("undone job=%s users=%d", job_id, removed)
    return True


def halt(session: Session, job_id: str, reason: str) -> None:
    """An undo unit failed for good: say why on the job; asking to undo again takes it up."""
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == JobStatus.UNDOING)
        .values(
            error=f"The undo stopped: {reason} Undo again to remove the remaining users.", updated_at=utcnow()
        )
    )
