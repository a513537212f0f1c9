"""The worker's steps of an import: validate every row, then create users chunk by chunk.

Every step is safe to run twice: row results are keyed by (job, row), a chunk only
creates rows still pending, and the job is finalised by whichever step sees nothing left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.encryption import encrypt
from shared.errors import DomainError
from shared.jobs import TERMINAL, counts_of, row_counts
from shared.mapping import Mapping, load_mapping
from shared.models import ImportJob, ImportRow, SkillGroup, Tenant, User, utcnow
from shared.passwords import generate_password, hash_password
from shared.settings import Settings
from shared.uploads import open_upload
from shared.validation import Draft, References, validate_row

log = logging.getLogger(__name__)
CANCELLED_MESSAGE = "Not created: the import was cancelled"


@dataclass(frozen=True)
class Validated:
    """What the validation step leaves for the chunks."""

    chunks: list[int]
    finished: bool


def _lock_tenant(session: Session, tenant_id: int) -> None:
    # A no-op write takes the tenant's row lock (PostgreSQL) or the write lock (SQLite),
    # so two imports of one tenant reserve extensions one after the other.
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(extension_min=Tenant.extension_min))


def _touch(session: Session, job_id: str) -> None:
    session.execute(update(ImportJob).where(ImportJob.id == job_id).values(updated_at=utcnow()))


def validate_job(sessions: sessionmaker[Session], settings: Settings, job_id: str) -> Validated:
    """Check every row, mark duplicates, reserve extensions; returns the chunks to create."""
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status in TERMINAL:
            return Validated([], True)
        if session.scalar(select(exists().where(ImportRow.job_id == job_id))):
            # Validated before (a redelivered message): only hand out what is still pending.
            return Validated(_pending_chunks(session, job_id), False)
        job.status, job.started_at, job.updated_at = "validating", utcnow(), utcnow()
    # Reading and checking the rows needs no write lock: other writers go on meanwhile.
    with sessions() as session:
        job = session.get(ImportJob, job_id)
        upload, tenant = job.upload, session.get(Tenant, job.tenant_id)
        mapping = load_mapping(job.mapping, list(upload.headers))
        refs = References(session, tenant)
        checked: list[tuple[int, Draft, list[str]]] = [
            (row.number, *validate_row(row, mapping, refs)) for row in open_upload(settings, upload).rows()
        ]
        tenant_id, total, dry_run = tenant.id, len(checked), job.dry_run

    with sessions.begin() as session:
        _lock_tenant(session, tenant_id)
        tenant = session.get(Tenant, tenant_id)
        job = session.get(ImportJob, job_id)
        if session.scalar(select(exists().where(ImportRow.job_id == job_id))):
            return Validated(_pending_chunks(session, job_id), False)
        outcomes = _duplicates(session, tenant_id, checked)
        _allocate_extensions(session, tenant, checked, outcomes)
        pending_index = 0
        for number, draft, _problems in checked:
            status, messages = outcomes[number]
            chunk = None
            if status == "pending":
                chunk = pending_index // settings.chunk_size
                pending_index += 1
                if dry_run:
                    status = "valid"
            keep = status in ("pending", "valid")
            session.add(
                ImportRow(
                    job_id=job_id,
                    row_number=number,
                    chunk=chunk,
                    status=status,
                    messages=messages,
                    username=draft.username or None,
                    email=draft.email or None,
                    extension=draft.extension,
                    sip=draft.sip_device or draft.sip_uri,
                    data=draft.as_dict() if keep else None,
                )
            )
        job.total = total
        job.chunk_count = (pending_index + settings.chunk_size - 1) // settings.chunk_size
        job.status = "succeeded" if dry_run else "running"
        job.updated_at = utcnow()
        if dry_run:
            job.finished_at = utcnow()
        chunks = [] if dry_run else list(range(job.chunk_count))
    log.info("validated job=%s rows=%d chunks=%d dry_run=%s", job_id, total, len(chunks), dry_run)
    if not chunks:
        finalise(sessions, job_id)
    return Validated(chunks, dry_run)


def _pending_chunks(session: Session, job_id: str) -> list[int]:
    rows = session.scalars(
        select(ImportRow.chunk).where(ImportRow.job_id == job_id, ImportRow.status == "pending").distinct()
    )
    return sorted(c for c in rows if c is not None)


def _duplicates(
    session: Session, tenant_id: int, checked: list[tuple[int, Draft, list[str]]]
) -> dict[int, tuple[str, list[str]]]:
    """Each row's state: error (any rule broken), duplicate (uniqueness only) or pending."""
    usernames = {d.username.lower() for _, d, _ in checked if d.username}
    emails = {d.email.lower() for _, d, _ in checked if d.email}
    extensions = {d.extension for _, d, _ in checked if d.extension}
    taken_users = _existing(session, tenant_id, User.username, usernames)
    taken_emails = _existing(session, tenant_id, User.email, emails)
    taken_exts = _existing(session, tenant_id, User.extension, extensions) | _reserved(session, tenant_id)
    first_seen: dict[tuple[str, str], int] = {}
    outcomes: dict[int, tuple[str, list[str]]] = {}
    for number, draft, problems in checked:
        dups: list[str] = []
        for key, value, taken, label in (
            ("username", draft.username, taken_users, "Username"),
            ("email", draft.email, taken_emails, "Email"),
            ("extension", draft.extension, taken_exts, "Virtual Extension"),
        ):
            if not value:
                continue
            shown = f'"{value}"' if key != "extension" else value
            if value.lower() in taken:
                dups.append(
                    f"{label} {shown} already exists"
                    if key != "extension"
                    else f"{label} {shown} is already taken"
                )
            elif (key, value.lower()) in first_seen:
                dups.append(f"{label} {shown} repeats row {first_seen[(key, value.lower())]}")
            else:
                first_seen[(key, value.lower())] = number
        if problems:
            outcomes[number] = ("error", problems + dups)
        elif dups:
            outcomes[number] = ("duplicate", dups)
        else:
            outcomes[number] = ("pending", [])
    return outcomes


