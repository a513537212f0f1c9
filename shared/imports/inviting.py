"""An import's invitations: queued with each chunk's users, mailed by the workers, resent on request.

A chunk whose users were created with `credentials: invitation` gets one invitation per user and one
unit of work (WorkKind.INVITE), scheduled fairly like every other unit. The unit mails its chunk's
invitations one at a time over one SMTP connection. Each mail is marked `sending` in a committed
transaction before the server is asked to take it, and `sent` after: a unit that runs again (its worker
died, its message came twice) never mails an invitation marked `sending` again, so no user gets two
mails for one invitation; such an invitation is reported failed ("interrupted"), and a resend helps.
A temporary refusal (4xx, a server down) puts the invitation back with a later `next_attempt_at`
(SMTP_RETRY_SECONDS, doubled each try, SMTP_RETRIES times); a permanent one (5xx) fails it with the
server's reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from shared.accounts import invitations
from shared.audit import record
from shared.errors import Conflict
from shared.imports.scheduling import add_work
from shared.mail import Letter
from shared.mapping.parser import INVITATION
from shared.models import (
    ACTIVE_STATES,
    ImportJob,
    ImportRow,
    Invitation,
    InvitationState,
    JobStatus,
    RowStatus,
    User,
    WorkItem,
    WorkKind,
    WorkStatus,
    utcnow,
)
from shared.settings import Settings

log = logging.getLogger(__name__)
CODE = "no_invitations"
INTERRUPTED = (
    "Sending was interrupted (the worker stopped) after the mail was handed over; it may not have arrived."
    " Resend the invitation if the user has no email."
)
STATES = ("pending", "sent", "failed", "accepted", "expired")


def invites(job: ImportJob) -> bool:
    """Whether the import's users get invitations (the mapping's `credentials`)."""
    return (job.mapping or {}).get("credentials") == INVITATION


def queue_chunk(session: Session, job: ImportJob, chunk: int, users: list[User]) -> None:
    """Invitations for a chunk's new users and the unit that mails them (in the creating transaction)."""
    if not users:
        return
    invitations.invite(session, [(user, chunk) for user in users], job.id, fresh=True)
    _queue_unit(session, job, chunk, len(users))


def _queue_unit(session: Session, job: ImportJob, chunk: int, rows: int) -> bool:
    """Add the chunk's sending unit unless one is open already; True when added."""
    if session.scalar(
        select(WorkItem.id).where(
            WorkItem.job_id == job.id, WorkItem.kind == WorkKind.INVITE, WorkItem.chunk == chunk
        )
    ):
        return False
    add_work(session, job, WorkKind.INVITE, chunk, rows)
    return True


def due(session: Session, job_id: str, chunk: int, now: datetime | None = None) -> list[int]:
    """The chunk's invitations to mail now, in order. Ones a run before this left `sending` fail as
    interrupted: whether their mail went out is unknown, and a user is never mailed twice."""
    now = now or utcnow()
    job = session.get(ImportJob, job_id)
    if job is None or job.status in (JobStatus.UNDOING, JobStatus.UNDONE):
        return []
    mine = (Invitation.job_id == job_id, Invitation.chunk == chunk)
    for invitation in session.scalars(
        select(Invitation).where(*mine, Invitation.state == InvitationState.SENDING)
    ):
        _fail(session, invitation, INTERRUPTED)
    waiting = Invitation.state == InvitationState.PENDING
    ready = (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at <= now)
    return list(session.scalars(select(Invitation.id).where(*mine, waiting, ready).order_by(Invitation.id)))


