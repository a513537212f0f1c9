"""Retention (API.md "Retention", DESIGN.md "Data lifecycle"): what an ended import keeps, and for how long.

Counted from the import's end (`finished_at`):
- the uploaded file's bytes, for UPLOAD_RETENTION_DAYS: errors.csv, the failed rows' values, a row's
  check and a retry read them (an upload no import used counts from its upload);
- the rows' values and messages (and any temporary password still kept), for ROW_DATA_RETENTION_DAYS:
  the failed rows' messages, a retry, and success.csv after a regeneration show them;
- the import's record (its job, its rows' outcomes, its upload's name and size) and the audit trail,
  for AUDIT_RETENTION_DAYS. The users it created stay, without their "created by import" mark.

Undo needs only the record (which rows made which user), so it works for UNDO_WINDOW_HOURS whatever
happens to the values; the settings refuse a retention shorter than the windows that read what it
keeps (Settings._retention_covers_its_windows).

Each function here is one bounded batch for the caller's transaction (the purge task runs them in
short transactions until nothing is left or its budget is spent), and returns how much it removed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, delete, exists, false, func, null, or_, select, update
from sqlalchemy.orm import Session

from shared.errors import Gone
from shared.models import AuditEvent, ImportJob, ImportRow, Upload, User
from shared.settings import Settings

CODE = "row_data_expired"
# A batch touches at most this many uploads: each holds up to MAX_UPLOAD_BYTES.
UPLOADS_PER_BATCH = 50

# What a row keeps after its data expired: its number, chunk, outcome, user and password generation.
_VALUES_GONE = {
    "data": null(),
    "messages": [],
    "problem_fields": null(),
    "username": null(),
    "email": null(),
    "extension": null(),
    "sip": null(),
    "password_encrypted": null(),
}
_HOLDS_VALUES = or_(
    ImportRow.data.is_not(null()),
    ImportRow.problem_fields.is_not(null()),
    ImportRow.username.is_not(None),
    ImportRow.email.is_not(None),
    ImportRow.extension.is_not(None),
    ImportRow.sip.is_not(None),
    ImportRow.password_encrypted.is_not(None),
    cast(ImportRow.messages, String) != "[]",
)


def row_data_expired(job: ImportJob) -> bool:
    """Whether retention deleted what the import's failed rows are read from (values or file)."""
    return job.row_data_expired_at is not None or job.upload.content_expired_at is not None


def refuse_expired(job: ImportJob) -> None:
    """410 row_data_expired once the rows' values or the file are gone."""
    if job.row_data_expired_at is not None:
        raise Gone(
            CODE,
            "This import's row values and messages were deleted "
            "(kept ROW_DATA_RETENTION_DAYS after it ended); its counts and users stay.",
        )
    if job.upload.content_expired_at is not None:
        raise Gone(
            CODE,
            "This import's file was deleted (kept UPLOAD_RETENTION_DAYS after it ended); "
            "its counts and users stay.",
        )


def refuse_expired_upload(upload: Upload) -> None:
    """A new import needs the file's bytes: 410 content_expired once they are gone."""
    if upload.content_expired_at is not None:
        raise Gone(
            "content_expired",
            "This file's contents were deleted (kept UPLOAD_RETENTION_DAYS); upload the file again.",
        )


