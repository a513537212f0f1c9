"""Regenerate an import's temporary passwords: every user of it that still exists gets a new one.

For an admin who lost the success details: instead of resetting passwords one by one, one request
starts a new password generation of the import and queues one unit of work per chunk. Each unit
makes and hashes its passwords before its transaction opens (as creation does), then sets them,
sets must-change-password and ends the users' sessions and tokens; the new passwords are kept
encrypted for success.csv. A row already holding the newest generation is skipped, so a unit run
twice changes nothing twice. The last unit ends the regeneration, and success.csv serves again.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session

from shared.accounts import lockout, page_sessions
from shared.accounts.tokens import revoke_user_tokens
from shared.audit import record
from shared.errors import Conflict
from shared.imports.creation import ChunkWork, Secret
from shared.imports.inviting import invites
from shared.imports.jobs import destroy_passwords, get_job, lock_job_row
from shared.imports.retention import row_data_expired
from shared.imports.undo import queue_chunks, remaining_users
from shared.mapping.parser import load_mapping
from shared.models import ACTIVE_STATES, ImportJob, ImportRow, JobStatus, RowStatus, User, WorkKind, utcnow

log = logging.getLogger(__name__)
CODE = "regenerate_not_allowed"


def _refusal(job: ImportJob) -> str | None:
    """Why the import's passwords cannot be regenerated now, or None."""
    if job.dry_run:
        return "A validation created no users; there are no passwords to regenerate."
    # Its success.csv lists invitation states only: new passwords would be set and never shown.
    if invites(job):
        return "This import emailed invitations instead of passwords: resend the invitations instead."
    if job.status in ACTIVE_STATES:
        return "The import is still running; regenerate its passwords once it has ended."
    if job.status == JobStatus.UNDOING:
        return "This import is being undone: its users are being removed."
    if job.status == JobStatus.UNDONE:
        return "This import was undone: its users were removed."
    if job.regenerating:
        return "New passwords are already being made for this import."
    if row_data_expired(job):  # success.csv would have no usernames to show beside the passwords
        return (
            "This import's row data was deleted (ROW_DATA_RETENTION_DAYS); reset passwords on the Users page."
        )
    return None


def request_regeneration(
    session: Session, tenant_id: int, actor_id: int | None, job_id: str
) -> tuple[ImportJob, int]:
    """Start a new password generation for the import's users; returns the job and the units queued.

    Conflict (409 regenerate_not_allowed) while it runs, while an undo runs or after one, during
    another regeneration, or when none of its users exists any more.
    """
    get_job(session, tenant_id, job_id)
    lock_job_row(session, job_id)  # the job's row lock first: a concurrent undo request waits, or we do
    job = session.get(ImportJob, job_id)
    session.refresh(job)
    reason = _refusal(job)
    if reason:
        raise Conflict(CODE, reason)
    users = remaining_users(session, job.id)
    if not users:
        raise Conflict(CODE, "No user of this import exists any more.")
    job.password_generation += 1
    job.regenerating, job.error = True, None
    destroy_passwords(session, job)  # the old ones stop working as each chunk runs; none is shown again
    units = queue_chunks(session, job, WorkKind.REGENERATE)
    record(
        session, tenant_id, actor_id, "import.passwords_regenerating", job.id,
        {"users": users, "generation": job.password_generation},
    )  # fmt: skip
    log.info("regeneration requested job=%s generation=%d units=%d", job.id, job.password_generation, units)
    return job, units


def _behind(job: ImportJob) -> tuple[ColumnElement[bool], ...]:
    """Rows whose user exists and still holds a password older than the job's newest generation."""
    return (
        ImportRow.job_id == job.id,
        ImportRow.status == RowStatus.CREATED,
        ImportRow.user_id.is_not(None),
        ImportRow.password_generation < job.password_generation,
    )


def regeneration_work(session: Session, job_id: str, chunk: int) -> tuple[ChunkWork, int] | None:
    """The chunk's rows still waiting for a new password, and the generation; None when there are none."""
    job = session.get(ImportJob, job_id)
    if job is None or not job.regenerating:
        return None
    row_ids = list(session.scalars(select(ImportRow.id).where(*_behind(job), ImportRow.chunk == chunk)))
    if not row_ids:
        return None
    mapping = load_mapping(job.mapping, list(job.upload.headers))
    return ChunkWork(job.id, job.tenant_id, chunk, row_ids, mapping), job.password_generation


def regenerate_chunk(session: Session, work: ChunkWork, generation: int, secrets: dict[int, Secret]) -> int:
    """Give the chunk's users their new passwords (made by creation.make_secrets); returns how many."""
    lock_job_row(session, work.job_id)  # first: a rerun then sees the rows this chunk's first run committed
    job = session.get(ImportJob, work.job_id)
    if job is None or not job.regenerating or job.password_generation != generation:
        return 0
    rows = session.scalars(
        select(ImportRow).where(*_behind(job), ImportRow.id.in_(work.row_ids)).order_by(ImportRow.row_number)
    ).all()
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_([r.user_id for r in rows]), User.import_id == job.id)
        )
    }
    done = 0
    for row in rows:
        user = users.get(row.user_id)
        if user is None:  # removed meanwhile: nothing to hand out
            row.user_id = None
            continue
        secret = secrets[row.id]
        user.password_hash = secret.password_hash
        user.must_change_password = True
        lockout.unlock(session, user, None)
        page_sessions.end_for_user(session, user.id)
        revoke_user_tokens(session, user.id)
        row.password_encrypted, row.password_generation = secret.sealed, generation
        done += 1
    log.info("regenerated chunk job=%s chunk=%d users=%d", work.job_id, work.chunk, done)
    return done


def finish_regeneration(session: Session, job_id: str) -> bool:
    """End the regeneration once every user has a new password; one conditional UPDATE, so once."""
    job = session.get(ImportJob, job_id)
    if job is None or not job.regenerating:
        return False
    done = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.regenerating.is_(True),
            ImportJob.password_generation == job.password_generation,
            ~exists().where(*_behind(job)),
        )
        .values(regenerating=False, passwords_destroyed_at=None, passwords_regenerated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if not done:
        return False
    users = session.scalar(
        select(func.count()).where(
            ImportRow.job_id == job_id, ImportRow.password_generation == job.password_generation
        )
    )
    record(session, job.tenant_id, None, "import.passwords_regenerated", job.id, {"users": users})
    log.info("regenerated job=%s generation=%d users=%d", job_id, job.password_generation, users)
    return True


def halt(session: Session, job_id: str, reason: str) -> None:
    """A regeneration unit failed for good: end the regeneration and say why; regenerating again helps."""
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.regenerating.is_(True))
        .values(
            regenerating=False,
            error=f"New passwords could not all be made: {reason} Regenerate the passwords again.",
            updated_at=utcnow(),
        )
    )