def _existing(session: Session, tenant_id: int, column: Any, values: set[str]) -> set[str]:
    """Which of the values the tenant's users already hold (case-insensitive)."""
    found: set[str] = set()
    batch = sorted(values)
    compared = column if column is User.extension else func.lower(column)
    for start in range(0, len(batch), 500):  # keep IN lists short for every database
        query = select(column).where(User.tenant_id == tenant_id, compared.in_(batch[start : start + 500]))
        found |= {str(v).lower() for v in session.scalars(query)}
    return found


def _reserved(session: Session, tenant_id: int) -> set[str]:
    """Extensions held by pending rows of the tenant's other imports."""
    return set(
        session.scalars(
            select(ImportRow.extension)
            .join(ImportJob, ImportJob.id == ImportRow.job_id)
            .where(
                ImportJob.tenant_id == tenant_id,
                ImportRow.status == "pending",
                ImportRow.extension.is_not(None),
            )
        )
    )


def _allocate_extensions(
    session: Session,
    tenant: Tenant,
    checked: list[tuple[int, Draft, list[str]]],
    outcomes: dict[int, tuple[str, list[str]]],
) -> None:
    """Give rows without an extension the lowest free numbers of the range, in row order."""
    wanting = [d for n, d, _ in checked if d.extension is None and outcomes[n][0] == "pending"]
    if not wanting:
        return
    used = set(session.scalars(select(User.extension).where(User.tenant_id == tenant.id)))
    used |= _reserved(session, tenant.id)
    used |= {d.extension for n, d, _ in checked if d.extension and outcomes[n][0] == "pending"}
    candidate = tenant.extension_min
    for number, draft, _ in checked:
        if draft.extension is not None or outcomes[number][0] != "pending":
            continue
        while candidate <= tenant.extension_max and str(candidate) in used:
            candidate += 1
        if candidate > tenant.extension_max:
            span = f"{tenant.extension_min}-{tenant.extension_max}"
            outcomes[number] = ("error", [f"No free Virtual Extension is left in the range {span}"])
            continue
        draft.extension = str(candidate)
        used.add(draft.extension)


def process_chunk(sessions: sessionmaker[Session], settings: Settings, job_id: str, chunk: int) -> int:
    """Create the chunk's pending users in one transaction; returns how many were created."""
    with sessions() as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status in TERMINAL:
            return 0
        if job.cancel_requested:
            _cancel_pending(sessions, job_id)
            finalise(sessions, job_id)
            return 0
        todo = session.scalars(
            select(ImportRow).where(
                ImportRow.job_id == job_id, ImportRow.chunk == chunk, ImportRow.status == "pending"
            )
        ).all()
        mapping = load_mapping(job.mapping, list(job.upload.headers))
        tenant_id = job.tenant_id
        row_ids = [r.id for r in todo]
    if not row_ids:
        finalise(sessions, job_id)
        return 0
    # Hashing is the slow part: done before the transaction opens, so locks are held briefly.
    secrets_by_row = {}
    for row_id in row_ids:
        password = generate_password(mapping.digits_only_passwords)
        secrets_by_row[row_id] = (hash_password(settings, password), encrypt(settings, password))
        del password
    created = 0
    with sessions.begin() as session:
        _touch(session, job_id)  # serialises chunk transactions of this job: a rerun sees fresh rows
        rows = session.scalars(
            select(ImportRow)
            .where(ImportRow.id.in_(row_ids), ImportRow.status == "pending")
            .order_by(ImportRow.row_number)
        ).all()
        groups = {
            g.id: g for g in session.scalars(select(SkillGroup).where(SkillGroup.tenant_id == tenant_id))
        }
        for row in rows:
            password_hash, sealed = secrets_by_row[row.id]
            created += _create_one(session, tenant_id, job_id, mapping, row, groups, password_hash, sealed)
    log.info("chunk done job=%s chunk=%d created=%d", job_id, chunk, created)
    finalise(sessions, job_id)
    return created


