"""Scheduling under bulk uploads with real workers: fair share, lost messages, outages, progress.

Each test runs its own worker against a Redis server of its own, so it may flush or cut things
without touching the rest of the suite.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis import Redis
from sqlalchemy import func, select

from scripts.run import free_port
from scripts.tcp_proxy import TcpProxy
from shared.accounts.passwords import verify_password
from shared.dialer.tenants import create_admin, create_tenant
from shared.imports import progress
from shared.models import ImportJob, ImportRow, User
from shared.settings import Settings
from tests.support.accounts import ADMIN_PASSWORD
from tests.support.actions import ImportActions
from tests.support.builders import basic_mapping, parse_csv, to_csv
from tests.support.workers import PausedWorker, WorkerProcess

# Real hashing cost, so that a batch takes long enough for order to show.
REAL_COST = {"argon2_memory_kib": 19456, "argon2_time_cost": 2}


@pytest.fixture
def quiet_database(base_settings: Settings) -> Iterator[None]:
    """The session's worker, which shares the database, takes no unit of these tests' jobs."""
    paused = PausedWorker(base_settings)
    yield
    paused.resume()


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A Redis server for this test alone."""
    from scripts.local_redis import start_redis, stop_redis

    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = start_redis(url)
    yield url
    stop_redis(proc)


def _settings(base: Settings, redis_url: str, name: str, **changes: object) -> Settings:
    return base.with_(redis_url=redis_url, task_queue=f"sched-{name}-{os.getpid()}", **changes)


def _client(
    settings: Settings, tenant: str = "demo", username: str = "admin", password: str = ADMIN_PASSWORD
):
    from web import create_app

    client = create_app(settings).test_client()
    answer = client.post(
        "/api/v1/auth/token", json={"tenant": tenant, "username": username, "password": password}
    )
    assert answer.status_code == 200, answer.get_json()
    return ImportActions(client, {"Authorization": f"Bearer {answer.get_json()['token']}"})


def _rows(prefix: str, count: int) -> bytes:
    names = [f"{prefix}{i:04d}" for i in range(count)]
    return to_csv([{"Username": n, "Email": f"{n}@example.com"} for n in names], ["Username", "Email"])


def _start(actions: ImportActions, data: bytes, role_name: str = "Agent") -> str:
    up = actions.upload(data)
    assert up.status_code == 201, up.get_json()
    role = actions.reference("roles")[role_name]
    started = actions.start(up.get_json()["upload_id"], basic_mapping(role))
    assert started.status_code == 202, started.get_json()
    return started.get_json()["id"]


def _assert_every_row_once(session, job_id: str, rows: int) -> None:
    """Every row created once, none twice, and every temporary password kept and valid."""
    session.expire_all()
    users = session.scalars(select(User).where(User.import_id == job_id)).all()
    assert len(users) == len({u.username for u in users}) == rows
    created = session.scalar(
        select(func.count())
        .select_from(ImportRow)
        .where(ImportRow.job_id == job_id, ImportRow.status == "created")
    )
    assert created == rows


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_another_tenants_small_import_finishes_before_a_big_batch(
    base_settings, clean_db, session, own_redis
):
    settings = _settings(base_settings, own_redis, "fair", **REAL_COST)
    other = create_tenant(session, "other")
    create_admin(session, settings, other, "boss", "boss@other.example", ADMIN_PASSWORD)
    session.commit()
    worker = WorkerProcess(settings, concurrency=2, name="fair")
    try:
        a = _client(settings)
        batch = [_start(a, _rows(f"a{n}x", 100)) for n in range(4)]
        b = _client(settings, "other", "boss")
        small = _start(b, _rows("b", 5), "Admin")  # the other tenant's only role
        done_small = b.wait_done(small, timeout=120)
        done_batch = [a.wait_done(job, timeout=180) for job in batch]
    finally:
        worker.stop()
    assert done_small["status"] == "succeeded" and done_small["created"] == 5
    assert all(s["status"] == "succeeded" and s["created"] == 100 for s in done_batch)
    finished = {job: session.get(ImportJob, job).finished_at for job in [small, *batch]}
    later = [job for job in batch if finished[job] > finished[small]]
    # Behind a FIFO queue the small import would finish last; shared fairly, it overtakes most of the batch.
    assert len(later) >= 2, finished


def test_behind_a_held_worker_the_tenants_take_turns(hooked_world, session):
    # One process, held at its second slot (after A's validation): B's import arrives meanwhile.
    world = hooked_world({"HOOK_HOLD_SLOT": "2"})
    other = create_tenant(session, "other")
    create_admin(session, world.settings, other, "boss", "boss@other.example", ADMIN_PASSWORD)
    session.commit()
    a = world.imports
    a_job = _start(a, _rows("held", 30))  # three chunks of 10
    world.wait_held()
    b = _client(world.settings, "other", "boss")
    b_job = _start(b, _rows("bturn", 5), "Admin")
    world.redis.set(world.release_key, "1")
    assert b.wait_done(b_job)["status"] == "succeeded" and a.wait_done(a_job)["status"] == "succeeded"
    names = {a_job: "A", b_job: "B"}
    # "claimed kind=create request_id=... tenant=1 job=... chunk=2 worker=..." (shared/log_context.py)
    found = re.findall(r"claimed kind=(\w+) .*?job=(\w+) chunk=(\d+)", world.worker.log_path.read_text())
    claims = [f"{names[job]} {kind} {chunk}" for kind, job, chunk in found]
    # Behind one FIFO queue B would wait for all of A's chunks; claimed in fair order, the tenants
    # take turns: B's validation, A's chunk, B's chunk, then the rest of A's.
    assert claims == [
        "A validate 0",
        "B validate 0",
        "A create 0",
        "B create 0",
        "A create 1",
        "A create 2",
    ], claims


