"""Benchmark of the scheduler as the platform grows (issue 21), on PostgreSQL (BENCH_POSTGRES_URL):

  claims    (a) claim latency p50/p99 with 10,000 pending units over 1,000 tenants and the history of
            1,000,000 finished units (20,000 finished imports, their 1,000,000 rows), against one
            tenant with one unit waiting and no history; (b) claims per second by 8 concurrent
            claimers claiming and finishing with no work in between, against 1 claimer.
            --explain prints EXPLAIN ANALYZE of every statement of a claim and of the sweep at depth.
  scaling   (e) units (chunks) per second of four 500-row imports with 1, 2 and 4 worker processes on
            the cheapest argon2 setting, through the service (make run's processes)
  recovery  (f) six running 500-row imports: the whole worker SIGKILLed and a new one started 5 s
            later, seconds from the new worker's start until progress resumes; Redis restarted
            empty, seconds from Redis answering until progress resumes

The data is generated here (SQL generate_series), never committed. Prints figures; asserts nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

SCENARIOS = ("claims", "scaling", "recovery")
STALE = timedelta(seconds=60)
CHEAPEST = {"ARGON2_MEMORY_KIB": "8", "ARGON2_TIME_COST": "1", "ARGON2_PARALLELISM": "1"}


def _database(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """A fresh, migrated database at `url`."""
    from alembic import command
    from alembic.config import Config

    from scripts.bench import _postgres_answers
    from shared.db import make_engine, make_sessionmaker
    from shared.settings import PROJECT_ROOT, Settings

    if not _postgres_answers():  # drops and creates the database
        raise SystemExit(f"no PostgreSQL answers at BENCH_POSTGRES_URL={url}")
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
    engine = make_engine(Settings(database_url=url))
    return engine, make_sessionmaker(engine)


def _generate(
    engine: Engine, tenants: int, pending_per_tenant: int, history_jobs: int, rows_per_job: int
) -> None:
    """Tenants, finished imports with their rows (the history a year leaves), and one running import per
    tenant with its pending units, each tenant's turn written as add_work and claims leave it."""
    jobs = (
        "INSERT INTO import_jobs (id, tenant_id, upload_id, status, dry_run, mapping, total,"
        " cancel_requested, created_at, updated_at, finished_at, password_generation, regenerating) "
    )
    statements = [
        "INSERT INTO tenants (slug, name, extension_min, extension_max, auth_default, created_at) "
        "SELECT 'bench' || g, 'Bench ' || g, 1000, 9999, 'disabled', now()"
        " FROM generate_series(1, :tenants) g",
        "INSERT INTO uploads (id, tenant_id, filename, format, size, content, headers, row_count,"
        " created_at) "
        "SELECT md5('u' || t.id), t.id, 'f.csv', 'csv', 1, '\\x00'::bytea, '[]', 1, now() FROM tenants t",
        # History: finished imports spread over the tenants, the older the further back.
        jobs + "SELECT md5('h' || g), t.id, md5('u' || t.id), 'succeeded', false, '{}', :rows, false,"
        " now() - (g || ' minutes')::interval, now(), now(), 0, false FROM generate_series(1, :history) g"
        " JOIN tenants t ON t.id = (SELECT min(id) FROM tenants) + g % :tenants",
        "INSERT INTO import_rows (job_id, row_number, chunk, status, messages, username,"
        " password_generation) "
        "SELECT j.id, r, r / 100, 'created', '[]', 'u' || r, 0 FROM import_jobs j,"
        " generate_series(2, :rows + 1) r",
        # The backlog: one running import per tenant, its units pending.
        jobs + "SELECT md5('r' || t.id), t.id, md5('u' || t.id), 'running', false, '{}', 0, false,"
        " now() - (t.id || ' seconds')::interval, now(), NULL, 0, false FROM tenants t",
        "INSERT INTO work_items (tenant_id, job_id, kind, chunk, rows, status, attempts, created_at,"
        " job_created_at, kind_rank) "
        "SELECT j.tenant_id, j.id, 'create', c, 10, 'pending', 0, now(), j.created_at, 1 "
        "FROM import_jobs j, generate_series(0, :pending - 1) c WHERE j.status = 'running'",
        "INSERT INTO work_tenants (tenant_id, in_flight, last_served_at, head_at) "
        "SELECT tenant_id, 0, now() - interval '1 day', min(job_created_at) FROM work_items"
        " GROUP BY tenant_id",
    ]
    params = {
        "tenants": tenants,
        "pending": pending_per_tenant,
        "history": history_jobs,
        "rows": rows_per_job,
    }
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _claim_and_finish(sessions: sessionmaker[Session], worker: str) -> float | None:
    """Seconds one claim took (its transaction); then finish it. None: nothing left."""
    from shared.imports import scheduling

    start = time.perf_counter()
    with sessions.begin() as session:
        claim = scheduling.claim_next(session, worker, STALE, node="bench")
    took = time.perf_counter() - start
    if claim is None:
        return None
    with sessions.begin() as session:
        scheduling.finish(session, claim)
    return took


