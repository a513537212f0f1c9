"""Database models: tenants and their reference data, users, uploads, imports, audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from shared.db import Base

MANAGE_USERS = "users.manage"
SIP_MODES = ("webrtc", "classic_pbx", "custom_uri", "builtin_pbx")
AUTH_TYPES = ("default", "disabled", "email_otp", "google_2fa")


class JobStatus(StrEnum):
    """An import's life: queued -> validating -> running -> one of the final states; then an undo
    may take a final import on to undoing -> undone."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNDOING = "undoing"
    UNDONE = "undone"


# The import itself has ended (creation will not change it any more).
FINAL_STATES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATES = frozenset({JobStatus.QUEUED, JobStatus.VALIDATING, JobStatus.RUNNING})
# Nothing moves the status on by itself any more (an admin may still undo a final import).
SETTLED_STATES = FINAL_STATES | {JobStatus.UNDONE}


class RowStatus(StrEnum):
    """A data row's outcome: pending -> created | duplicate | error | cancelled; valid in a dry run;
    created -> undone when an undo removed its user."""

    PENDING = "pending"
    VALID = "valid"
    CREATED = "created"
    DUPLICATE = "duplicate"
    ERROR = "error"
    CANCELLED = "cancelled"
    UNDONE = "undone"


NOT_CREATED = frozenset({RowStatus.ERROR, RowStatus.DUPLICATE, RowStatus.CANCELLED})


class WorkKind(StrEnum):
    """What a unit of work does to its import."""

    VALIDATE = "validate"  # check every row, allocate (one item per job)
    CREATE = "create"  # create one chunk's users
    UNDO = "undo"  # remove one chunk's users again
    REGENERATE = "regenerate"  # give one chunk's users new temporary passwords
    INVITE = "invite"  # email one chunk's users their invitations (shared/imports/inviting.py)


class WorkStatus(StrEnum):
    """A unit of work's life: pending -> claimed (by a worker, heartbeating) -> done."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"


State = TypeVar("State", bound=StrEnum)


class StateText(TypeDecorator[State]):
    """A state enum kept as its text (VARCHAR(16), as the migrations made it) and read back as the enum,
    so a value no state has never reaches the database."""

    impl = String(16)
    cache_ok = True

    def __init__(self, states: type[State]) -> None:
        super().__init__()
        self.states = states

    def process_bind_param(self, value: Any, _dialect: Dialect) -> str | None:
        return None if value is None else self.states(value).value

    def process_result_value(self, value: Any, _dialect: Dialect) -> State | None:
        return None if value is None else self.states(value)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # "never": sorts first on every database, unlike NULL


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


# Primary keys are INTEGER columns: PostgreSQL bounds them at 32 bits (SQLite at 64). A larger
# number is never an id, and PostgreSQL refuses to compare a column with it.
MAX_ID = 2**31 - 1


def new_id() -> str:
    """Opaque public id for uploads and imports (not guessable, not sequential)."""
    return uuid.uuid4().hex


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    extension_min: Mapped[int] = mapped_column(Integer, default=1000)
    extension_max: Mapped[int] = mapped_column(Integer, default=9999)
    auth_default: Mapped[str] = mapped_column(String(20), default="disabled")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantUserCount(Base):
    """How many users a tenant has: kept by triggers on users (migration 0008), in the statement that
    inserts or deletes them, so the Users table's total is one row, not a count over the tenant."""

    __tablename__ = "tenant_user_counts"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    users: Mapped[int] = mapped_column(Integer)


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    auth_default: Mapped[str | None] = mapped_column(String(20))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)

    def grants(self, permission: str) -> bool:
        """Whether users of this role hold the permission."""
        return permission in (self.permissions or [])


