"""Benchmark of the import under bulk uploads, through the HTTP API of a running service.

Starts the service as `make run` does (gunicorn with WEB_CONCURRENCY processes, a Celery worker
with beat, a Redis of its own) on SQLite, and on PostgreSQL where one answers, then prints each
figure of issue 11 beside its reference measured in the same run:

  fair      tenant B's 20-row import submitted 1 s after tenant A's eight 500-row files,
            against B alone
  single    one 500-row file, upload to succeeded, against hashing 500 passwords over the
            worker's processes (seven of each, taken turn about; best against best)
  batch     twenty 500-row files back to back, against hashing 10,000 passwords (half of
            them hashed before the batch, half after)
  redis     a Redis restarted empty mid-job: seconds from the restart until the job finishes
  postgres  PostgreSQL cut away for 20 s mid-job (a proxy the bench cuts): seconds until it finishes
  status    GET /api/v1/imports/<id> under 16 concurrent clients (wrk), against /healthz
  streams   2,000 open event streams from 10 tenants: opening, /healthz and status p95, memory per
            stream, slow clients, an import's ratio with them open (scripts/bench_streams.py)
  metrics   a status read under 16 clients and a 500-row import, metrics on against metrics off
            (scripts/bench_metrics.py)
  claims, scaling, recovery   the scheduler as the platform grows, on PostgreSQL (scripts/bench_claims.py)
  retention the purge of 50,000 imports past retention on PostgreSQL (scripts/bench_retention.py)
  invitations  a 500-row import by invitation until the SMTP server has all 500 mails, against one with
            temporary passwords; mails per second (scripts/bench_invitations.py)

Usage: python -m scripts.bench [--only fair,single,...] [--workers 2] [--explain]
Prints figures; asserts nothing. Production argon2 parameters unless ARGON2_* say otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from scripts import bench_claims, bench_tenant_scale
from scripts.local_redis import start_redis, stop_redis
from scripts.run import child_env, metrics_env, open_files_to_hard_limit, processes
from shared.settings import PROJECT_ROOT, Settings

ADMIN_PASSWORD = "Bench-Admin-Pass-1"
SCENARIOS = (
    "fair",
    "single",
    "batch",
    "redis",
    "postgres",
    "status",
    "streams",
    "metrics",
    "retention",
    "invitations",
    *bench_tenant_scale.SCENARIOS,
    *bench_claims.SCENARIOS,
)
# Each starts a stack of its own on BENCH_POSTGRES_URL (invitations one on SQLite first, too).
ON_POSTGRES = ("postgres", "retention", "invitations")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/bench")


def _hash_batch(args: tuple[int, int, int, int]) -> int:
    from shared.accounts.passwords import generate_password, hash_password

    count, memory, time_cost, parallelism = args
    settings = Settings(argon2_memory_kib=memory, argon2_time_cost=time_cost, argon2_parallelism=parallelism)
    for _ in range(count):
        hash_password(settings, generate_password())
    return count


def hashing_seconds(settings: Settings, rows: int, workers: int) -> float:
    """Wall time to hash `rows` passwords spread over `workers` processes: the floor of an import."""
    share = [rows // workers + (1 if i < rows % workers else 0) for i in range(workers)]
    params = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
    # spawn, not fork: the parent holds threads and sockets a forked child could deadlock on.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_hash_batch, [(1, *params)] * workers))  # warm the processes up
        start = time.perf_counter()
        assert sum(pool.map(_hash_batch, [(n, *params) for n in share])) == rows
        return time.perf_counter() - start


def users_csv(rows: int, tag: str) -> bytes:
    """A file of new users with unique names."""
    lines = ["Username,Email,First Name,Last Name"]
    lines += [f"{tag}{i},{tag}{i}@example.com,First{i},Last{i}" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


class Api:
    """A JSON API client over one keep-alive HTTP connection (a script's view of the service)."""

    def __init__(self, port: int, tenant: str, username: str, password: str) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        token = self.call(
            "POST", "/api/v1/auth/token", {"tenant": tenant, "username": username, "password": password}
        )
        self.headers = {"Authorization": f"Bearer {token['token']}"}
        roles = self.call("GET", "/api/v1/roles")["items"]
        self.role = next(r["id"] for r in roles if r["name"] in ("Agent", "Admin"))

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, ctype: str = ""
    ) -> Any:
        headers = dict(getattr(self, "headers", {}))
        payload = raw
        if body is not None:
            payload, ctype = json.dumps(body).encode(), "application/json"
        if ctype:
            headers["Content-Type"] = ctype
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the idle keep-alive connection first: open a new one, once.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def start(self, data: bytes, mapping: dict[str, Any] | None = None) -> str:
        """Upload a file and start its import (`mapping` added to the usual one); returns the job id."""
        return self.begin(self.upload(data), mapping)

    def upload(self, data: bytes) -> str:
        """Upload a file; returns the upload id."""
        boundary = uuid.uuid4().hex
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        up = self.call("POST", "/api/v1/uploads", raw=form, ctype=f"multipart/form-data; boundary={boundary}")
        return up["upload_id"]

    def begin(self, upload_id: str, extra: dict[str, Any] | None = None) -> str:
        """POST /imports for an upload, with the usual mapping and `extra` added; returns the job id."""
        mapping = {
            "username": {"column": "Username"},
            "email": {"column": "Email"},
            "extension": {"generate": True},
            "role": {"value": self.role},
            "first_name": {"column": "First Name"},
            "last_name": {"column": "Last Name"},
        } | (extra or {})
        return self.call("POST", "/api/v1/imports", {"upload_id": upload_id, "mapping": mapping})["id"]

    def wait(self, job_id: str, poll: float = 0.25) -> dict[str, Any]:
        """The final status, read from the job's event stream (no busy polling)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        while True:
            try:
                conn.request("GET", f"/api/v1/imports/{job_id}/events", headers=self.headers)
                response = conn.getresponse()
                last = None
                for line in response:
                    if line.startswith(b"data: "):
                        last = json.loads(line[6:])
                        if last["status"] in ("succeeded", "failed", "cancelled"):
                            return last
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            time.sleep(poll)  # the stream ended early (a restart): subscribe again


@dataclass
class Stack:
    """The service started as `make run` starts it."""

    settings: Settings
    env: dict[str, str]
    redis: subprocess.Popen
    procs: dict[str, subprocess.Popen]
    log_dir: Path

    @property
    def port(self) -> int:
        return self.settings.port

    def api(self, tenant: str = "demo", username: str = "admin") -> Api:
        return Api(self.port, tenant, username, ADMIN_PASSWORD)

    def restart_redis_empty(self) -> None:
        stop_redis(self.redis)
        self.redis = start_redis(self.settings.redis_url)


def _login(tenant: str) -> list[str]:
    return ["--email", f"boss@{tenant}.example", "--password", ADMIN_PASSWORD]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def stack(
    workers: int,
    database_url: str | None = None,
    worker_database_url: str | None = None,
    extra: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start Redis, migrate, seed two tenants, run web and worker with beat; stop them at the end."""
    open_files_to_hard_limit()  # the web inherits it: thousands of streams are sockets
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_url = f"redis://127.0.0.1:{_free_port()}/0"
    env_in = (
        {
            "VAR_DIR": str(tmp),
            "DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.db'}",
            "REDIS_URL": redis_url,
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SECRET_KEY": "bench",
            "FLOWER_BASIC_AUTH": "bench:bench",
            "METRICS_TOKEN": "bench",
            "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PORT": str(_free_port()),
            "WORKER_METRICS_PORT": str(_free_port()),
            "LOGIN_RATE_LIMIT": "100000 per minute",
            "WORKER_PROCESSES": str(workers),
        }
        | {
            k: v
            for k, v in os.environ.items()
            if k.startswith("ARGON2_") or k in ("CHUNK_SIZE", "SWEEP_SECONDS")
        }
        | (extra or {})
    )
    settings = Settings.from_env(env_in)
    env = child_env(settings)
    redis = start_redis(redis_url)
    run = [sys.executable, "-m"]
    for step in (["alembic", "upgrade", "head"], ["flask", "--app", "web", "seed-demo"]):
        subprocess.run(run + step, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    # "other" is tenant B of the fairness figure; "bulk" has room for the batch's 10,000 extensions.
    for tenant, extra in (("other", []), ("bulk", ["--extension-min", "10000", "--extension-max", "99999"])):
        for step in (
            ["flask", "--app", "web", "create-tenant", tenant, *extra],
            ["flask", "--app", "web", "create-admin", tenant, "boss", *_login(tenant)],
        ):
            subprocess.run(run + step, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    commands = processes(settings)
    commands["worker"] = [*commands["worker"], f"--concurrency={workers}"]
    worker_env = env | ({"DATABASE_URL": worker_database_url} if worker_database_url else {})
    procs = {
        name: subprocess.Popen(
            commands[name],
            cwd=PROJECT_ROOT,
            env=(worker_env if name == "worker" else env) | metrics_env(settings, name),
            stdout=(tmp / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name in ("web", "worker")
    }
    service = Stack(settings, env, redis, procs, tmp)
    try:
        _wait_ready(settings.port)
        yield service
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        stop_redis(service.redis)
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the service did not become ready")


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def turn_about(
    service: Stack,
    workers: int,
    runs: int,
    tag: str,
    after_each: Any = None,
    floor_alone: Any = nullcontext,
) -> tuple[list[float], list[float]]:
    """500-row imports and their hashing floors taken turn about (the machine's drift and neighbours'
    bursts fall on both sides alike); `after_each()` is called as each import ends, and each floor is
    hashed inside `floor_alone()` (a scenario's background work paused, so the floor is the same in
    every scenario)."""
    api = service.api()
    times, floors = [], []
    for run in range(runs):
        with floor_alone():
            floors.append(hashing_seconds(service.settings, 500, workers))
        start = time.perf_counter()
        final = api.wait(api.start(users_csv(500, f"{tag}{run}u")))
        times.append(time.perf_counter() - start)
        assert final["created"] == 500, final
        if after_each is not None:
            after_each()
    return times, floors


def bench_single(service: Stack, workers: int, runs: int = 7) -> str:
    """Import and reference taken turn about, best against best."""
    times, floors = turn_about(service, workers, runs, "single")
    best, floor = min(times), min(floors)
    return (
        f"single   one 500-row file: {', '.join(f'{t:.2f}' for t in times)} s (best {best:.2f}); "
        f"hashing 500 alone {', '.join(f'{t:.2f}' for t in floors)} s (best {floor:.2f}); "
        f"ratio {best / floor:.3f} (goal <= 1.05)"
    )


def bench_batch(service: Stack, workers: int, files: int = 20) -> str:
    """The reference is half hashed before the batch and half after it, so a drift of the
    machine's speed during the few minutes they take falls on both sides alike."""
    api = service.api("bulk", "boss")
    rows = files * 500
    before = hashing_seconds(service.settings, rows // 2, workers)
    start = time.perf_counter()
    jobs = [api.start(users_csv(500, f"batch{n}u")) for n in range(files)]
    finals = [api.wait(job) for job in jobs]
    took = time.perf_counter() - start
    assert sum(f["created"] for f in finals) == rows, finals
    after = hashing_seconds(service.settings, rows - rows // 2, workers)
    floor = before + after
    return (
        f"batch    {files} x 500-row files back to back: {took:.1f} s; hashing {rows} alone "
        f"{floor:.1f} s ({before:.1f} s before, {after:.1f} s after); ratio {took / floor:.3f} "
        f"(goal <= 1.05)"
    )


def bench_fair(service: Stack, workers: int) -> str:
    a, b = service.api(), service.api("other", "boss")
    alone = _timed(lambda: b.wait(b.start(users_csv(20, "balone"))))
    batch = [a.start(users_csv(500, f"fair{n}u")) for n in range(8)]
    time.sleep(1)  # the scenario: B comes 1 s after A's eight files
    start = time.perf_counter()
    final = b.wait(b.start(users_csv(20, "bfair")))
    took = time.perf_counter() - start
    for job in batch:
        a.wait(job)
    chunk = hashing_seconds(service.settings, 500 // (4 * workers) + 1, 1)
    return (
        f"fair     B's 20 rows behind A's 8 x 500: {took:.2f} s (B alone {alone:.2f} s; one of A's chunks "
        f"~{chunk:.2f} s of hashing; goal <= {alone + chunk:.2f} s); status {final['status']}"
    )


def _interrupted(api: Api, tag: str, interrupt: Any) -> tuple[float, list[dict[str, Any]]]:
    """Two 500-row files; once the first has 100 users, `interrupt()`; seconds from then until both end."""
    jobs = [api.start(users_csv(500, f"{tag}{n}u")) for n in range(2)]
    _until(lambda: api.call("GET", f"/api/v1/imports/{jobs[0]}")["created"] >= 100)
    start = time.perf_counter()
    interrupt()
    finals = [_poll_final(api, job) for job in jobs]
    return time.perf_counter() - start, finals


def bench_redis(service: Stack) -> str:
    api = service.api()
    alone, _ = _interrupted(api, "redisref", lambda: None)
    took, finals = _interrupted(api, "redis", service.restart_redis_empty)
    created = sum(f["created"] for f in finals)
    return (
        f"redis    Redis restarted empty mid-job: jobs {sorted({f['status'] for f in finals})} {took:.1f} s "
        f"after the restart; the same work without it {alone:.1f} s ({created} of 1000 created; "
        "goal <= 120 s)"
    )


def bench_postgres(workers: int) -> str:
    from scripts.tcp_proxy import TcpProxy

    if not _postgres_answers():
        return f"postgres skipped: no PostgreSQL answers at BENCH_POSTGRES_URL={POSTGRES_URL}"
    proxy = TcpProxy("127.0.0.1", int(re.search(r":(\d+)/", POSTGRES_URL).group(1)))
    through = re.sub(r":\d+/", f":{proxy.port}/", POSTGRES_URL)

    def outage() -> None:
        proxy.cut()
        time.sleep(20)  # the scenario: the database is away for 20 s
        proxy.restore()

    with stack(workers, database_url=POSTGRES_URL, worker_database_url=through) as service:
        api = service.api()
        alone, _ = _interrupted(api, "pgref", lambda: None)
        took, finals = _interrupted(api, "pg", outage)
    proxy.cut()
    created = sum(f["created"] for f in finals)
    return (
        f"postgres database away 20 s mid-job: jobs {sorted({f['status'] for f in finals})} {took:.1f} s "
        f"after the cut; the same work without it {alone:.1f} s ({created} of 1000 created; goal <= 60 s)"
    )


def bench_status(service: Stack) -> str:
    if shutil.which("wrk") is None:
        return "status   skipped: wrk is not installed (apt-get install -y wrk)"
    api = service.api()
    job = api.start(users_csv(20, "statusu"))
    api.wait(job)
    base = f"http://127.0.0.1:{service.port}"
    auth = f"Authorization: {api.headers['Authorization']}"
    health = _wrk(f"{base}/healthz", [])
    status = _wrk(f"{base}/api/v1/imports/{job}", ["-H", auth])
    web = service.env.get("WEB_CONCURRENCY", "1")
    return (
        f"status   GET /api/v1/imports/<id>, 16 clients, {web} web processes: {status:.0f} req/s "
        f"(/healthz {health:.0f} req/s, ratio {status / health:.2f}; goal >= 1000)"
    )


def _wrk(url: str, extra: list[str]) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", "-d10s", *extra, url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def _until(check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.1)


def _poll_final(api: Api, job: str) -> dict[str, Any]:
    """Poll the status (through outages: 503 answers are retried) until the job ends."""
    while True:
        try:
            status = api.call("GET", f"/api/v1/imports/{job}")
            if status["status"] in ("succeeded", "failed", "cancelled"):
                return status
        except (RuntimeError, OSError, http.client.HTTPException):
            api.conn.close()
        time.sleep(0.2)


def _postgres_answers(url: str = POSTGRES_URL) -> bool:
    """Whether PostgreSQL answers; the database of `url` is dropped and created again, empty."""
    from sqlalchemy import create_engine, text

    from shared.db import normalise_url

    try:
        admin = re.sub(r"/[^/]+$", "/postgres", url)
        engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = url.rsplit("/", 1)[1]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return True
    except Exception:
        return False


def _bench_streams(service: Stack, workers: int) -> str:
    from scripts.bench_streams import bench_streams  # it imports this module

    return bench_streams(service, workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (celery --concurrency)")
    parser.add_argument(
        "--explain", action="store_true", help="claims: EXPLAIN ANALYZE of the claim and sweep"
    )
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    costs = ("argon2_memory_kib", "argon2_time_cost", "argon2_parallelism")
    settings = Settings(**{name: Settings.one_from_env(name) for name in costs})
    print(
        f"machine: {os.cpu_count()} cores; worker processes {args.workers}; WEB_CONCURRENCY "
        f"{os.environ.get('WEB_CONCURRENCY', os.cpu_count())}; argon2id m={settings.argon2_memory_kib} KiB "
        f"t={settings.argon2_time_cost} p={settings.argon2_parallelism}",
        flush=True,
    )
    scale = [s for s in chosen if s in bench_tenant_scale.SCENARIOS]
    elsewhere = (*ON_POSTGRES, "metrics", *scale, *bench_claims.SCENARIOS)
    sqlite_scenarios = [s for s in chosen if s not in elsewhere]
    if sqlite_scenarios:
        with stack(args.workers) as service:
            print(f"database: SQLite; logs in {service.log_dir}", flush=True)
            for name in sqlite_scenarios:
                runner = {
                    "fair": lambda: bench_fair(service, args.workers),
                    "single": lambda: bench_single(service, args.workers),
                    "batch": lambda: bench_batch(service, args.workers),
                    "redis": lambda: bench_redis(service),
                    "status": lambda: bench_status(service),
                    "streams": lambda: _bench_streams(service, args.workers),
                }[name]
                print(runner(), flush=True)
    if "postgres" in chosen:
        print(bench_postgres(args.workers), flush=True)
    if scale:
        print("\n".join(bench_tenant_scale.run(args.workers, scale)), flush=True)
    if "metrics" in chosen:
        from scripts.bench_metrics import bench_metrics

        print(bench_metrics(args.workers), flush=True)
    for name in (s for s in chosen if s in bench_claims.SCENARIOS):
        print(bench_claims.run(name, args.workers, args.explain), flush=True)
    if "retention" in chosen:
        from scripts.bench_retention import bench_retention  # it imports this module

        print(bench_retention(args.workers), flush=True)
    if "invitations" in chosen:
        from scripts.bench_invitations import bench_invitations  # it imports this module

        print(bench_invitations(args.workers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
