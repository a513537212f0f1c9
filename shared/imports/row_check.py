"""Step 3 of an import: start the job, read its file and check every row (nothing written)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from shared.files.uploads import open_upload
from shared.mapping.parser import load_mapping
from shared.mapping.validation import Draft, References, RowProblem, row_problems
from shared.models import ImportJob, ImportRow, JobStatus, Tenant, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedRow:
    """One data row after the rules: its draft, and its problems (none: valid)."""

    number: int
    draft: Draft
    problems: list[RowProblem]


@dataclass(frozen=True)
class CheckedFile:
    """Every row of a job's file, checked."""

    job_id: str
    tenant_id: int
    dry_run: bool
    rows: list[CheckedRow]


def begin(session: Session, job_id: str) -> bool:
    """Mark a queued job as validating; False when there is nothing to validate (gone, final, allocated)."""
    job = session.get(ImportJob, job_id)
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.VALIDATING):
        return False
    if already_allocated(session, job_id):
        return False
    if job.status == JobStatus.QUEUED:
        job.status, job.started_at = JobStatus.VALIDATING, utcnow()
    job.updated_at = utcnow()
    return True


def already_allocated(session: Session, job_id: str) -> bool:
    """Whether the job's row results exist (the allocation step ran)."""
    return bool(session.scalar(select(exists().where(ImportRow.job_id == job_id))))


def check_rows(session: Session, settings: Settings, job_id: str) -> CheckedFile:
    """Read the job's file and check every row against the rules and the tenant's references."""
    job = session.get(ImportJob, job_id)
    if job is None:
        raise LookupError(f"import {job_id} is gone")
    upload, tenant = job.upload, session.get(Tenant, job.tenant_id)
    mapping = load_mapping(job.mapping, list(upload.headers))
    refs = References.load(session, tenant)
    rows = [
        CheckedRow(row.number, *row_problems(row, mapping, refs))
        for row in open_upload(settings, upload).rows()
    ]
    log.info("checked job=%s rows=%d", job_id, len(rows))
    return CheckedFile(job_id, tenant.id, job.dry_run, rows)
