"""Claims at depth on real SQLite and PostgreSQL: a thousand tenants waiting are served one each in
turn, and a finished unit leaves the work table."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from shared.imports import scheduling
from shared.models import ImportJob, Tenant, Upload, WorkItem, WorkKind, WorkStatus, utcnow

STALE = timedelta(seconds=60)
TENANTS, UNITS = 1000, 5


def _backlog(session) -> None:
    """TENANTS tenants, each with one running import of UNITS pending chunks, the oldest first."""
    start = utcnow() - timedelta(days=1)
    tenant_ids = session.scalars(
        insert(Tenant).returning(Tenant.id),
        [{"slug": f"deep{n:04d}", "name": f"Deep {n}", "created_at": start} for n in range(TENANTS)],
    ).all()
    uploads = session.scalars(
        insert(Upload).returning(Upload.id),
        [
            {
                "tenant_id": t,
                "filename": "f.csv",
                "format": "csv",
                "size": 1,
                "content": b"x",
                "headers": [],
                "row_count": 1,
                "created_at": start,
            }
            for t in tenant_ids
        ],
    ).all()
    for n, (tenant, upload) in enumerate(zip(tenant_ids, uploads, strict=True)):
        job = ImportJob(tenant_id=tenant, upload_id=upload, mapping={}, status="running")
        job.created_at = start + timedelta(seconds=n)
        session.add(job)
        session.flush()
        for chunk in range(UNITS):
            scheduling.add_work(session, job, WorkKind.CREATE, chunk, 10)
    session.commit()


def test_the_first_thousand_claims_serve_a_thousand_tenants_and_finished_units_leave(session, sessions):
    _backlog(session)
    served: list[int] = []
    for n in range(TENANTS):
        with sessions.begin() as s:
            claim = scheduling.claim_next(s, f"w{n}", STALE)
        assert claim is not None
        served.append(claim.tenant_id)
        with sessions.begin() as s:
            scheduling.finish(s, claim)
    assert len(set(served)) == TENANTS
    session.expire_all()
    # Only the units still to do are left: four of each tenant's five, all pending.
    left = session.execute(select(WorkItem.status, func.count()).group_by(WorkItem.status)).all()
    assert left == [(WorkStatus.PENDING, TENANTS * (UNITS - 1))]
    assert session.scalar(select(func.count(func.distinct(WorkItem.tenant_id)))) == TENANTS
