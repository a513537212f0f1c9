"""Fair scheduling of import work: units of work claimed from the database in fair order.

Celery messages are only "slots", permissions to do one unit of work; the work order lives here.
A slot claims the next unit in fair order: the tenant with the fewest units in flight first,
among equals the one served least recently, then its oldest import, validation before creation,
chunks in order. Undo, password regeneration and invitation mails are units of the same kind, open while their
job is undoing or regenerating. A claim is a compare-and-set UPDATE, so two workers never hold one unit; a
claim whose worker stops heartbeating, or whose worker's announcement lapsed (shared/imports/capacity.py),
is taken over, so a lost message or a dead worker delays work and never loses it.

The claim's cost does not grow with history or backlog: each tenant's turn (units in flight, last
served, oldest waiting import) is a row of work_tenants that the transactions claiming, adding and
finishing its units keep up to date, so a claim reads the first tenant in turn by an index, then
that tenant's first unit by another (both LIMIT 1). On PostgreSQL the tenant row is taken FOR UPDATE
SKIP LOCKED, so concurrent claimers serve different tenants instead of racing for one unit. A
finished unit leaves work_items in its last transaction; the sweep closes units nobody wants any
more, and they leave at the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, false, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared import log_context
from shared.models import (
    ACTIVE_STATES,
    EPOCH,
    ImportJob,
    JobStatus,
    WorkItem,
    WorkKind,
    WorkStatus,
    WorkTenant,
    utcnow,
)

log = logging.getLogger(__name__)
KIND_RANK = {
    WorkKind.VALIDATE: 0, WorkKind.CREATE: 1, WorkKind.UNDO: 2, WorkKind.REGENERATE: 3, WorkKind.INVITE: 4,
}  # fmt: skip
LOST_RACES = 20  # CAS lost to another claimer this often in a row: give the slot back (never seen)


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
    if job.created_at is None:
        session.flush()  # the job's defaults (its id, its start) are the unit's order
    session.add(
        WorkItem(
            tenant_id=job.tenant_id,
            job_id=job.id,
            kind=kind,
            chunk=chunk,
            rows=rows,
            request_id=log_context.request_id(),
            job_created_at=job.created_at,
            kind_rank=KIND_RANK[kind],
        )
    )
    # The tenant waits from its oldest import on: the turn's row, made on the tenant's first unit.
    insert = (postgresql.insert if _postgres(session) else sqlite.insert)(WorkTenant).values(
        tenant_id=job.tenant_id, in_flight=0, last_served_at=EPOCH, head_at=job.created_at
    )
    earlier = or_(WorkTenant.head_at.is_(None), WorkTenant.head_at > insert.excluded.head_at)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[WorkTenant.tenant_id],
            set_={"head_at": case((earlier, insert.excluded.head_at), else_=WorkTenant.head_at)},
        )
    )


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _wanted() -> ColumnElement[bool]:
    """Whether a unit's job still wants it done: the import runs, an undo or a regeneration is under way,
    its invitations are still to go. Spelled again in SQL in migration 0013's claim_work: change both."""
    return or_(
        and_(WorkItem.kind.in_((WorkKind.VALIDATE, WorkKind.CREATE)), ImportJob.status.in_(ACTIVE_STATES)),
        and_(WorkItem.kind == WorkKind.UNDO, ImportJob.status == JobStatus.UNDOING),
        and_(WorkItem.kind == WorkKind.REGENERATE, ImportJob.regenerating.is_(True)),
        # Invitations go out after the import ended too, unless it is undone meanwhile.
        and_(
            WorkItem.kind == WorkKind.INVITE, ImportJob.status.not_in((JobStatus.UNDOING, JobStatus.UNDONE))
        ),
    )


def _abandoned(stale: datetime, lapsed: Collection[str]) -> ColumnElement[bool]:
    """A claimed unit whose worker went silent: no heartbeat for a while, or its announcement lapsed."""
    gone = WorkItem.node.in_(lapsed) if lapsed else false()
    return and_(WorkItem.status == WorkStatus.CLAIMED, or_(WorkItem.heartbeat_at < stale, gone))


def _claimable(stale: datetime, worker: str, lapsed: Collection[str]) -> ColumnElement[bool]:
    return or_(
        WorkItem.status == WorkStatus.PENDING,
        _abandoned(stale, lapsed),
        and_(WorkItem.status == WorkStatus.CLAIMED, WorkItem.claimed_by == worker),
    )


