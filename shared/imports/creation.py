"""Step 5 of an import: create one chunk's users.

Passwords are made and hashed before the chunk's transaction opens (hashing is the slow part).
Then the whole chunk is created in one flush, each user's encrypted temporary password written
beside it; only when a unique value clashes (another import took it meanwhile) does the chunk go
again one user at a time, each in a savepoint, the clashing rows becoming duplicates. Rows already
created are skipped, so a redelivered chunk creates nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.accounts.invitations import NO_PASSWORD
from shared.accounts.passwords import generate_password, hash_password
from shared.encryption import encrypt
from shared.imports import inviting
from shared.imports.jobs import lock_job_row
from shared.mapping.fields import FIELDS, UNIQUE
from shared.mapping.parser import Mapping, load_mapping
from shared.mapping.validation import SIP_DEVICE, SIP_URI, RowProblem
from shared.models import ImportJob, ImportRow, JobStatus, RowStatus, SkillGroup, User
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkWork:
    """A chunk's pending rows and what creating them needs."""

    job_id: str
    tenant_id: int
    chunk: int
    row_ids: list[int]
    mapping: Mapping


@dataclass(frozen=True)
class Secret:
    """A row's new password, hashed for the user and encrypted for success.csv (never plain)."""

    password_hash: str
    sealed: bytes | None


# An invited user has no password until they accept (shared/accounts/invitations.py): nothing to hash.
INVITED = Secret(NO_PASSWORD, None)


def chunk_work(session: Session, job_id: str, chunk: int) -> ChunkWork | None:
    """The chunk's rows still pending, or None when there is nothing to create."""
    job = session.get(ImportJob, job_id)
    if job is None or job.status != JobStatus.RUNNING or job.cancel_requested:
        return None
    row_ids = list(
        session.scalars(
            select(ImportRow.id).where(
                ImportRow.job_id == job_id, ImportRow.chunk == chunk, ImportRow.status == RowStatus.PENDING
            )
        )
    )
    if not row_ids:
        return None
    return ChunkWork(
        job_id, job.tenant_id, chunk, row_ids, load_mapping(job.mapping, list(job.upload.headers))
    )


def make_secrets(settings: Settings, work: ChunkWork) -> dict[int, Secret]:
    """A fresh password per row, hashed and encrypted; the plain one never leaves this function.
    Invited users get none."""
    if work.mapping.invites:
        return dict.fromkeys(work.row_ids, INVITED)
    secrets: dict[int, Secret] = {}
    for row_id in work.row_ids:
        password = generate_password(work.mapping.digits_only_passwords)
        secrets[row_id] = Secret(hash_password(settings, password), encrypt(settings, password))
    return secrets


def create_chunk(session: Session, work: ChunkWork, secrets: dict[int, Secret]) -> int:
    """Create the chunk's users that are still pending; returns how many were created."""
    lock_job_row(session, work.job_id)  # first: a rerun then sees the rows this chunk's first run committed
    rows = session.scalars(
        select(ImportRow)
        .where(ImportRow.id.in_(work.row_ids), ImportRow.status == RowStatus.PENDING)
        .order_by(ImportRow.row_number)
    ).all()
    groups = {
        g.id: g for g in session.scalars(select(SkillGroup).where(SkillGroup.tenant_id == work.tenant_id))
    }
    created = _create_all(session, work, list(rows), groups, secrets)
    if created is None:  # another import took a unique value meanwhile: one savepoint per user
        created = sum(_create_one(session, work, row, groups, secrets[row.id]) for row in rows)
    if work.mapping.invites and created:
        made = [row.user_id for row in rows if row.status == RowStatus.CREATED and row.user_id]
        users = session.scalars(select(User).where(User.id.in_(made)).order_by(User.id)).all()
        job = session.get(ImportJob, work.job_id)
        assert job is not None
        inviting.queue_chunk(session, job, work.chunk, list(users))
    log.info("chunk created job=%s chunk=%d created=%d", work.job_id, work.chunk, created)
    return created


def _new_user(work: ChunkWork, data: dict[str, Any], groups: dict[int, SkillGroup], secret: Secret) -> User:
    mapping, security = work.mapping, work.mapping.security
    user = User(
        tenant_id=work.tenant_id,
        sip_mode=mapping.sip_mode,
        pbx_domain_id=mapping.pbx_domain_id if mapping.sip_mode == "classic_pbx" else None,
        sip_device=data.get(SIP_DEVICE),
        sip_uri=data.get(SIP_URI),
        auth_type=mapping.auth_type,
        allowed_networks=security.allowed_networks if security else None,
        session_timeout_minutes=security.session_timeout_minutes if security else None,
        lock_after_failed_logins=security.lock_after_failed_logins if security else None,
        # An invited user chooses their own password: there is no temporary one to change.
        must_change_password=(security.force_password_change if security else True) and not mapping.invites,
        password_hash=secret.password_hash,
        digits_only_password=mapping.digits_only_passwords,
        import_id=work.job_id,
    )
    for f in FIELDS:
        f.write(user, data.get(f.attribute, f.empty()), groups)
    return user


def _create_all(
    session: Session,
    work: ChunkWork,
    rows: list[ImportRow],
    groups: dict[int, SkillGroup],
    secrets: dict[int, Secret],
) -> int | None:
    """Create every user of the chunk in one flush (the usual case); None if any unique value clashed."""
    users = [_new_user(work, row.data or {}, groups, secrets[row.id]) for row in rows]
    try:
        with session.begin_nested():
            session.add_all(users)
            session.flush()
    except IntegrityError:
        return None  # the savepoint's rollback took the new users out of the session again
    for row, user in zip(rows, users, strict=True):
        row.status, row.user_id, row.password_encrypted = RowStatus.CREATED, user.id, secrets[row.id].sealed
    return len(users)


def _create_one(
    session: Session, work: ChunkWork, row: ImportRow, groups: dict[int, SkillGroup], secret: Secret
) -> int:
    """Create one user inside a savepoint; losing a uniqueness race makes the row a duplicate."""
    user = _new_user(work, row.data or {}, groups, secret)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        if user in session:
            session.expunge(user)
        problems = _race_problems(session, work, row)
        row.status, row.data = RowStatus.DUPLICATE, None
        row.messages, row.problem_fields = [p.message for p in problems], [p.field for p in problems]
        return 0
    row.status, row.user_id, row.password_encrypted = RowStatus.CREATED, user.id, secret.sealed
    return 1


def _race_problems(session: Session, work: ChunkWork, row: ImportRow) -> list[RowProblem]:
    """Which unique value another user took meanwhile."""
    problems = []
    data = row.data or {}
    for f in UNIQUE:
        value = data.get(f.attribute)
        column = getattr(User, f.attribute)
        if value and session.scalar(
            select(User.id).where(User.tenant_id == work.tenant_id, func.lower(column) == value.lower())
        ):
            problems.append(RowProblem(f.key, f"{f.label} {f.shown(value)} {f.taken}"))
    return problems or [
        RowProblem(None, "Another user with the same username, email or extension was created meanwhile")
    ]
