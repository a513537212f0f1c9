"""Claims of units of work on real SQLite and PostgreSQL: fair order, no unit held twice, takeover."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select, update

from shared.dialer.tenants import create_tenant
from shared.imports import scheduling
from shared.models import ImportJob, Tenant, Upload, WorkItem, WorkKind, WorkStatus, utcnow

STALE = timedelta(seconds=60)


def _job(session, tenant: Tenant, chunks: int, minutes_ago: int = 0) -> ImportJob:
    upload = Upload(
        tenant_id=tenant.id, filename="f.csv", format="csv", size=1, content=b"x", headers=[], row_count=1
    )
    session.add(upload)
    session.flush()
    job = ImportJob(tenant_id=tenant.id, upload_id=upload.id, mapping={}, status="running")
    job.created_at = utcnow() - timedelta(minutes=minutes_ago)
    session.add(job)
    session.flush()
    for chunk in range(chunks):
        scheduling.add_work(session, job, WorkKind.CREATE, chunk, 10)
    return job


def _claim(sessions, worker: str) -> scheduling.Claim | None:
    with sessions.begin() as session:
        return scheduling.claim_next(session, worker, STALE)


def _tenants(session) -> tuple[Tenant, Tenant]:
    a = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    b = create_tenant(session, "other")
    return a, b


def test_a_tenant_with_nothing_in_flight_goes_before_a_busy_one(session, sessions):
    a, b = _tenants(session)
    a_job = _job(session, a, chunks=20, minutes_ago=5)
    session.commit()
    first = _claim(sessions, "w1")
    assert (first.job_id, first.chunk) == (a_job.id, 0)  # alone, A gets every slot: w1 and w2
    assert _claim(sessions, "w2").chunk == 1
    b_job = _job(session, b, chunks=2)  # B arrives while A's backlog waits
    session.commit()
    with sessions.begin() as s:
        scheduling.finish(s, first)
    # A still has a unit in flight (w2), B none: B's unit goes first, then A's and B's alternate.
    order = [(c.job_id, c.chunk) for c in (_claim(sessions, w) for w in ("w3", "w4"))]
    assert order == [(b_job.id, 0), (a_job.id, 2)]


def test_among_equals_the_tenant_served_least_recently_goes_first(session, sessions):
    a, b = _tenants(session)
    c = create_tenant(session, "third")
    jobs = {t.slug: _job(session, t, chunks=3, minutes_ago=m) for t, m in ((a, 30), (b, 20), (c, 10))}
    session.commit()
    served = []
    for n in range(6):
        claim = _claim(sessions, f"w{n}")
        served.append(next(slug for slug, job in jobs.items() if job.id == claim.job_id))
        with sessions.begin() as s:
            scheduling.finish(s, claim)
    assert served == ["demo", "other", "third", "demo", "other", "third"]


def test_two_workers_racing_never_hold_one_unit(session, sessions):
    a, _ = _tenants(session)
    _job(session, a, chunks=40)
    session.commit()
    claims: dict[str, list[int]] = {"x": [], "y": []}

    def work(worker: str) -> None:
        while (claim := _claim(sessions, worker)) is not None:
            claims[worker].append(claim.item_id)
            with sessions.begin() as s:
                scheduling.finish(s, claim)

    threads = [threading.Thread(target=work, args=(w,)) for w in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = claims["x"] + claims["y"]
    assert len(every) == len(set(every)) == 40


def test_a_silent_workers_unit_is_taken_over_and_a_retried_slot_takes_its_own_back(session, sessions):
    a, _ = _tenants(session)
    _job(session, a, chunks=1)
    session.commit()
    held = _claim(sessions, "dead")
    assert _claim(sessions, "alive") is None  # held and heartbeating: nobody else takes it
    assert _claim(sessions, "dead").item_id == held.item_id  # the same slot, retried, goes on with it
    with sessions.begin() as s:
        s.execute(update(WorkItem).values(heartbeat_at=utcnow() - STALE * 2))
    taken = _claim(sessions, "alive")
    assert taken.item_id == held.item_id
    with sessions.begin() as s:
        assert scheduling.heartbeat(s, held, "dead") is False  # the first worker learns it lost the unit
        assert scheduling.heartbeat(s, taken, "alive") is True
    assert session.scalar(select(WorkItem.attempts)) == 3


def test_units_of_finished_jobs_are_never_claimed(session, sessions):
    a, _ = _tenants(session)
    job = _job(session, a, chunks=2)
    job.status = "cancelled"
    session.commit()
    assert _claim(sessions, "w") is None
    with sessions.begin() as s:
        assert scheduling.sweep(s, STALE).claimable == 0
    assert set(session.scalars(select(WorkItem.status))) == {WorkStatus.DONE}


def test_undo_and_regeneration_units_are_claimed_only_while_their_job_wants_them(session, sessions):
    a, _ = _tenants(session)
    job = _job(session, a, chunks=0)
    job.status = "succeeded"
    scheduling.add_work(session, job, WorkKind.UNDO, 0, 10)
    scheduling.add_work(session, job, WorkKind.REGENERATE, 0, 10)
    session.commit()
    assert _claim(sessions, "w1") is None  # an ended import: neither is wanted yet
    session.execute(update(ImportJob).where(ImportJob.id == job.id).values(regenerating=True))
    session.commit()
    assert _claim(sessions, "w1").kind == WorkKind.REGENERATE
    session.execute(
        update(ImportJob).where(ImportJob.id == job.id).values(regenerating=False, status="undoing")
    )
    session.commit()
    assert _claim(sessions, "w2").kind == WorkKind.UNDO
    session.execute(update(ImportJob).where(ImportJob.id == job.id).values(status="undone"))
    session.commit()
    with sessions.begin() as s:
        scheduling.sweep(s, STALE)  # nothing is wanted any more: every unit is closed
    statuses = set(session.scalars(select(WorkItem.status).where(WorkItem.job_id == job.id)))
    assert statuses == {WorkStatus.DONE}


def test_a_unit_is_claimed_exactly_while_its_job_wants_it_on_either_database(session, sessions):
    """PostgreSQL claims in the function claim_work (migration 0013), which spells again which units a
    job wants; SQLite runs scheduling._wanted. Every kind against every state: both say the same."""
    demo = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    cases = []
    for kind in WorkKind:
        for status in ("queued", "running", "succeeded", "undoing", "undone"):
            for regenerating in (False, True):
                job = _job(session, demo, chunks=0)
                job.status, job.regenerating = status, regenerating
                session.flush()
                scheduling.add_work(session, job, kind, 0, 1)
                cases.append((job.id, kind))
    session.commit()
    wanted = {
        (job_id, WorkKind(kind))
        for job_id, kind in session.execute(
            select(WorkItem.job_id, WorkItem.kind)
            .join(ImportJob, ImportJob.id == WorkItem.job_id)
            .where(scheduling._wanted())
        )
    }
    assert 0 < len(wanted) < len(cases)
    claimed = set()
    while (claim := _claim(sessions, f"w{len(claimed)}")) is not None:
        claimed.add((claim.job_id, claim.kind))
    assert claimed == wanted