def _create_one(
    session: Session,
    tenant_id: int,
    job_id: str,
    mapping: Mapping,
    row: ImportRow,
    groups: dict[int, SkillGroup],
    password_hash: str,
    sealed: bytes,
) -> int:
    """Create one user inside a savepoint; losing a uniqueness race makes the row a duplicate."""
    draft = Draft(**row.data)
    security = mapping.security
    user = User(
        tenant_id=tenant_id,
        username=draft.username,
        email=draft.email,
        first_name=draft.first_name,
        last_name=draft.last_name,
        role_id=draft.role_id,
        desk_id=draft.desk_id,
        extension=draft.extension,
        sip_mode=mapping.sip_mode,
        pbx_domain_id=mapping.pbx_domain_id if mapping.sip_mode == "classic_pbx" else None,
        sip_device=draft.sip_device,
        sip_uri=draft.sip_uri,
        auth_type=mapping.auth_type,
        allowed_networks=security.allowed_networks if security else None,
        session_timeout_minutes=security.session_timeout_minutes if security else None,
        lock_after_failed_logins=security.lock_after_failed_logins if security else None,
        must_change_password=security.force_password_change if security else True,
        password_hash=password_hash,
        digits_only_password=mapping.digits_only_passwords,
        import_id=job_id,
        skill_groups=[groups[i] for i in draft.skill_group_ids if i in groups],
    )
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        session.expunge(user) if user in session else None
        row.status, row.messages, row.data = "duplicate", _race_messages(session, tenant_id, draft), None
        return 0
    row.status, row.user_id, row.password_encrypted = "created", user.id, sealed
    return 1


def _race_messages(session: Session, tenant_id: int, draft: Draft) -> list[str]:
    messages = []
    base = select(User.id).where(User.tenant_id == tenant_id)
    if session.scalar(base.where(func.lower(User.username) == draft.username.lower())):
        messages.append(f'Username "{draft.username}" already exists')
    if session.scalar(base.where(func.lower(User.email) == draft.email.lower())):
        messages.append(f'Email "{draft.email}" already exists')
    if session.scalar(base.where(User.extension == draft.extension)):
        messages.append(f"Virtual Extension {draft.extension} is already taken")
    return messages or ["Another user with the same username, email or extension was created meanwhile"]


def _cancel_pending(sessions: sessionmaker[Session], job_id: str) -> None:
    with sessions.begin() as session:
        session.execute(
            update(ImportRow)
            .where(ImportRow.job_id == job_id, ImportRow.status == "pending")
            .values(status="cancelled", messages=[CANCELLED_MESSAGE], data=None)
        )


def finalise(sessions: sessionmaker[Session], job_id: str) -> str | None:
    """End the job when no row is pending; atomic, so exactly one step does it. Returns the end state."""
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            return None
        counts = counts_of(job, row_counts(session, job_id))
        values = {
            "created": counts["created"],
            "duplicates": counts["duplicates"],
            "errors": counts["errors"],
        }
        end = "cancelled" if job.cancel_requested else "succeeded"
        pending = exists().where(ImportRow.job_id == job_id, ImportRow.status == "pending")
        result = session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status.in_(("running", "validating")), ~pending)
            .values(status=end, finished_at=utcnow(), updated_at=utcnow(), **values)
        )
        if result.rowcount:
            log.info("job finished job=%s status=%s", job_id, end)
            return end
        session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))
        return None


def fail_job(sessions: sessionmaker[Session], job_id: str, reason: str) -> None:
    """Mark the job failed with a reason; rows not created are released."""
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.status in TERMINAL:
            return
        session.execute(
            update(ImportRow)
            .where(ImportRow.job_id == job_id, ImportRow.status == "pending")
            .values(status="cancelled", messages=[f"Not created: {reason}"], data=None)
        )
        job.status, job.error, job.finished_at, job.updated_at = "failed", reason, utcnow(), utcnow()
    log.warning("job failed job=%s", job_id)


def stale_jobs(session: Session, quiet_for: timedelta) -> list[str]:
    """Unfinished jobs nobody has touched for a while (their message may be lost)."""
    cutoff = utcnow() - quiet_for
    return list(
        session.scalars(
            select(ImportJob.id).where(
                ImportJob.status.in_(("queued", "validating", "running")), ImportJob.updated_at < cutoff
            )
        )
    )


def describe_failure(exc: BaseException) -> str:
    """A reason for a failed job that a user can act on, without row contents."""
    if isinstance(exc, DomainError):
        return exc.message
    return f"Internal error ({type(exc).__name__}); the operators have the details in the worker log."