def start(session: Session, settings: Settings, invitation_id: int) -> Letter | None:
    """Make the invitation's token and mark it `sending`; its letter, or None when it needs none any more
    (sent, void, taken by another run meanwhile). The plain token lives only in the letter."""
    token, token_hash = invitations.new_token()
    now = utcnow()
    expires = now + invitations.valid_for(settings)
    taken = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.state == InvitationState.PENDING)
        .values(state=InvitationState.SENDING, token_hash=token_hash, expires_at=expires,
                attempts=Invitation.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    if not taken:
        return None
    invitation = session.get(Invitation, invitation_id)
    assert invitation is not None
    session.refresh(invitation)
    return invitations.letter(settings, invitation.user, token, expires)


def mark_sent(session: Session, invitation_id: int) -> None:
    """The server took the mail: the link works from now until it expires."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.state != InvitationState.SENDING:
        return  # the user went meanwhile, or a resend voided it
    invitation.state, invitation.sent_at, invitation.last_error = InvitationState.SENT, utcnow(), None
    invitations.event(session, invitation, "invitation.sent", attempts=invitation.attempts)


def mark_refused(
    session: Session, settings: Settings, invitation_id: int, reason: str, lasting: bool
) -> bool:
    """The server did not take the mail: try again later (a temporary refusal, while retries remain), or
    fail with its reason. The token made for it is forgotten: no mail carries it. True: retried later."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.state != InvitationState.SENDING:
        return False
    return _refuse(session, settings, invitation, reason, lasting)


def postpone(session: Session, settings: Settings, invitation_ids: list[int], reason: str) -> None:
    """The server is away: the invitations this run had still to mail count the try and wait too."""
    waiting = session.scalars(
        select(Invitation).where(
            Invitation.id.in_(invitation_ids), Invitation.state == InvitationState.PENDING
        )
    )
    for invitation in waiting:
        invitation.attempts += 1
        _refuse(session, settings, invitation, reason, lasting=False)


def _refuse(session: Session, settings: Settings, invitation: Invitation, reason: str, lasting: bool) -> bool:
    invitation.token_hash, invitation.last_error = None, reason
    if lasting or invitation.attempts > settings.smtp_retries:
        _fail(session, invitation, reason)
        return False
    delay = settings.smtp_retry_seconds * 2 ** (invitation.attempts - 1)
    invitation.state = InvitationState.PENDING
    invitation.next_attempt_at = utcnow() + timedelta(seconds=delay)
    return True


def _fail(session: Session, invitation: Invitation, reason: str) -> None:
    invitation.state, invitation.last_error, invitation.next_attempt_at = InvitationState.FAILED, reason, None
    invitation.token_hash = None if reason != INTERRUPTED else invitation.token_hash  # a mail may hold it
    invitations.event(session, invitation, "invitation.failed", reason=reason)


def next_retry(session: Session, job_id: str, chunk: int) -> datetime | None:
    """When the chunk's next retry is due, if any waits."""
    return session.scalar(
        select(func.min(Invitation.next_attempt_at)).where(
            Invitation.job_id == job_id,
            Invitation.chunk == chunk,
            Invitation.state == InvitationState.PENDING,
        )
    )


def requeue_due(session: Session, now: datetime | None = None) -> int:
    """Queue a sending unit for each chunk with a retry due and no unit open (the retry task, and the
    sweep for a retry message that was lost); returns how many were queued."""
    now = now or utcnow()
    open_unit = exists().where(
        WorkItem.job_id == Invitation.job_id,
        WorkItem.kind == WorkKind.INVITE,
        WorkItem.chunk == Invitation.chunk,
        WorkItem.status != WorkStatus.DONE,
    )
    chunks = session.execute(
        select(Invitation.job_id, Invitation.chunk, func.count())
        .where(
            Invitation.state == InvitationState.PENDING,
            or_(Invitation.next_attempt_at.is_(None), Invitation.next_attempt_at <= now),
            Invitation.job_id.is_not(None),
            ~open_unit,
        )
        .group_by(Invitation.job_id, Invitation.chunk)
    ).all()
    queued = 0
    for job_id, chunk, count in chunks:
        job = session.get(ImportJob, job_id)
        if job is not None and job.status not in (JobStatus.UNDOING, JobStatus.UNDONE):
            queued += _queue_unit(session, job, chunk, count)
    return queued


def halt(session: Session, job_id: str, reason: str) -> None:
    """A sending unit failed for good (a bug): its invitations still waiting fail with the reason."""
    waiting = session.scalars(
        select(Invitation).where(
            Invitation.job_id == job_id,
            Invitation.state.in_((InvitationState.PENDING, InvitationState.SENDING)),
        )
    )
    for invitation in waiting:
        _fail(session, invitation, f"The invitation could not be sent: {reason}")


def counts(session: Session, job: ImportJob) -> dict[str, int]:
    """The import's invitations by the state an admin sees (the newest of each user; void ones not)."""
    now = utcnow()
    found = dict.fromkeys(STATES, 0)
    alive = and_(Invitation.job_id == job.id, Invitation.state != InvitationState.VOID)
    late = and_(Invitation.state.in_(invitations.OPEN), Invitation.expires_at <= now)
    shown = session.execute(
        select(Invitation.state, late, func.count()).where(alive).group_by(Invitation.state, late)
    ).all()
    for state, is_late, count in shown:
        key = "expired" if is_late else ("pending" if state == InvitationState.SENDING else str(state))
        found[key] += count
    return found


def failures(session: Session, job_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The invitations that failed, with the server's reason (the result page lists them)."""
    rows = session.execute(
        select(User.id, User.username, User.email, Invitation.last_error)
        .join(User, User.id == Invitation.user_id)
        .where(Invitation.job_id == job_id, Invitation.state == InvitationState.FAILED)
        .order_by(Invitation.id)
        .limit(limit)
    ).all()
    return [{"user_id": i, "username": u, "email": e, "reason": r or ""} for i, u, e, r in rows]


def by_row(session: Session, job_id: str) -> dict[int, str]:
    """Each created row's invitation state (success.csv's Invitation column), by user id."""
    user_ids = list(
        session.scalars(
            select(ImportRow.user_id).where(
                ImportRow.job_id == job_id,
                ImportRow.status == RowStatus.CREATED,
                ImportRow.user_id.is_not(None),
            )
        )
    )
    return invitations.states_of(session, user_ids)


def _refusal(job: ImportJob) -> str | None:
    if not invites(job):
        return "This import gave its users temporary passwords: there are no invitations to resend."
    if job.status in ACTIVE_STATES:
        return "The import is still running; resend its invitations once it has ended."
    if job.status in (JobStatus.UNDOING, JobStatus.UNDONE):
        return "This import was undone: its users were removed."
    return None


def resend(session: Session, job: ImportJob, actor_id: int | None) -> tuple[int, int]:
    """New links for the import's users who have not accepted yet (the old links stop working); returns
    the users invited again and the units queued. 409 no_invitations when the import used temporary
    passwords (or is running, or was undone)."""
    reason = _refusal(job)
    if reason:
        raise Conflict(CODE, reason)
    # Those who accepted have a password of their own: the others are still waiting for one.
    users = [
        (user, chunk or 0)
        for user, chunk in session.execute(
            select(User, ImportRow.chunk)
            .join(ImportRow, ImportRow.user_id == User.id)
            .where(
                ImportRow.job_id == job.id,
                ImportRow.status == RowStatus.CREATED,
                User.password_hash == invitations.NO_PASSWORD,
            )
            .order_by(ImportRow.row_number)
        )
    ]
    invitations.invite(session, users, job.id)
    session.flush()
    per_chunk = Counter(chunk for _user, chunk in users)
    units = sum(_queue_unit(session, job, chunk, rows) for chunk, rows in per_chunk.items())
    for user, _chunk in users:
        _resent(session, actor_id, job, user)
    log.info("invitations resent job=%s users=%d units=%d", job.id, len(users), units)
    return len(users), units


def resend_to_user(session: Session, actor_id: int | None, user: User) -> int:
    """A new link for one user who has not accepted yet; returns the units queued (0 or 1)."""
    current = invitations.current(session, user.id)
    if current is None or user.password_hash != invitations.NO_PASSWORD:
        raise Conflict(CODE, "This user has no invitation waiting to be accepted.")
    job = session.get(ImportJob, current.job_id) if current.job_id else None
    if job is None:
        raise Conflict(CODE, "This user's invitation belongs to no import any more.")
    invitations.invite(session, [(user, current.chunk)], job.id)
    session.flush()
    _resent(session, actor_id, job, user)
    return int(_queue_unit(session, job, current.chunk, 1))


def _resent(session: Session, actor_id: int | None, job: ImportJob, user: User) -> None:
    record(session, job.tenant_id, actor_id, "invitation.resent", str(user.id),
           {"username": user.username, "import": job.id})  # fmt: skip