class Desk(Base):
    __tablename__ = "desks"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class SkillGroup(Base):
    __tablename__ = "skill_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class PbxDomain(Base):
    __tablename__ = "pbx_domains"
    __table_args__ = (UniqueConstraint("tenant_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    domain: Mapped[str] = mapped_column(String(255))


# How messages name each kind of the dialer's reference data.
REFERENCE_LABELS: dict[type, str] = {
    Role: "Role",
    Desk: "Desk",
    SkillGroup: "Skill group",
    PbxDomain: "PBX domain",
}


user_skill_groups = Table(
    "user_skill_groups",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_group_id", ForeignKey("skill_groups.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    # Case-insensitive uniqueness per tenant, enforced by the database itself.
    __table_args__ = (
        Index("uq_users_tenant_username", "tenant_id", func.lower(Column("username")), unique=True),
        Index("uq_users_tenant_email", "tenant_id", func.lower(Column("email")), unique=True),
        UniqueConstraint("tenant_id", "extension", name="uq_users_tenant_extension"),
        # The Users table's pages and count read the tenant's ids from here alone (index-only).
        # The search's indexes differ by database: see migration 0008.
        Index("ix_users_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone_number: Mapped[str | None] = mapped_column(String(16))  # E.164
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"))
    extension: Mapped[str] = mapped_column(String(16))
    sip_mode: Mapped[str] = mapped_column(String(20), default="webrtc")
    pbx_domain_id: Mapped[int | None] = mapped_column(ForeignKey("pbx_domains.id"))
    sip_device: Mapped[str | None] = mapped_column(String(64))
    sip_uri: Mapped[str | None] = mapped_column(String(255))
    auth_type: Mapped[str] = mapped_column(String(20), default="default")
    allowed_networks: Mapped[list[str] | None] = mapped_column(JSON)
    session_timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    lock_after_failed_logins: Mapped[int | None] = mapped_column(Integer)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    # Consecutive failed logins (wrong password or code); a success sets it back to 0.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Fernet token of the TOTP secret: pending until enrolled_at is set, then the authenticator's.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last TOTP time step accepted, so a code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    digits_only_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the user was created by an import (the "created by import" mark).
    import_id: Mapped[str | None] = mapped_column(
        ForeignKey("import_jobs.id", use_alter=True, name="fk_users_import_id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    tenant: Mapped[Tenant] = relationship()
    role: Mapped[Role] = relationship()
    desk: Mapped[Desk | None] = relationship()
    skill_groups: Mapped[list[SkillGroup]] = relationship(secondary=user_skill_groups)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the token is kept: a leaked table gives no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Tokens idle past the user's session timeout end, like page sessions.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A page session kept on the server; the cookie holds only its random id."""

    __tablename__ = "web_sessions"

    # SHA-256 of the cookie's id: a leaked table gives no usable cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idle_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    touched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OneTimeCode(Base):
    """An emailed login code: kept hashed; encrypted only until the mail task has sent it."""

    __tablename__ = "one_time_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    code_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    send_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class RecoveryCode(Base):
    """A one-use code that stands in for the authenticator; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    # The file itself lives in the database so a worker on another machine finds it.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded only when read
    headers: Mapped[list[str]] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer)
    sheet: Mapped[str | None] = mapped_column(Text)  # the workbook sheet read; None for CSV
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set when retention deleted the bytes (`content` is then empty): shared/imports/retention.py.
    content_expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportJob(Base):
    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[JobStatus] = mapped_column(StateText(JobStatus), default=JobStatus.QUEUED)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Set when retention deleted its rows' values and messages (shared/imports/retention.py).
    row_data_expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Touched by every step; a job quiet for too long is handed to a worker again.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    passwords_destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A retry of this import's failed rows (shared/imports/failed_rows.py) points back to it.
    retry_of: Mapped[str | None] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="SET NULL", name="fk_import_jobs_retry_of"), index=True
    )
    # Undo (shared/imports/undo.py): who asked, and when the last user went.
    undo_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_import_jobs_undo_by_id")
    )
    undo_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Regeneration (shared/imports/regeneration.py): rows behind this generation still get a new password.
    password_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    regenerating: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    passwords_regenerated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    upload: Mapped[Upload] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    retries: Mapped[list[ImportJob]] = relationship(foreign_keys=[retry_of], order_by="ImportJob.created_at")


class WorkItem(Base):
    """One unit of an import's work, claimed by a worker in fair order (shared/imports/scheduling.py).

    Celery messages carry no work: a worker's slot task claims the next item here, so one
    tenant's backlog never stands in front of another's, and lost messages lose no work. The table
    holds only units pending or claimed: a unit leaves it in its last transaction.
    """

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", "chunk", name="uq_work_items_job_kind_chunk"),
        Index("ix_work_items_status_tenant", "status", "tenant_id"),
        # A tenant's next unit in order, read with LIMIT 1 (the claim, a tenant's turn).
        Index(
            "ix_work_items_head",
            "tenant_id",
            "job_created_at",
            "kind_rank",
            "chunk",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The few units in flight: a tenant's count, a worker's own, the abandoned ones.
        Index(
            "ix_work_items_claimed",
            "tenant_id",
            "heartbeat_at",
            postgresql_where=text("status = 'claimed'"),
            sqlite_where=text("status = 'claimed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[WorkKind] = mapped_column(StateText(WorkKind))
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[WorkStatus] = mapped_column(StateText(WorkStatus), default=WorkStatus.PENDING)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # The worker (one announced in shared/imports/capacity.py) whose process holds the claim.
    node: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The request that led to this unit (X-Request-ID): the worker's log lines for it carry it.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # The order within a tenant, written with the unit so an index gives it: older imports first,
    # validation before creation, then chunks in order.
    job_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind_rank: Mapped[int] = mapped_column(Integer, default=0)


class WorkTenant(Base):
    """A tenant's turn in the fair order, kept up to date by the transactions that claim, add and
    finish its units, so a claim reads one row by an index instead of aggregating the units."""

    __tablename__ = "work_tenants"
    __table_args__ = (
        # Fewest units in flight, then served least recently, then oldest waiting import.
        Index(
            "ix_work_tenants_turn",
            "in_flight",
            "last_served_at",
            "head_at",
            "tenant_id",
            postgresql_where=text("head_at IS NOT NULL"),
            sqlite_where=text("head_at IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)  # units claimed now
    last_served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: EPOCH)
    # When its oldest import with a pending unit began; NULL: nothing pending.
    head_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportRow(Base):
    """One data row's outcome; keyed by (job, row) so every task is safe to run twice."""

    __tablename__ = "import_rows"
    __table_args__ = (
        UniqueConstraint("job_id", "row_number", name="uq_import_rows_job_row"),
        # Extensions reserved by rows still to be created, looked up by value (a file's own).
        Index(
            "ix_import_rows_pending_extension",
            "extension",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    chunk: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[RowStatus] = mapped_column(StateText(RowStatus), index=True)
    messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    username: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    extension: Mapped[str | None] = mapped_column(String(16))
    sip: Mapped[str | None] = mapped_column(String(255))
    # The validated values the chunk creates the user from (no secrets).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Fernet token of the temporary password; NULL once acknowledged or expired.
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The field each message is about (a mapping key, or None for the whole row), in message order.
    problem_fields: Mapped[list[str | None] | None] = mapped_column(JSON)
    # The job's password generation this row's password belongs to (0: made at creation).
    password_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SavedMapping(Base):
    """A mapping an admin saved by name, offered again for files that have its columns."""

    __tablename__ = "saved_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_saved_mappings_tenant_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    columns: Mapped[list[str]] = mapped_column(JSON)  # every file column the mapping reads
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    created_by: Mapped[User | None] = relationship()


class InvitationState(StrEnum):
    """An invitation's life: pending -> sending -> sent -> accepted; pending -> failed (the server
    refused, or retries ran out); any but accepted -> void (a resend, a password reset). Expired is
    not a state: a sent invitation past its `expires_at`."""

    PENDING = "pending"  # waiting for its mail (again, after a temporary refusal: see next_attempt_at)
    SENDING = "sending"  # its mail is being handed to the server (a rerun never sends it again)
    SENT = "sent"
    FAILED = "failed"
    ACCEPTED = "accepted"
    VOID = "void"


class Invitation(Base):
    """An emailed link with which a user created without a password sets their own. Only a SHA-256 of
    the link's token is kept; the worker makes the token just before it mails it."""

    __tablename__ = "invitations"
    __table_args__ = (
        # The sending unit's batch: a chunk's invitations waiting for their mail.
        Index("ix_invitations_job_chunk_state", "job_id", "chunk", "state"),
        # The sweep's look for retries that are due.
        Index(
            "ix_invitations_retry",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Deleting the user (an undo, an admin) takes the invitation with it: its link stops working.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[InvitationState] = mapped_column(
        StateText(InvitationState), default=InvitationState.PENDING
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The mail server's answer to the last failed try (never the letter's content).
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its expiry was recorded in the audit (once; expired itself is read from expires_at).
    expiry_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