def test_a_job_whose_messages_vanished_is_found_by_the_sweep(
    base_settings, clean_db, quiet_database, session, own_redis
):
    settings = _settings(base_settings, own_redis, "lost", sweep_seconds=1, claim_timeout_seconds=5)
    actions = _client(settings)
    job = _start(actions, _rows("lost", 60))  # no worker yet: its message waits in Redis
    assert Redis.from_url(own_redis).llen(settings.task_queue) == 1
    Redis.from_url(own_redis).flushdb()  # Redis restarted empty: the message is gone
    worker = WorkerProcess(settings, concurrency=2, name="lost", beat=True)
    try:
        final = actions.wait_done(job, timeout=60)
    finally:
        worker.stop()
    assert final["status"] == "succeeded" and final["created"] == 60
    _assert_every_row_once(session, job, 60)
    code, text = actions.download(job, "success")
    passwords = {r["Username"]: r["Temporary Password"] for r in parse_csv(text)}
    assert code == 200 and len(passwords) == 60
    user = session.scalar(select(User).where(User.username == "lost0007"))
    assert verify_password(settings, user.password_hash, passwords["lost0007"])


def test_a_job_outlasts_its_database_going_away_longer_than_every_retry(
    base_settings, database_url, clean_db, quiet_database, session, own_redis
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the outage is a PostgreSQL server cut away behind a proxy")
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    through_proxy = urlunsplit(target._replace(netloc=f"{target.hostname}:{proxy.port}"))
    settings = _settings(
        base_settings,
        own_redis,
        "outage",
        sweep_seconds=1,
        claim_timeout_seconds=5,
        outage_tolerance_seconds=2,
    )
    worker = WorkerProcess(
        settings.with_(database_url=through_proxy), concurrency=2, name="outage", beat=True
    )
    try:
        actions = _client(settings)  # the web reaches the database directly
        job = _start(actions, _rows("down", 300))
        _wait_for(lambda: actions.status(job)["created"] > 0, 60, "the first chunk")
        proxy.cut()
        # Longer than every retry (OUTAGE_TOLERANCE_SECONDS=2): the database comes back only once a
        # slot has given up, so the job's rescue is the sweep's, not a retry's.
        _wait_for(lambda: "slot gave up" in worker.log_path.read_text(), 60, "a slot to give up")
        proxy.restore()
        final = actions.wait_done(job, timeout=120)
    finally:
        worker.stop()
        proxy.cut()
    assert final["status"] == "succeeded", final
    assert (final["created"], final["processed"]) == (300, 300)
    _assert_every_row_once(session, job, 300)


def test_progress_published_out_of_order_never_goes_backwards(own_redis):
    redis = Redis.from_url(own_redis)

    def status(state: str, processed: int) -> dict:
        return {"id": "job1", "status": state, "processed": processed, "total": 500}

    assert progress.publish(redis, status("running", 300), 7)
    assert not progress.publish(redis, status("running", 100), 7)  # a late message from an earlier chunk
    assert progress.read(redis, "job1", 7)["processed"] == 300
    assert progress.publish(redis, status("succeeded", 500), 7)
    assert not progress.publish(redis, status("running", 450), 7)
    assert progress.read(redis, "job1", 7)["status"] == "succeeded"
    assert progress.read(redis, "job1", 8) is None  # another tenant reads nothing


def test_a_worker_started_mid_import_takes_units_of_it_with_no_setting_changed(
    base_settings, clean_db, quiet_database, session, own_redis
):
    # Chunks of 10 and real hashing: the import lasts long enough for a second worker to start.
    settings = _settings(base_settings, own_redis, "join", chunk_size=10, **REAL_COST)
    first = WorkerProcess(settings, concurrency=1, name="join-first")
    second = None
    try:
        actions = _client(settings)
        job = _start(actions, _rows("join", 300))
        _wait_for(lambda: actions.status(job)["created"] > 0, 60, "the first chunk")
        second = WorkerProcess(settings, concurrency=1, name="join-second")
        done = actions.wait_done(job, timeout=240)
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    assert done["status"] == "succeeded" and done["created"] == 300, done
    claiming = {
        node
        for worker in (first, second)
        for node in re.findall(
            rf"claimed kind=create node=(\S+)[^\n]* job={job} chunk=\d+", worker.log_path.read_text()
        )
    }
    assert len(claiming) == 2, claiming  # the newcomer took units of the running import
    _assert_every_row_once(session, job, 300)