def _latency(sessions: sessionmaker[Session], samples: int) -> tuple[float, float]:
    times = [t for n in range(samples) if (t := _claim_and_finish(sessions, f"lat{n}")) is not None]
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def _claimer(args: tuple[str, float, float, int]) -> int:
    """A process claiming and finishing from `start` (wall clock) for `seconds`; returns how many."""
    url, start, seconds, number = args
    from shared.db import make_engine, make_sessionmaker
    from shared.settings import Settings

    sessions = make_sessionmaker(make_engine(Settings(database_url=url)))
    for n in range(3):  # warm: the connection, the statements compiled once per process
        _claim_and_finish(sessions, f"warm{number}-{n}")
    time.sleep(max(0.0, start - time.time()))
    count = 0
    while time.time() < start + seconds and _claim_and_finish(sessions, f"rate{number}-{count}") is not None:
        count += 1
    return count


def _rate(url: str, claimers: int, seconds: float) -> float:
    """Claims per second of `claimers` processes together, once each is warm (started 20 s from now)."""
    start = time.time() + 20
    with multiprocessing.get_context("spawn").Pool(claimers) as pool:
        return sum(pool.map(_claimer, [(url, start, seconds, n) for n in range(claimers)])) / seconds


@contextmanager
def _recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements run on `engine` meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _explain(
    engine: Engine, sessions: sessionmaker[Session], what: str, run: Callable[[Session], object]
) -> str:
    """EXPLAIN ANALYZE of each statement `run` makes (in a transaction rolled back, as are the EXPLAINs)."""
    session = sessions()
    with _recorded(engine) as seen:
        run(session)
    session.rollback()
    session.close()
    out = [f"--- {what}: {len(seen)} statements"]
    with engine.connect() as conn:
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
                continue
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
            out += [" ".join(statement.split())[:300], *("    " + line for line in plan)]
        conn.rollback()
    return "\n".join(out)


def bench_claims(url: str, explain: bool = False, samples: int = 1000, seconds: float = 5.0) -> str:
    from shared.imports import scheduling

    engine, sessions = _database(url)
    _generate(engine, tenants=1, pending_per_tenant=samples, history_jobs=0, rows_per_job=0)
    # The reference: one tenant, 1,000 units claimed one by one, and no history.
    empty50, empty99 = _latency(sessions, samples)
    engine.dispose()
    engine, sessions = _database(url)
    _generate(engine, tenants=1000, pending_per_tenant=10, history_jobs=20_000, rows_per_job=50)
    deep50, deep99 = _latency(sessions, samples)
    lines = [
        f"claims   (a) claim latency, 10,000 pending over 1,000 tenants + 1,000,000 rows of history: "
        f"p50 {deep50:.2f} ms, p99 {deep99:.2f} ms; one tenant, 1,000 units, no history: p50 "
        f"{empty50:.2f} ms, p99 {empty99:.2f} ms; ratio p99 {deep99 / empty99:.2f} "
        "(goal p99 <= 25 ms, <= 2 x)"
    ]
    if explain:
        lines.append(
            _explain(engine, sessions, "claim at depth", lambda s: scheduling.claim_next(s, "x", STALE))
        )
        lines.append(_explain(engine, sessions, "sweep at depth", lambda s: scheduling.sweep(s, STALE)))
    one = _rate(url, 1, seconds)
    eight = _rate(url, 8, seconds)
    engine.dispose()
    lines.append(
        f"claims   (b) claims/s, claim + finish with no work, about 9,000 pending over 1,000 tenants: 8 "
        f"claimers {eight:.0f}/s; 1 claimer {one:.0f}/s (goal >= 1,000/s)"
    )
    return "\n".join(lines)


def _units_per_second(url: str, workers: int, files: int) -> tuple[float, int, float]:
    """Seconds of `files` 500-row imports back to back with `workers` worker processes; units, units/s."""
    from scripts.bench import stack, users_csv

    saved = {k: os.environ.get(k) for k in CHEAPEST}
    os.environ.update(CHEAPEST)
    try:
        with stack(workers, database_url=url) as service:
            api = service.api("bulk", "boss")
            api.wait(api.start(users_csv(40, "warm")))  # the processes' first connections and imports
            start = time.perf_counter()
            jobs = [api.start(users_csv(500, f"scale{n}u")) for n in range(files)]
            finals = [api.wait(job) for job in jobs]
            took = time.perf_counter() - start
            assert sum(f["created"] for f in finals) == 500 * files, finals
            log = (service.log_dir / "worker.log").read_text()
            # As the worker logged them: "claimed kind=... node=..." with the unit's job among its fields.
            claims = [line for line in log.splitlines() if "claimed kind=" in line]
            units = sum(1 for line in claims for job in jobs if f"job={job}" in line)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return took, units, units / took