_UNIT = (
    WorkItem.id, WorkItem.job_id, WorkItem.tenant_id, WorkItem.kind, WorkItem.chunk, WorkItem.status,
    WorkItem.request_id,
)  # fmt: skip


def claim_next(
    session: Session,
    worker: str,
    stale_after: timedelta,
    node: str | None = None,
    lapsed: Collection[str] = (),
) -> Claim | None:
    """Claim the next unit of work in fair order for `worker` (a slot of the worker `node`); None when
    there is none. `lapsed` names workers whose announcement lapsed: their claims are taken over.

    On PostgreSQL the steps below run in the function claim_work (migration 0013): one round trip."""
    now = utcnow()
    stale = now - stale_after
    if _postgres(session):
        row = session.execute(
            text("SELECT * FROM claim_work(:worker, :node, :now, :stale, CAST(:lapsed AS text[]))"),
            {"worker": worker, "node": node, "now": now, "stale": stale, "lapsed": list(lapsed)},
        ).first()
        if row is None:
            return None
        return Claim(row.id, row.job_id, row.tenant_id, WorkKind(row.kind), row.chunk, row.request_id)
    claimed = WorkItem.status == WorkStatus.CLAIMED
    wanted = select(*_UNIT).join(ImportJob, ImportJob.id == WorkItem.job_id).where(_wanted())
    # A retried slot finishes its own unit first; then units whose worker went silent (one read).
    own = and_(claimed, WorkItem.claimed_by == worker)
    held = (
        wanted.where(or_(own, _abandoned(stale, lapsed)))
        .order_by(case((own, 0), else_=1), WorkItem.heartbeat_at)
        .limit(1)
    )
    unit = session.execute(held).first()
    if unit is not None and (claim := _take(session, unit, worker, node, now, stale, lapsed)):
        return claim
    # PostgreSQL: first the tenants no other claimer is serving right now, then any (waiting for them).
    # The tenant's row is locked before its unit, everywhere, so claimers never wait in a circle.
    for skip_locked in (True, False) if _postgres(session) else (False,):
        empty: set[int] = set()  # tenants in turn whose pending units no job wants now
        for _ in range(LOST_RACES):
            turn = select(WorkTenant.tenant_id).where(WorkTenant.head_at.is_not(None))
            if empty:
                turn = turn.where(WorkTenant.tenant_id.not_in(empty))
            turn = turn.order_by(
                WorkTenant.in_flight, WorkTenant.last_served_at, WorkTenant.head_at, WorkTenant.tenant_id
            ).limit(1)
            turn = turn.with_for_update(skip_locked=skip_locked)
            tenant = session.scalar(turn)
            if tenant is None:
                break
            head = (
                wanted.where(WorkItem.tenant_id == tenant, WorkItem.status == WorkStatus.PENDING)
                .order_by(WorkItem.job_created_at, WorkItem.kind_rank, WorkItem.chunk, WorkItem.id)
                .limit(1)
            )
            unit = session.execute(head).first()
            if unit is None:
                empty.add(tenant)
                _refresh(session, WorkTenant.tenant_id == tenant)  # its turn may be out of date
                continue
            if claim := _take(session, unit, worker, node, now, stale, lapsed):
                return claim
    return None


def _take(
    session: Session,
    unit: Any,
    worker: str,
    node: str | None,
    now: datetime,
    stale: datetime,
    lapsed: Collection[str],
) -> Claim | None:
    """The compare-and-set: the unit becomes the worker's unless another claimer took it first."""
    won = session.execute(
        update(WorkItem)
        .where(WorkItem.id == unit.id, _claimable(stale, worker, lapsed))
        .values(
            status=WorkStatus.CLAIMED,
            claimed_by=worker,
            node=node,
            claimed_at=now,
            heartbeat_at=now,
            attempts=WorkItem.attempts + 1,
        )
    ).rowcount
    if not won:
        return None
    _refresh(session, WorkTenant.tenant_id == unit.tenant_id, served_at=now)
    return Claim(unit.id, unit.job_id, unit.tenant_id, WorkKind(unit.kind), unit.chunk, unit.request_id)