def _days(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def expire_uploads(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete the bytes of uploads whose every import ended (or, unused, that were uploaded) longer
    than UPLOAD_RETENTION_DAYS ago; returns how many."""
    cutoff = _days(now, settings.upload_retention_days)
    last_end = (
        select(func.max(ImportJob.finished_at)).where(ImportJob.upload_id == Upload.id).scalar_subquery()
    )
    running = exists().where(ImportJob.upload_id == Upload.id, ImportJob.finished_at.is_(None))
    ids = list(
        session.scalars(
            select(Upload.id)
            .where(
                Upload.content_expired_at.is_(None),
                Upload.created_at < cutoff,
                ~running,
                func.coalesce(last_end, Upload.created_at) < cutoff,
            )
            .limit(min(limit, UPLOADS_PER_BATCH))
        )
    )
    if ids:
        session.execute(update(Upload).where(Upload.id.in_(ids)).values(content=b"", content_expired_at=now))
    return len(ids)


def expire_row_data(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete the values, messages and kept passwords of at most `limit` rows of imports that ended
    longer than ROW_DATA_RETENTION_DAYS ago (set-based: a few statements, whatever the imports' sizes);
    returns rows cleared plus imports marked expired."""
    cutoff = _days(now, settings.row_data_retention_days)
    jobs = list(
        session.scalars(
            select(ImportJob.id)
            .where(
                ImportJob.row_data_expired_at.is_(None),
                ImportJob.finished_at < cutoff,
                ImportJob.regenerating.is_(false()),  # its units are writing new passwords: next run
            )
            .order_by(ImportJob.finished_at)
            .limit(limit)
        )
    )
    if not jobs:
        return 0
    rows = select(ImportRow.id).where(ImportRow.job_id.in_(jobs), _HOLDS_VALUES).limit(limit)
    cleared = (
        session.execute(
            update(ImportRow)
            .where(ImportRow.id.in_(rows))
            .values(**_VALUES_GONE)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    # The imports nothing of which is left: say so (their passwords went with the rows).
    holding = exists().where(ImportRow.job_id == ImportJob.id, _HOLDS_VALUES)
    marked = (
        session.execute(
            update(ImportJob)
            .where(ImportJob.id.in_(jobs), ~holding)
            .values(
                row_data_expired_at=now,
                passwords_destroyed_at=func.coalesce(ImportJob.passwords_destroyed_at, now),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    return cleared + marked


def expire_history(session: Session, settings: Settings, now: datetime, limit: int) -> int:
    """Delete at most `limit` audit events and rows of import records older than AUDIT_RETENTION_DAYS
    (then the imports themselves, and their uploads' records); the users stay. Returns how many."""
    cutoff = _days(now, settings.audit_retention_days)
    events = select(AuditEvent.id).where(AuditEvent.created_at < cutoff).order_by(AuditEvent.id).limit(limit)
    removed = session.execute(delete(AuditEvent).where(AuditEvent.id.in_(events))).rowcount or 0
    room = limit - removed
    if room <= 0:
        return removed
    jobs = list(
        session.scalars(
            select(ImportJob.id)
            .where(ImportJob.finished_at < cutoff)
            .order_by(ImportJob.finished_at)
            .limit(room)
        )
    )
    if jobs:
        rows = select(ImportRow.id).where(ImportRow.job_id.in_(jobs)).limit(room)
        removed += session.execute(delete(ImportRow).where(ImportRow.id.in_(rows))).rowcount or 0
        done = list(
            session.scalars(
                select(ImportJob.id).where(
                    ImportJob.id.in_(jobs), ~exists().where(ImportRow.job_id == ImportJob.id)
                )
            )
        )
        if done:
            uploads = set(session.scalars(select(ImportJob.upload_id).where(ImportJob.id.in_(done))))
            session.execute(update(User).where(User.import_id.in_(done)).values(import_id=None))
            removed += session.execute(delete(ImportJob).where(ImportJob.id.in_(done))).rowcount or 0
            used = exists().where(ImportJob.upload_id == Upload.id)
            session.execute(delete(Upload).where(Upload.id.in_(uploads), ~used))
    room = limit - removed
    if room > 0:
        unused = (
            select(Upload.id)
            .where(Upload.created_at < cutoff, ~exists().where(ImportJob.upload_id == Upload.id))
            .limit(room)
        )
        removed += session.execute(delete(Upload).where(Upload.id.in_(unused))).rowcount or 0
    return removed


def expired_at(session: Session, now: datetime) -> list[ImportJob]:
    """The imports whose row data, or whose file, a purge run at `now` expired: their status changed."""
    return list(
        session.scalars(
            select(ImportJob)
            .join(Upload, Upload.id == ImportJob.upload_id)
            .where(or_(ImportJob.row_data_expired_at == now, Upload.content_expired_at == now))
        )
    )


# The purge's steps, in order; each removes at most `limit` things in the caller's transaction.
Step = Callable[[Session, Settings, datetime, int], int]
STEPS: dict[str, Step] = {
    "upload_contents": expire_uploads,
    "row_data": expire_row_data,
    "history": expire_history,
}
