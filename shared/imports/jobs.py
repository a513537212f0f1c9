"""Import jobs: creation, status, listing, cancel, acknowledge, result files, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import functions

from shared.audit import record
from shared.encryption import decrypt
from shared.errors import Conflict, Gone, NotFound
from shared.files.result_files import INVITATION_HEADER, SIP_HEADER, SuccessRow, errors_csv, success_csv
from shared.files.uploads import get_upload, open_upload
from shared.imports import inviting
from shared.imports.retention import refuse_expired, refuse_expired_upload, row_data_expired
from shared.imports.scheduling import add_work
from shared.mapping.fields import FIELDS
from shared.mapping.parser import check_mapping
from shared.metrics import count_job_end
from shared.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    NOT_CREATED,
    ImportJob,
    ImportRow,
    JobStatus,
    RowStatus,
    WorkKind,
    utcnow,
)
from shared.settings import Settings
from shared.timestamps import iso

# success.csv: the required fields before the password (API.md's columns), optional ones after it.
SUCCESS_FIRST = [f for f in FIELDS if f.in_success_file and f.required]
SUCCESS_OPTIONAL = [f for f in FIELDS if f.in_success_file and not f.required]


def lock_job_row(session: Session, job_id: str) -> None:
    """Take the job's row lock until the transaction ends (and mark the job alive): its chunk
    transactions, and an undo or a regeneration request, then run one at a time."""
    session.execute(update(ImportJob).where(ImportJob.id == job_id).values(updated_at=utcnow()))


def create_job(
    session: Session,
    tenant_id: int,
    actor_id: int | None,
    upload_id: str,
    raw_mapping: Any,
    dry_run: bool,
    retry_of: str | None = None,
) -> ImportJob:
    """A queued job for a checked mapping (InvalidMapping lists every problem otherwise)."""
    upload = get_upload(session, tenant_id, upload_id)
    refuse_expired_upload(upload)
    check_mapping(session, tenant_id, raw_mapping, list(upload.headers))
    job = ImportJob(
        tenant_id=tenant_id,
        upload_id=upload.id,
        created_by_id=actor_id,
        dry_run=bool(dry_run),
        mapping=raw_mapping,
        total=upload.row_count,
        retry_of=retry_of,
    )
    session.add(job)
    session.flush()
    add_work(session, job, WorkKind.VALIDATE, rows=job.total)
    details = {"dry_run": job.dry_run, "rows": job.total} | ({"retry_of": retry_of} if retry_of else {})
    record(session, tenant_id, actor_id, "import.started", job.id, details)
    return job


def get_job(session: Session, tenant_id: int, job_id: str) -> ImportJob:
    """One job of the tenant; another tenant's answers NotFound."""
    job = session.get(ImportJob, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"Import {job_id}")
    return job


REGENERATED = "regenerated"  # row_counts' key for rows holding the newest password generation


def _count_rows(job_ids: list[str]) -> Any:
    """Rows by job, state and password generation."""
    return (
        select(ImportRow.job_id, ImportRow.status, ImportRow.password_generation, func.count())
        .where(ImportRow.job_id.in_(job_ids))
        .group_by(ImportRow.job_id, ImportRow.status, ImportRow.password_generation)
    )


def _fold(job: ImportJob, counted: list[tuple[str, int, int]]) -> dict[str, int]:
    by_status: dict[str, int] = {REGENERATED: 0}
    for status, generation, count in counted:
        by_status[status] = by_status.get(status, 0) + count
        if status == RowStatus.CREATED and job.password_generation and generation == job.password_generation:
            by_status[REGENERATED] += count
    return by_status


def row_counts(session: Session, job: ImportJob) -> dict[str, int]:
    """How many rows of the job are in each state (and hold the newest regenerated passwords)."""
    return _fold(job, [(status, gen, n) for _, status, gen, n in session.execute(_count_rows([job.id]))])


