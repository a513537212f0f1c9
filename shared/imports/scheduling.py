"""Fair scheduling of import work: units of work claimed from the database in fair order.

Celery messages are only "slots", permissions to do one unit of work; the work order lives here.
A slot claims the next unit in fair order: the tenant with the fewest units in flight first,
among equals the one served least recently, then its oldest import, validation before creation,
chunks in order. Undo and password regeneration are units of the same kind, open while their
job is undoing or regenerating. A claim is a compare-and-set UPDATE, so two workers never hold one unit; a
claim whose worker stops heartbeating is taken over, so a lost message or a dead worker delays
work and never loses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from shared import log_context
from shared.models import ACTIVE_STATES, ImportJob, JobStatus, WorkItem, WorkKind, WorkStatus, utcnow

log = logging.getLogger(__name__)
_KIND_ORDER = {WorkKind.VALIDATE: 0, WorkKind.CREATE: 1, WorkKind.UNDO: 2, WorkKind.REGENERATE: 3}
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Claim:
    """A unit of work held by one worker."""

    item_id: int
    job_id: str
    tenant_id: int
    kind: WorkKind
    chunk: int
    request_id: str | None = None


def add_work(session: Session, job: ImportJob, kind: WorkKind, chunk: int = 0, rows: int = 0) -> None:
    """Queue a unit of the job's work (claimed by the next free slot in fair order), noting the request
    that led to it (the one bound now: a web request, or the unit that validation ran for)."""
    session.add(
        WorkItem(
            tenant_id=job.tenant_id,
            job_id=job.id,
            kind=kind,
            chunk=chunk,
            rows=rows,
            request_id=log_context.request_id(),
        )
    )


def _wanted() -> ColumnElement[bool]:
    """Whether a unit's job still wants it done: the import runs, an undo or a regeneration is under way."""
    return or_(
        and_(WorkItem.kind.in_((WorkKind.VALIDATE, WorkKind.CREATE)), ImportJob.status.in_(ACTIVE_STATES)),
        and_(WorkItem.kind == WorkKind.UNDO, ImportJob.status == JobStatus.UNDOING),
        and_(WorkItem.kind == WorkKind.REGENERATE, ImportJob.regenerating.is_(True)),
    )


def _claimable(stale: datetime, worker: str) -> object:
    return or_(
        WorkItem.status == WorkStatus.PENDING,
        and_(
            WorkItem.status == WorkStatus.CLAIMED,
            or_(WorkItem.heartbeat_at < stale, WorkItem.claimed_by == worker),
        ),
    )


def claim_next(session: Session, worker: str, stale_after: timedelta) -> Claim | None:
    """Claim the next unit of work in fair order for `worker`; None when there is none."""
    now = utcnow()
    stale = now - stale_after
    for _attempt in range(5):  # another worker may win the race for a candidate: pick again
        candidates = session.execute(
            select(
                WorkItem.id,
                WorkItem.tenant_id,
                WorkItem.job_id,
                WorkItem.kind,
                WorkItem.chunk,
                WorkItem.claimed_by,
                WorkItem.request_id,
                ImportJob.created_at,
            )
            .join(ImportJob, ImportJob.id == WorkItem.job_id)
            .where(_wanted(), _claimable(stale, worker))
        ).all()
        if not candidates:
            return None
        own = [c for c in candidates if c.claimed_by == worker]
        if own:  # a retried slot finishes its own unit first
            choice = own[0]
        else:
            in_flight, served = _tenant_load(session, {c.tenant_id for c in candidates}, stale)
            choice = min(
                candidates,
                key=lambda c: (
                    in_flight.get(c.tenant_id, 0),
                    _naive(served.get(c.tenant_id)) or _EPOCH,
                    _naive(c.created_at),
                    _KIND_ORDER.get(WorkKind(c.kind), 9),
                    c.chunk,
                    c.id,
                ),
            )
        won = session.execute(
            update(WorkItem)
            .where(WorkItem.id == choice.id, _claimable(stale, worker))
            .values(
                status=WorkStatus.CLAIMED,
                claimed_by=worker,
                claimed_at=now,
                heartbeat_at=now,
                attempts=WorkItem.attempts + 1,
            )
        ).rowcount
        if won:
            return Claim(
                choice.id,
                choice.job_id,
                choice.tenant_id,
                WorkKind(choice.kind),
                choice.chunk,
                choice.request_id,
            )
    return None


def _tenant_load(
    session: Session, tenants: set[int], stale: datetime
) -> tuple[dict[int, int], dict[int, datetime]]:
    """Per tenant: units in flight (live claims), and when a unit was last claimed."""
    rows = session.execute(
        select(
            WorkItem.tenant_id,
            func.count().filter(and_(WorkItem.status == WorkStatus.CLAIMED, WorkItem.heartbeat_at >= stale)),
            func.max(WorkItem.claimed_at),
        )
        .where(WorkItem.tenant_id.in_(tenants), WorkItem.claimed_at.is_not(None))
        .group_by(WorkItem.tenant_id)
    ).all()
    return {t: n for t, n, _ in rows}, {t: last for t, _, last in rows if last is not None}


def _naive(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes, PostgreSQL aware ones; compare them alike.
    return moment.replace(tzinfo=None) if moment is not None else None


def heartbeat(session: Session, claim: Claim, worker: str) -> bool:
    """Tell the others the unit is still being worked on; False if someone took it over."""
    return bool(
        session.execute(
            update(WorkItem)
            .where(WorkItem.id == claim.item_id, WorkItem.claimed_by == worker)
            .values(heartbeat_at=utcnow())
        ).rowcount
    )


def finish(session: Session, claim: Claim) -> None:
    """Mark the unit done (in the transaction of its last effects, so both commit together)."""
    session.execute(update(WorkItem).where(WorkItem.id == claim.item_id).values(status=WorkStatus.DONE))


@dataclass(frozen=True)
class Backlog:
    """What the sweep sees: claimable units, and how long ago any unit was claimed."""

    claimable: int
    stale: int
    idle_seconds: float


def sweep(session: Session, stale_after: timedelta) -> Backlog:
    """Close units their jobs no longer want and measure the backlog that may need slots offered again."""
    now = utcnow()
    stale = now - stale_after
    wanted = select(ImportJob.id).where(ImportJob.id == WorkItem.job_id, _wanted()).exists()
    session.execute(
        update(WorkItem)
        .where(WorkItem.status != WorkStatus.DONE, ~wanted)
        .values(status=WorkStatus.DONE)
        .execution_options(synchronize_session=False)
    )
    claimable, stale_count = session.execute(
        select(
            func.count().filter(WorkItem.status == WorkStatus.PENDING),
            func.count().filter(and_(WorkItem.status == WorkStatus.CLAIMED, WorkItem.heartbeat_at < stale)),
        ).where(WorkItem.status != WorkStatus.DONE)
    ).one()
    last = _naive(session.scalar(select(func.max(WorkItem.claimed_at))))
    idle = (now.replace(tzinfo=None) - last).total_seconds() if last else float("inf")
    if claimable or stale_count:
        log.info("backlog claimable=%d stale=%d idle_s=%.0f", claimable, stale_count, idle)
    return Backlog(claimable + stale_count, stale_count, idle)


def remaining(session: Session) -> int:
    """How many units are waiting for a slot (pending) across all tenants."""
    return session.scalar(select(func.count()).where(WorkItem.status == WorkStatus.PENDING)) or 0
