"""Benchmark scenario `retention` (issue 19), on PostgreSQL: the purge of a large backlog.

Generates BENCH_RETENTION_IMPORTS (default 50,000) imports of BENCH_RETENTION_ROWS rows each (default
20) with SQL generate_series, all ended past ROW_DATA_RETENTION_DAYS (31 to 400 days ago, so some are
past AUDIT_RETENTION_DAYS too), then prints:
- the purge's rows per second and the longest single transaction it held (goal <= 1 s);
- the tables' and indexes' sizes before, after the purge, and after a plain VACUUM;
- a 500-row import's ratio to the hashing floor while the purge runs, against the same with no purge
  (goal: within 3 %), each import taken turn about with its floor, best against best.

The purge runs as beat would run it, but back to back (run after run until nothing is left) in a
process of its own; while import work waits or runs it gives way between batches (a run that gave
way is followed by the next one a second later), so an import overlapping it meets at most a batch.
The hashing floors are hashed with the purge paused between its runs, in both halves: the purge
gives way to imports, not to the bench's own hashing, and a floor slowed by it would make the
import beside it look faster than it is.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, text

from scripts.bench import POSTGRES_URL, Stack, _postgres_answers, stack, turn_about
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings

TABLES = ("uploads", "import_jobs", "import_rows", "audit_events")

_GENERATE = [
    """
    INSERT INTO uploads (id, tenant_id, filename, format, size, content, headers, row_count, created_at)
    SELECT md5('u' || g), :tenant, 'old.csv', 'csv', :bytes, convert_to(repeat('x', :bytes), 'UTF8'),
           '["Username", "Email"]'::json, :rows, now() - make_interval(days => 31 + g % 370)
    FROM generate_series(1, :imports) g
    """,
    """
    INSERT INTO import_jobs (id, tenant_id, upload_id, status, dry_run, mapping, total, cancel_requested,
                             created_at, started_at, finished_at, updated_at, passwords_destroyed_at)
    SELECT md5('j' || g), :tenant, md5('u' || g), 'succeeded', false, '{}'::json, :rows, false,
           t, t, t, t, t
    FROM (SELECT g, now() - make_interval(days => 31 + g % 370) AS t FROM generate_series(1, :imports) g) s
    """,
    """
    INSERT INTO import_rows (job_id, row_number, chunk, status, messages, username, email, data,
                             password_generation)
    SELECT md5('j' || g), r + 1, 0,
           CASE WHEN r % 10 = 0 THEN 'error' ELSE 'created' END,
           CASE WHEN r % 10 = 0 THEN '["Email is not a valid email address"]'::json ELSE '[]'::json END,
           'old' || g || '_' || r, 'old' || g || '_' || r || '@example.com',
           json_build_object('username', 'old' || g || '_' || r, 'first_name', 'First'), 0
    FROM generate_series(1, :imports) g, generate_series(1, :rows) r
    """,
    """
    INSERT INTO audit_events (tenant_id, action, target, details, created_at)
    SELECT :tenant, 'import.started', md5('j' || g), json_build_object('rows', :rows),
           now() - make_interval(days => 31 + g % 370)
    FROM generate_series(1, :imports) g
    """,
]


def _generate(engine: Engine, imports: int, rows: int) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        tenant = conn.execute(text("SELECT id FROM tenants WHERE slug = 'bulk'")).scalar_one()
        for sql in _GENERATE:
            conn.execute(text(sql), {"tenant": tenant, "imports": imports, "rows": rows, "bytes": 100 * rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def _sizes(engine: Engine) -> dict[str, tuple[int, int]]:
    """Each table's (data incl. TOAST, indexes) size in bytes."""
    with engine.connect() as conn:
        return {
            t: tuple(conn.execute(text(f"SELECT pg_table_size('{t}'), pg_indexes_size('{t}')")).one())  # type: ignore[misc]
            for t in TABLES
        }


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"