def bench_scaling(url: str, files: int = 4) -> str:
    from scripts.bench import _postgres_answers

    figures = []
    for workers in (1, 2, 4):
        if not _postgres_answers():  # a fresh database for each
            return f"scaling  skipped: no PostgreSQL answers at BENCH_POSTGRES_URL={url}"
        took, units, rate = _units_per_second(url, workers, files)
        figures.append((workers, took, units, rate))
    base = figures[0][3]
    shown = "; ".join(
        f"{w} processes {r:.1f} units/s ({u} units, {t:.2f} s, {500 * files / t:.0f} rows/s, x{r / base:.2f})"
        for w, t, u, r in figures
    )
    return (
        f"scaling  (e) {files} x 500-row imports, argon2 m=8 KiB t=1: {shown} ({os.cpu_count()} cores: "
        "past them the processes share the cores with PostgreSQL, the web and Redis)"
    )


def _created(api: Any, jobs: list[str]) -> int:
    """Users the jobs created so far (through outages: an error answer counts as no news)."""
    try:
        return sum(api.call("GET", f"/api/v1/imports/{job}")["created"] for job in jobs)
    except (RuntimeError, OSError):
        api.conn.close()
        return -1


def _progress_after(api: Any, jobs: list[str], since: float, seen: int, timeout: float = 120) -> float:
    """Seconds from `since` until the jobs have created more than `seen` users."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _created(api, jobs) > seen:
            return time.perf_counter() - since
        time.sleep(0.1)
    return float("inf")


def bench_recovery(url: str, workers: int) -> str:
    from scripts.bench import _postgres_answers, stack, users_csv
    from scripts.local_redis import redis_answers
    from shared.settings import PROJECT_ROOT

    if not _postgres_answers():
        return f"recovery skipped: no PostgreSQL answers at BENCH_POSTGRES_URL={url}"
    with stack(workers, database_url=url) as service:
        api = service.api("bulk", "boss")
        jobs = [api.start(users_csv(500, f"recov{n}u")) for n in range(6)]
        while _created(api, jobs) < 100:
            time.sleep(0.1)
        old = service.procs["worker"]
        os.killpg(old.pid, signal.SIGKILL)  # the whole worker: main process, pool and beat
        old.wait()
        time.sleep(5)  # the scenario: a new worker starts 5 s later
        seen = _created(api, jobs)
        started, started_at = time.perf_counter(), time.time()
        service.procs["worker"] = subprocess.Popen(
            old.args, cwd=PROJECT_ROOT, env=service.env,
            stdout=(service.log_dir / "worker-2.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        killed = _progress_after(api, jobs, started, seen)
        log = service.log_dir / "worker-2.log"
        first = (_first_claim_after(log.read_text(), started_at) or float("nan")) - started_at
        service.restart_redis_empty()
        while not redis_answers(service.settings.redis_url):
            time.sleep(0.05)
        answering = time.time()
        # The chunks in flight commit anyway; progress resumes when a unit is claimed after Redis is back.
        deadline = time.monotonic() + 120
        while (claimed := _first_claim_after(log.read_text(), answering)) is None:
            if time.monotonic() > deadline:
                claimed = float("inf")  # shown as "inf s": no claim within two minutes
                break
            time.sleep(0.1)
        finals = [api.wait(job) for job in jobs]
    return (
        f"recovery (f) whole worker SIGKILLed, a new one 5 s later: progress {killed:.1f} s after its start "
        f"(its first claim {first:.1f} s after); "
        f"Redis restarted empty: a unit claimed {claimed - answering:.1f} s after it answers (goal <= 15 s "
        f"each); jobs {sorted({f['status'] for f in finals})} with {sum(f['created'] for f in finals)} of "
        "3000 created"
    )


def _first_claim_after(log: str, moment: float) -> float | None:
    """When the worker's log first says it claimed a unit after `moment` (epoch seconds, UTC log stamps)."""
    # LOG_FORMAT=text: "2026-12-02 05:24:47,545 INFO worker.tasks claimed kind=create ..."
    line = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO worker\.tasks claimed ", re.M)
    for stamp in line.findall(log):
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()
        if when > moment:
            return when
    return None


def run(name: str, workers: int, explain: bool = False) -> str:
    """One scenario's lines."""
    from scripts.bench import POSTGRES_URL

    if name == "claims":
        return bench_claims(POSTGRES_URL, explain)
    if name == "scaling":
        return bench_scaling(POSTGRES_URL)
    return bench_recovery(POSTGRES_URL, workers)