def counts_of(job: ImportJob, by_status: dict[str, int]) -> dict[str, int]:
    """The contract's counts; a dry run's `created` are the rows that would be created; an undo's
    `undone` are the users it removed (still counted as created: the import made them)."""
    undone = by_status.get(RowStatus.UNDONE, 0)
    created = by_status.get(RowStatus.CREATED, 0) + by_status.get(RowStatus.VALID, 0) + undone
    duplicates = by_status.get(RowStatus.DUPLICATE, 0)
    errors = by_status.get(RowStatus.ERROR, 0)
    processed = created + duplicates + errors
    total = job.total
    ended = job.status in FINAL_STATES
    percent = 100 if total == 0 and ended else (processed * 100 // total if total else 0)
    return {
        "total": total,
        "processed": processed,
        "created": created,
        "duplicates": duplicates,
        "errors": errors,
        "percent": min(percent, 100),
        "undone": undone,
        "regenerated": by_status.get(REGENERATED, 0),
    }


def job_status(job: ImportJob, counts: dict[str, int]) -> dict[str, Any]:
    """The JSON status of a job (API.md), from counts of the database or of Redis."""
    base = f"/api/v1/imports/{job.id}"
    links: dict[str, str] = {"self": base}
    # Rows left uncreated by a cancel, or by a failure after some users were created, are listed too.
    left_uncreated = counts["processed"] < job.total and (
        job.status == JobStatus.CANCELLED or (job.status == JobStatus.FAILED and counts["created"] > 0)
    )
    if counts["duplicates"] + counts["errors"] > 0 or left_uncreated:
        links["errors"] = f"{base}/errors.csv"
    # An import by invitation keeps no password: its success.csv (states only) is always there.
    passwords_kept = (job.passwords_destroyed_at is None and not job.regenerating) or inviting.invites(job)
    if counts["created"] > 0 and not job.dry_run and passwords_kept:
        links["success"] = f"{base}/success.csv"
    if job.status not in ACTIVE_STATES:
        links["rows"] = f"{base}/rows"
    return {
        "id": job.id,
        "status": job.status,
        "dry_run": job.dry_run,
        **counts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "error": job.error,
        "filename": job.upload.filename,
        "upload_id": job.upload_id,
        "created_by": job.created_by.username if job.created_by else None,
        "cancel_requested": job.cancel_requested,
        "passwords_destroyed": job.passwords_destroyed_at is not None,
        "row_data_expired": row_data_expired(job),
        "retry_of": job.retry_of,
        "retried_by": [retry.id for retry in job.retries],
        "undone_at": iso(job.undone_at),
        "regenerating": job.regenerating,
        "password_generation": job.password_generation,
        "passwords_regenerated_at": iso(job.passwords_regenerated_at),
        "links": links,
    }


def status_from_db(session: Session, job: ImportJob) -> dict[str, Any]:
    """The job's status with counts from the database (the final truth); an import by invitation
    carries its invitations' counts too."""
    status = job_status(job, counts_of(job, row_counts(session, job)))
    if inviting.invites(job) and not job.dry_run:
        status["invitations"] = inviting.counts(session, job)
    return status


def list_jobs(session: Session, tenant_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's jobs, newest first, with their counts."""
    jobs = session.scalars(
        select(ImportJob)
        .options(
            selectinload(ImportJob.upload),
            selectinload(ImportJob.created_by),
            selectinload(ImportJob.retries),
        )
        .where(ImportJob.tenant_id == tenant_id)
        .order_by(ImportJob.created_at.desc())
        .limit(limit)
    ).all()
    if not jobs:
        return []
    grouped: dict[str, list[tuple[str, int, int]]] = {job.id: [] for job in jobs}
    for job_id, status, generation, count in session.execute(_count_rows(list(grouped))):
        grouped[job_id].append((status, generation, count))
    return [job_status(job, counts_of(job, _fold(job, grouped[job.id]))) for job in jobs]


def request_cancel(session: Session, tenant_id: int, actor_id: int | None, job_id: str) -> ImportJob:
    """Ask the job to stop before its next chunk (rows already created stay)."""
    job = get_job(session, tenant_id, job_id)
    if job.status not in ACTIVE_STATES:
        raise Conflict("already_finished", f"The import is already {job.status}.")
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        count_job_end(session, job.id, JobStatus.CANCELLED)
    record(session, tenant_id, actor_id, "import.cancel_requested", job.id)
    return job


def acknowledge(session: Session, tenant_id: int, actor_id: int | None, job_id: str) -> ImportJob:
    """Destroy the job's temporary passwords (the admin pressed Continue)."""
    job = get_job(session, tenant_id, job_id)
    refuse_while_regenerating(job)
    destroy_passwords(session, job)
    record(session, tenant_id, actor_id, "import.acknowledged", job.id)
    return job


def destroy_passwords(session: Session, job: ImportJob) -> None:
    """Forget every temporary password of the job."""
    session.execute(
        update(ImportRow)
        .where(ImportRow.job_id == job.id, ImportRow.password_encrypted.is_not(None))
        .values(password_encrypted=None)
    )
    if job.passwords_destroyed_at is None:
        job.passwords_destroyed_at = utcnow()


def refuse_while_regenerating(job: ImportJob) -> None:
    """New passwords are being made: nothing may read or destroy them half-way."""
    if job.regenerating:
        raise Conflict(
            "passwords_regenerating",
            "New temporary passwords are being made for this import; try again when they are ready.",
        )


def purge_expired_passwords(session: Session, settings: Settings, limit: int | None = None) -> int:
    """Destroy passwords kept longer than the retention period (since the import ended, or since
    they were last regenerated), of at most `limit` jobs; returns how many jobs."""
    cutoff = utcnow() - timedelta(hours=settings.password_retention_hours)
    issued = functions.coalesce(ImportJob.passwords_regenerated_at, ImportJob.finished_at)
    jobs = session.scalars(
        select(ImportJob)
        .where(
            ImportJob.passwords_destroyed_at.is_(None),
            ImportJob.finished_at.is_not(None),
            issued < cutoff,
        )
        .limit(limit)
    ).all()
    for job in jobs:
        destroy_passwords(session, job)
        record(session, job.tenant_id, None, "import.passwords_expired", job.id)
    return len(jobs)


def success_file(
    session: Session, settings: Settings, tenant_id: int, actor_id: int | None, job_id: str
) -> bytes:
    """success.csv with the temporary passwords (410 once they are destroyed), or with the invitations'
    states for an import by invitation."""
    job = get_job(session, tenant_id, job_id)
    if inviting.invites(job) and not job.dry_run:
        return _invited_file(session, tenant_id, actor_id, job)
    refuse_while_regenerating(job)
    if job.passwords_destroyed_at is not None:
        raise Gone(
            "passwords_destroyed",
            "The temporary passwords were destroyed; reset passwords on the Users page.",
        )
    if job.dry_run:
        raise NotFound(f"Success details of dry run {job_id}")
    rows = session.scalars(
        select(ImportRow)
        .where(
            ImportRow.job_id == job.id,
            ImportRow.status == RowStatus.CREATED,
            # After a regeneration, users removed meanwhile have no new password to hand out.
            ImportRow.password_encrypted.is_not(None),
        )
        .order_by(ImportRow.row_number)
    ).all()
    record(session, tenant_id, actor_id, "import.success_downloaded", job.id, {"rows": len(rows)})
    return success_csv(
        [f.label for f in SUCCESS_FIRST],
        [f.label for f in SUCCESS_OPTIONAL] + [SIP_HEADER],
        (
            SuccessRow(
                row=r.row_number,
                values=_success_values(r),
                password=decrypt(settings, r.password_encrypted) if r.password_encrypted else "",
            )
            for r in rows
        ),
    )


def _invited_file(session: Session, tenant_id: int, actor_id: int | None, job: ImportJob) -> bytes:
    """success.csv of an import by invitation: each created user and their invitation's state, never a
    password or a link."""
    refuse_expired(job)  # the usernames beside the states are row data
    rows = session.scalars(
        select(ImportRow)
        .where(ImportRow.job_id == job.id, ImportRow.status == RowStatus.CREATED)
        .order_by(ImportRow.row_number)
    ).all()
    states = inviting.by_row(session, job.id)
    record(session, tenant_id, actor_id, "import.success_downloaded", job.id, {"rows": len(rows)})
    return success_csv(
        [f.label for f in SUCCESS_FIRST],
        [f.label for f in SUCCESS_OPTIONAL] + [SIP_HEADER],
        (
            SuccessRow(
                row=r.row_number, values=_success_values(r), password=states.get(r.user_id or 0, "void")
            )
            for r in rows
        ),
        secret_column=INVITATION_HEADER,
    )


def _success_values(row: ImportRow) -> dict[str, str]:
    data = row.data or {}
    values = {f.label: str(data.get(f.attribute) or "") for f in SUCCESS_FIRST + SUCCESS_OPTIONAL}
    return values | {SIP_HEADER: row.sip or ""}


def errors_file(session: Session, settings: Settings, tenant_id: int, job_id: str) -> bytes:
    """errors.csv: each row not created, with its original columns, Row and Errors."""
    job = get_job(session, tenant_id, job_id)
    refuse_expired(job)
    failed = {
        r.row_number: r.messages or []
        for r in session.scalars(
            select(ImportRow).where(ImportRow.job_id == job.id, ImportRow.status.in_(NOT_CREATED))
        )
    }
    table = open_upload(settings, job.upload)

    def rows() -> Iterator[tuple[int, dict[str, str], list[str]]]:
        for row in table.rows():
            if row.number in failed:
                yield row.number, row.values, failed[row.number]

    return errors_csv(list(job.upload.headers), rows())