def _purge_until_done(url: str, results: Any, go: Any, idle: Any) -> None:
    """Run the purge, run after run, until a run removes nothing; report to the parent. Between runs
    it waits while `go` is clear, saying so by `idle`."""
    from worker.tasks import run_purge

    settings = Settings(database_url=url)
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    started = time.perf_counter()
    removed = transactions = runs = 0
    longest = 0.0
    purging = 0.0  # seconds spent in runs (not in the pauses after a run gave way to an import)
    while True:
        if not go.is_set():
            idle.set()
            go.wait()
            idle.clear()
        run_started = time.perf_counter()
        report = run_purge(sessions, settings)
        purging += time.perf_counter() - run_started
        runs += 1
        transactions += report.transactions
        longest = max(longest, report.longest_seconds)
        removed += sum(report.removed.values())
        if report.yielded:  # an import runs: beat would come back after PURGE_SECONDS; here after 1 s
            time.sleep(1)
        elif not any(report.removed.values()):
            break
    results.put(
        {
            "seconds": purging,
            "wall_seconds": time.perf_counter() - started,
            "removed": removed,
            "transactions": transactions,
            "runs": runs,
            "longest": longest,
        }
    )
    engine.dispose()


@contextmanager
def _paused(go: Any, idle: Any, purge: Any) -> Iterator[None]:
    """The purge held between two of its runs (one run is at most PURGE_RUN_ROWS rows)."""
    go.clear()
    while purge.is_alive() and not idle.wait(1):
        pass
    try:
        yield
    finally:
        go.set()


def _ratios(
    service: Stack, workers: int, runs: int, tag: str, busy: Any = None, floor_alone: Any = nullcontext
) -> tuple[float, int]:
    """Best 500-row import over best hashing floor, turn about; and how many imports ran while `busy`()."""
    under: list[bool] = []  # still purging when an import ended: it ran under the purge
    times, floors = turn_about(
        service,
        workers,
        runs,
        tag,
        lambda: under.append(bool(busy and busy())),
        floor_alone,
    )
    overlapped = sum(under)
    return min(times) / min(floors), overlapped


def bench_retention(workers: int, runs: int = int(os.environ.get("BENCH_RETENTION_RUNS", "5"))) -> str:
    if not _postgres_answers():
        return f"retention skipped: no PostgreSQL answers at BENCH_POSTGRES_URL={POSTGRES_URL}"
    imports = int(os.environ.get("BENCH_RETENTION_IMPORTS", "50000"))
    rows = int(os.environ.get("BENCH_RETENTION_ROWS", "20"))
    with stack(workers, database_url=POSTGRES_URL) as service:
        engine = make_engine(POSTGRES_URL)
        made = _generate(engine, imports, rows)
        before = _sizes(engine)
        ctx = multiprocessing.get_context("spawn")
        results, go, idle = ctx.Queue(), ctx.Event(), ctx.Event()
        go.set()
        purge = ctx.Process(target=_purge_until_done, args=(POSTGRES_URL, results, go, idle))
        purge.start()  # first, so the imports measured with it start while it runs
        during, overlapped = _ratios(
            service,
            workers,
            runs,
            "retpurge",
            busy=purge.is_alive,
            floor_alone=lambda: _paused(go, idle, purge),
        )
        figures = results.get(timeout=3600)
        purge.join()
        alone, _ = _ratios(service, workers, runs, "retref")
        after = _sizes(engine)
        stages = [before, after]
        # VACUUM (autovacuum's work) makes the dead rows' space reusable but rarely returns it to the
        # disk; VACUUM FULL rewrites each table to what it holds (locking it: maintenance only).
        for command in ("VACUUM", "VACUUM FULL"):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(command))
            stages.append(_sizes(engine))
        engine.dispose()
    sizes = "; ".join(
        f"{t} {' -> '.join(_mb(sum(stage[t])) for stage in stages)}"
        f" (indexes {' -> '.join(_mb(stage[t][1]) for stage in stages)})"
        for t in TABLES
    )
    f = figures
    return (
        f"retention {imports} imports x {rows} rows past retention (generated in {made:.1f} s): purge "
        f"removed {f['removed']} rows and records in {f['seconds']:.1f} s of runs"
        f" ({f['removed'] / f['seconds']:.0f} /s; {f['wall_seconds']:.1f} s with the pauses it gave way)"
        f" over {f['runs']} runs and {f['transactions']} transactions, longest {f['longest'] * 1000:.0f} ms"
        " (goal <= 1000 ms)\n"
        f"retention sizes MB before -> after purge -> after VACUUM -> after VACUUM FULL: {sizes}\n"
        f"retention 500-row import / hashing floor: {during:.3f} with the purge running ({overlapped} of "
        f"{runs} imports overlapped it), {alone:.3f} without; {(during / alone - 1) * 100:+.1f} %"
        " (goal within 3 %)"
    )
