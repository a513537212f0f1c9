"""Figures (c) and (d) of issue 21: an import and the Users table in a big tenant of a big database.

The same service (bench.stack) runs twice at once: on BENCH_POSTGRES_URL, which the benchmark fills
with SQL generate_series (never committed anywhere), and on an empty <that database>_empty.
Imports take turns between the two, so the machine's drift falls on both alike:

  scale-import  a 500-row file, upload to succeeded, in the tenant of 200,000 users among
                1,000,000 users over 2,000 tenants with 1,000,000 rows of import history,
                against the same file on the empty database (goal: ratio <= 1.03)
  scale-users   GET /api/v1/users: the first page, the last page, a search by name and one by
                username, p95 over 40 requests each, in that tenant against the empty database
                (goal: p95 <= 50 ms each)

Both scenarios share the two databases, so they run together. SCALE_USERS, SCALE_BIG and
SCALE_HISTORY shrink the data for a quick check (defaults: 1,000,000, 200,000, 1,000,000).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text

from shared.db import normalise_url

SCENARIOS = ("scale-import", "scale-users")
TENANTS = 2_000
ROWS_PER_JOB = 500
REQUESTS = 40
RUNS = 3  # imports on each database, taken turn about
# Syllables make names that vary like real ones (a search by name matches some, not all).
SYLLABLES = (
    "ka,ri,mo,lan,tes,vo,ne,sa,dor,li,ber,to,mi,gan,el,us,ra,fen,do,cha,lu,pe,sol,vin,ta,ho,ni,ser,bo,zu"
)


@dataclass(frozen=True)
class Scale:
    users: int = int(os.environ.get("SCALE_USERS", 1_000_000))
    big: int = int(os.environ.get("SCALE_BIG", 200_000))
    history: int = int(os.environ.get("SCALE_HISTORY", 1_000_000))


def populate(database_url: str, tenant_slug: str, scale: Scale) -> None:
    """Fill the migrated, seeded database: `scale.big` users in the tenant, the rest over TENANTS - 1
    tenants of their own, and `scale.history` finished import rows spread over all of them."""
    engine = create_engine(normalise_url(database_url))
    others = TENANTS - 1
    name = (
        "initcap(s[1 + ({n} * 7) % 30] || s[1 + ({n} / 30 * 11) % 30])",
        "initcap(s[1 + ({n} / 900 * 13) % 30] || s[1 + ({n} / 27000 * 17 + {n}) % 30]"
        " || s[1 + ({n} * 3) % 30])",
    )
    first, last = (part.format(n="g") for part in name)
    with engine.begin() as conn:
        big = conn.execute(text("SELECT id FROM tenants WHERE slug = :s"), {"s": tenant_slug}).scalar_one()
        # Room for the big tenant's users above its users' numbers: imports generate from 1000.
        conn.execute(text("UPDATE tenants SET extension_max = 999999 WHERE id = :t"), {"t": big})
        conn.execute(
            text(
                "INSERT INTO tenants (slug, name, extension_min, extension_max, auth_default, created_at) "
                "SELECT 'scale' || g, 'Scale ' || g, 1000, 999999, 'disabled', now() "
                "FROM generate_series(1, :n) g"
            ),
            {"n": others},
        )
        conn.execute(
            text(
                "INSERT INTO roles (tenant_id, name, permissions) "
                "SELECT id, 'Agent', '[]' FROM tenants WHERE slug LIKE 'scale%'"
            )
        )
        # Users: g < big go to the big tenant (extensions 100000 up), the others round-robin.
        conn.execute(
            text(
                f"""
                WITH s AS (SELECT string_to_array(:syllables, ',') AS s),
                t AS (SELECT array_agg(id ORDER BY id) AS ids FROM tenants WHERE slug LIKE 'scale%'),
                r AS (SELECT tenant_id, min(id) AS role_id FROM roles GROUP BY tenant_id)
                INSERT INTO users (tenant_id, username, email, first_name, last_name, role_id, extension,
                                   sip_mode, auth_type, password_hash, must_change_password, failed_logins,
                                   digits_only_password, created_at)
                SELECT u.tenant_id, lower({first}) || '.' || lower({last}) || g,
                       'u' || g || '@scale.example', {first}, {last}, r.role_id,
                       (100000 + g)::text, 'webrtc', 'default', 'x', true, 0, false,
                       now() - make_interval(secs => :n - g)
                FROM s, t, generate_series(0, :n - 1) g
                CROSS JOIN LATERAL (
                    SELECT CASE WHEN g < :big THEN :big_id ELSE t.ids[1 + g % :others] END AS tenant_id
                ) u
                JOIN r ON r.tenant_id = u.tenant_id
                """
            ),
            {"syllables": SYLLABLES, "n": scale.users, "big": scale.big, "big_id": big, "others": others},
        )
        jobs = max(1, scale.history // ROWS_PER_JOB)
        conn.execute(
            text(
                """
                INSERT INTO uploads (id, tenant_id, filename, format, size, content, headers, row_count,
                                     created_at)
                SELECT md5('u' || g), (SELECT min(id) FROM tenants) + g % :tenants, 'old.csv', 'csv', 1,
                       '\\x00', '["Username"]', :rows, now() - interval '30 days'
                FROM generate_series(1, :jobs) g
                """
            ),
            {"jobs": jobs, "rows": ROWS_PER_JOB, "tenants": TENANTS},
        )
        conn.execute(
            text(
                """
                INSERT INTO import_jobs (id, tenant_id, upload_id, status, dry_run, mapping, total,
                                         cancel_requested, created_at, started_at, finished_at, updated_at)
                SELECT md5('j' || g), tenant_id, md5('u' || g), 'succeeded', false, '{}', :rows, false,
                       now() - interval '30 days', now() - interval '30 days', now() - interval '30 days',
                       now() - interval '30 days'
                FROM generate_series(1, :jobs) g JOIN uploads ON uploads.id = md5('u' || g)
                """
            ),
            {"jobs": jobs, "rows": ROWS_PER_JOB},
        )
        conn.execute(
            text(
                """
                INSERT INTO import_rows (job_id, row_number, chunk, status, messages, username, email,
                                         extension, password_generation)
                SELECT md5('j' || (1 + g / :rows)), 2 + g % :rows, 0,
                       CASE WHEN g % 10 = 0 THEN 'duplicate' ELSE 'created' END, '[]',
                       'old' || g, 'old' || g || '@scale.example', (100000 + g % 200000)::text, 0
                FROM generate_series(0, :history - 1) g
                """
            ),
            {"rows": ROWS_PER_JOB, "history": jobs * ROWS_PER_JOB},
        )
    # VACUUM sets the visibility map the index-only reads rely on (autovacuum does so in production).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _ms(api: Any, path: str) -> float:
    start = time.perf_counter()
    api.call("GET", path)
    return (time.perf_counter() - start) * 1000


def users_figures(api: Any) -> dict[str, float]:
    """p95 in ms of each Users-table read, after one warm-up each."""
    total = api.call("GET", "/api/v1/users?per_page=50")["total"]
    last_page = max(1, -(-total // 50))
    # A user of the oldest full page: one of the generated ones in the filled database.
    older = api.call("GET", f"/api/v1/users?per_page=50&page={max(1, last_page - 1)}")["items"]
    sample = older[len(older) // 2]
    reads = {
        "first page": "/api/v1/users?per_page=50&page=1",
        "last page": f"/api/v1/users?per_page=50&page={last_page}",
        "search by name": f"/api/v1/users?per_page=50&q={sample['last_name']}",
        "search by username": f"/api/v1/users?per_page=50&q={sample['username']}",
    }
    figures = {}
    for label, path in reads.items():
        _ms(api, path)
        times = sorted(_ms(api, path) for _ in range(REQUESTS))
        figures[label] = statistics.quantiles(times, n=20)[-1]
    return figures


def import_seconds(api: Any, tag: str) -> float:
    from scripts.bench import users_csv

    start = time.perf_counter()
    final = api.wait(api.start(users_csv(500, tag)))
    assert final["created"] == 500, final
    return time.perf_counter() - start


def run(workers: int, chosen: list[str]) -> list[str]:
    """Both databases served at once, the filled and the empty one, measured turn about (the
    machine's drift falls on both alike); the lines of the chosen scenarios."""
    from scripts import bench

    scale = Scale()
    full_url, empty_url = bench.POSTGRES_URL, f"{bench.POSTGRES_URL}_empty"
    if not (bench._postgres_answers(full_url) and bench._postgres_answers(empty_url)):
        raise RuntimeError(f"no PostgreSQL answers at BENCH_POSTGRES_URL={bench.POSTGRES_URL}")
    with bench.stack(workers, full_url) as full, bench.stack(workers, empty_url) as empty:
        start = time.perf_counter()
        populate(full_url, "demo", scale)
        print(f"filled in {time.perf_counter() - start:.0f} s: {scale}", flush=True)
        apis = {"full": full.api(), "empty": empty.api()}
        times: dict[str, list[float]] = {"full": [], "empty": []}
        for turn in range(RUNS):
            for side, api in apis.items():
                times[side].append(import_seconds(api, f"{side}{turn}u"))
        users = {side: users_figures(api) for side, api in apis.items()}
    lines = []
    if "scale-import" in chosen:
        ratio = min(times["full"]) / min(times["empty"])
        lines.append(
            f"scale-import  500 rows into a tenant of {scale.big:,} users among {scale.users:,} "
            f"({scale.history:,} rows of history): {', '.join(f'{t:.2f}' for t in times['full'])} s; "
            f"empty database {', '.join(f'{t:.2f}' for t in times['empty'])} s (taken turn about); "
            f"best against best {ratio:.3f} (goal <= 1.03)"
        )
    if "scale-users" in chosen:
        for label, p95 in users["full"].items():
            lines.append(
                f"scale-users   {label}: p95 {p95:.1f} ms in that tenant, "
                f"{users['empty'][label]:.1f} ms on the empty database (goal <= 50 ms)"
            )
    return lines


def main() -> None:
    """`python -m scripts.bench_tenant_scale`: leave BENCH_POSTGRES_URL migrated, seeded and filled,
    for EXPLAIN ANALYZE by hand."""
    from scripts import bench
    from shared.db import make_engine, make_sessionmaker
    from shared.dialer.tenants import seed_demo
    from shared.settings import Settings
    from tests.support.databases import migrate

    if not bench._postgres_answers():
        raise SystemExit(f"no PostgreSQL answers at BENCH_POSTGRES_URL={bench.POSTGRES_URL}")
    migrate(bench.POSTGRES_URL)
    settings = Settings(database_url=bench.POSTGRES_URL, demo_admin_password=bench.ADMIN_PASSWORD)
    engine = make_engine(settings)
    with make_sessionmaker(engine).begin() as session:
        seed_demo(session, settings)
    engine.dispose()
    start = time.perf_counter()
    populate(bench.POSTGRES_URL, "demo", Scale())
    print(f"filled {bench.POSTGRES_URL} in {time.perf_counter() - start:.0f} s: {Scale()}")


if __name__ == "__main__":
    main()
