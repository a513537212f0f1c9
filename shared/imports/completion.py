"""Step 6 of an import: finish it (exactly once), fail it with a reason, or cancel what is left."""

from __future__ import annotations

import logging

from sqlalchemy import exists, update
from sqlalchemy.orm import Session

from shared.errors import DomainError
from shared.metrics import count_job_end
from shared.models import FINAL_STATES, ImportJob, ImportRow, JobStatus, RowStatus, utcnow

log = logging.getLogger(__name__)
CANCELLED_MESSAGE = "Not created: the import was cancelled"


def finalise(session: Session, job_id: str) -> JobStatus | None:
    """End the job when no row is pending; one conditional UPDATE, so exactly one step does it."""
    job = session.get(ImportJob, job_id)
    if job is None:
        return None
    if job.cancel_requested:
        cancel_pending(session, job_id, CANCELLED_MESSAGE)
    end = JobStatus.CANCELLED if job.cancel_requested else JobStatus.SUCCEEDED
    pending = exists().where(ImportRow.job_id == job_id, ImportRow.status == RowStatus.PENDING)
    result = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id, ImportJob.status.in_((JobStatus.RUNNING, JobStatus.VALIDATING)), ~pending
        )
        .values(status=end, finished_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if not result.rowcount:
        return None
    count_job_end(session, job_id, end)
    log.info("job finished job=%s status=%s", job_id, end)
    return end


def cancel_pending(session: Session, job_id: str, message: str) -> None:
    """Leave the job's rows not yet created uncreated, saying why."""
    session.execute(
        update(ImportRow)
        .where(ImportRow.job_id == job_id, ImportRow.status == RowStatus.PENDING)
        .values(status=RowStatus.CANCELLED, messages=[message], data=None)
    )


def fail_job(session: Session, job_id: str, reason: str) -> bool:
    """Mark the job failed with a reason; rows not created are released. False when already final."""
    job = session.get(ImportJob, job_id)
    if job is None or job.status in FINAL_STATES:
        return False
    cancel_pending(session, job_id, f"Not created: {reason}")
    job.status, job.error, job.finished_at, job.updated_at = JobStatus.FAILED, reason, utcnow(), utcnow()
    count_job_end(session, job_id, JobStatus.FAILED)
    log.warning("job failed job=%s", job_id)
    return True


def describe_failure(exc: BaseException) -> str:
    """A reason for a failed job that a user can act on, without row contents."""
    if isinstance(exc, DomainError):
        return exc.message
    return f"Internal error ({type(exc).__name__}); the operators have the details in the worker log."