def _refresh(
    session: Session,
    which: ColumnElement[bool],
    served_at: datetime | None = None,
    leaving: int | None = None,
) -> None:
    """Write tenants' turns from their units: claims in flight, and the oldest import with a unit pending
    (each an index read), not counting the unit `leaving`. Recomputed, not counted up and down, so a
    unit deleted by hand heals too."""
    mine = WorkItem.tenant_id == WorkTenant.tenant_id
    if leaving is not None:
        mine = and_(mine, WorkItem.id != leaving)
    values: dict[str, Any] = {
        "in_flight": select(func.count())
        .where(mine, WorkItem.status == WorkStatus.CLAIMED)
        .scalar_subquery(),
        "head_at": select(WorkItem.job_created_at)
        .where(mine, WorkItem.status == WorkStatus.PENDING)
        .order_by(WorkItem.job_created_at)
        .limit(1)
        .scalar_subquery(),
    }
    if served_at is not None:
        values["last_served_at"] = served_at
    session.execute(
        update(WorkTenant).where(which).values(**values).execution_options(synchronize_session=False)
    )


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
    """The unit is done: it leaves the work table (in the transaction of its last effects, so both commit
    together), and its tenant's turn counts one unit fewer in flight."""
    if _postgres(session):  # the same two statements in one round trip (migration 0013)
        session.execute(
            text("SELECT finish_work(:item, :tenant)"), {"item": claim.item_id, "tenant": claim.tenant_id}
        )
        return
    # The tenant's row first, as a claim locks it: the two never wait for each other in a circle.
    _refresh(session, WorkTenant.tenant_id == claim.tenant_id, leaving=claim.item_id)
    session.execute(delete(WorkItem).where(WorkItem.id == claim.item_id))


@dataclass(frozen=True)
class Backlog:
    """What the sweep sees: claimable units, and how long ago any unit was claimed."""

    claimable: int
    stale: int
    idle_seconds: float


def sweep(session: Session, stale_after: timedelta, lapsed: Collection[str] = ()) -> Backlog:
    """Close units their jobs no longer want and measure the backlog that may need slots offered again.

    It reads only units pending or claimed (and those it closed the time before, which leave now)."""
    now = utcnow()
    stale = now - stale_after
    active = or_(WorkTenant.head_at.is_not(None), WorkTenant.in_flight > 0)
    # The tenants' rows before their units, as claims take them (in one order: no circle).
    session.execute(
        select(WorkTenant.tenant_id).where(active).order_by(WorkTenant.tenant_id).with_for_update()
    )
    session.execute(delete(WorkItem).where(WorkItem.status == WorkStatus.DONE))
    open_ = WorkItem.status.in_((WorkStatus.PENDING, WorkStatus.CLAIMED))
    # From the open units to their jobs by key: the jobs' history is never scanned.
    unwanted = select(WorkItem.id).join(ImportJob, ImportJob.id == WorkItem.job_id).where(open_, ~_wanted())
    session.execute(
        update(WorkItem)
        .where(WorkItem.id.in_(unwanted.scalar_subquery()))
        .values(status=WorkStatus.DONE)
        .execution_options(synchronize_session=False)
    )
    _refresh(session, active)
    claimable, stale_count = session.execute(
        select(
            func.count().filter(WorkItem.status == WorkStatus.PENDING),
            func.count().filter(_abandoned(stale, lapsed)),
        ).where(open_)
    ).one()
    last = _naive(session.scalar(select(func.max(WorkTenant.last_served_at))))
    served = last is not None and last > _naive(EPOCH)
    idle = (now.replace(tzinfo=None) - last).total_seconds() if served else float("inf")
    if claimable or stale_count:
        log.info("backlog claimable=%d stale=%d idle_s=%.0f", claimable, stale_count, idle)
    return Backlog(claimable + stale_count, stale_count, idle)


def _naive(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes, PostgreSQL aware ones; compare them alike.
    return moment.replace(tzinfo=None) if moment is not None else None


def busy(session: Session) -> bool:
    """Whether any unit of work is pending or in hand, in any tenant (the purge gives way to them)."""
    first = select(WorkItem.id).where(WorkItem.status.in_((WorkStatus.PENDING, WorkStatus.CLAIMED))).limit(1)
    return session.scalar(first) is not None


def waiting(session: Session) -> bool:
    """Whether any unit waits for a slot (pending), in any tenant."""
    first = select(WorkItem.id).where(WorkItem.status == WorkStatus.PENDING).limit(1)
    return session.scalar(first) is not None
